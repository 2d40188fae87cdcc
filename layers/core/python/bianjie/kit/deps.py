"""The composition root: builds the adapters a function uses from its environment, once per function.

Handlers and the web layer ask here for ports (documents, keys, partners, tokens, audit); domain code
receives them as arguments. Everything is lazy so a function pays only for what it touches. Built
objects live in the current ``FunctionScope`` (``bianjie.kit.config``): one per process on Lambda, one
per function on the local stack, where many functions share a process but each has its own environment
and credentials.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

from bianjie.kit.config import clear_scopes, require_env, scope_cached, settings

T = TypeVar("T")


def singleton(build: Callable[[], T]) -> Callable[[], T]:
    @wraps(build)
    def get() -> T:
        return scope_cached(build.__name__, build)  # type: ignore[no-any-return]

    return get


def reset() -> None:
    """Forget every built adapter, in every function scope (tests change the environment between cases)."""
    clear_scopes()


@singleton
def documents() -> Any:
    cfg = settings()
    if cfg.document_backend == "postgres":
        from bianjie.kit.documents.postgres import PostgresDocumentStore

        if not cfg.postgres_dsn:
            raise RuntimeError("BIANJIE_DOCUMENTS=postgres needs BIANJIE_POSTGRES_DSN")
        return PostgresDocumentStore(cfg.postgres_dsn)
    from bianjie.kit import aws
    from bianjie.kit.documents.dynamodb import DynamoDocumentStore

    return DynamoDocumentStore(aws.client("dynamodb"))


def table(env_name: str, spec_of: Callable[[str], Any]) -> str:
    """A table's physical name from its environment variable, with its schema registered in the store.

    Registering spares the DynamoDB adapter its DescribeTable / DescribeTimeToLive calls (cold-start
    time, and IAM actions SAM's Crud/Read policies do not grant). ``spec_of`` is the table's
    ``*_table_spec(name)`` function, the same one the template contract test compares with template.yaml.
    """
    name = require_env(env_name)
    store = documents()
    register = getattr(store, "register", None)
    if register is not None:
        register(spec_of(name))
    return name


@singleton
def key_port() -> Any:
    cfg = settings()
    if cfg.key_backend == "local":
        from bianjie.kit.keys import LocalKeyPort

        if not cfg.local_master_key_file:
            raise RuntimeError("BIANJIE_KEYS=local needs BIANJIE_MASTER_KEY_FILE")
        return LocalKeyPort(bytes.fromhex(Path(cfg.local_master_key_file).read_text().strip()))
    from bianjie.kit import aws
    from bianjie.kit.keys import KmsKeyPort

    return KmsKeyPort(aws.client("kms"), require_env("BIANJIE_KMS_KEY_ID"))


def unwrap_setting(name: str) -> bytes:
    """A secret the deployment holds wrapped by the master key (base64), unwrapped through the key port."""
    return key_port().unwrap(base64.b64decode(require_env(name)))


@singleton
def partner_registry() -> Any:
    from bianjie.kit.partners import PartnerRegistry, partners_table_spec

    return PartnerRegistry(documents(), table("PARTNERS_TABLE", partners_table_spec))


@singleton
def partner_verifier() -> Any:
    from bianjie.kit.signing import NonceStore, PartnerVerifier, nonces_table_spec

    cfg = settings()
    nonces = NonceStore(documents(), table("NONCES_TABLE", nonces_table_spec), ttl=2 * cfg.clock_skew_seconds)
    return PartnerVerifier(partner_registry(), nonces, window=cfg.clock_skew_seconds)


@singleton
def token_issuer() -> Any:
    from bianjie.kit.tokens import TokenIssuer

    return TokenIssuer({"k1": unwrap_setting("BIANJIE_TOKEN_SECRET")}, "k1")


@singleton
def field_cipher() -> Any:
    from bianjie.kit.fieldcrypt import FieldCipher

    return FieldCipher(key_port())


@singleton
def blind_index() -> Any:
    from bianjie.kit.fieldcrypt import BlindIndex

    return BlindIndex(unwrap_setting("BIANJIE_BLIND_INDEX_KEY"))


def audit_log(service: str) -> Any:
    """The audit log as ``service`` writes it (each service appends to its own daily chains)."""

    def build() -> Any:
        from bianjie.kit.audit import AuditLog, audit_table_spec

        return AuditLog(documents(), table("AUDIT_TABLE", audit_table_spec), service=service)

    return scope_cached(f"audit_log:{service}", build)


def publisher(source: str) -> Any:
    """Domain events of ``source`` (e.g. "bianjie.rx") to the domain-events topic."""

    def build() -> Any:
        from bianjie.kit import aws
        from bianjie.kit.events import Publisher, SnsSink

        return Publisher(SnsSink(aws.client("sns"), require_env("DOMAIN_EVENTS_TOPIC")), source)

    return scope_cached(f"publisher:{source}", build)


@singleton
def idempotency() -> Any:
    from bianjie.kit.idempotency import IdempotencyStore, idempotency_table_spec

    return IdempotencyStore(documents(), table("IDEMPOTENCY_TABLE", idempotency_table_spec))


@singleton
def objects() -> Any:
    from bianjie.kit import aws
    from bianjie.kit.objects import S3ObjectStore

    return S3ObjectStore(aws.client("s3"))


@singleton
def queues() -> Any:
    from bianjie.kit import aws
    from bianjie.kit.queues import SqsQueues

    return SqsQueues(aws.client("sqs"))
