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

from bianjie.kit.config import clear_scopes, env, env_int, require_env, scope_cached, settings

T = TypeVar("T")


def singleton(build: Callable[[], T]) -> Callable[[], T]:
    """Build once per function scope (until ``reset``). Keyed by the builder's module and qualified name, so two
    services' builders of the same name (``film.wiring.store`` and ``rx.wiring.store``) stay apart."""
    key = f"{build.__module__}.{build.__qualname__}"

    @wraps(build)
    def get() -> T:
        return scope_cached(key, build)

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
        # one pool per process (per worker of `bianjie serve --workers N`): size it to the handler threads
        return PostgresDocumentStore(
            cfg.postgres_dsn,
            max_connections=env_int("BIANJIE_POSTGRES_POOL_MAX", 10),
            min_connections=env_int("BIANJIE_POSTGRES_POOL_MIN", 1),
        )
    from bianjie.kit import aws
    from bianjie.kit.documents.dynamodb import DynamoDocumentStore

    return DynamoDocumentStore(aws.client("dynamodb"))


def table(env_name: str) -> str:
    """A table's physical name from its environment variable, with its schema registered in the store.

    Registering spares the DynamoDB adapter its DescribeTable / DescribeTimeToLive calls (cold-start
    time, and IAM actions SAM's Crud/Read policies do not grant). The schema comes from the templates,
    through the manifest ``bianjie/tables.json`` (``bianjie.kit.tables``).
    """
    from bianjie.kit.tables import table_spec

    name = require_env(env_name)
    store = documents()
    register = getattr(store, "register", None)
    if register is not None:
        register(table_spec(env_name, name))
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


def derived_key(label: bytes) -> bytes:
    """A 32-byte key for one purpose (``label``, e.g. b"bianjie/film/link-tag/v1"), derived from the
    deployment's HMAC key (the blind-index key) so a purpose needs no parameter of its own.

    The 0x01 prefix keeps derivations apart from blind-index digests, whose messages start with a
    lower-case kind name, so no stored digest can equal a derived key.
    """
    from bianjie.kit.crypto import hmac_sm3

    return hmac_sm3(unwrap_setting("BIANJIE_BLIND_INDEX_KEY"), b"\x01bianjie-derived-key\x00" + label)


@singleton
def partner_registry() -> Any:
    from bianjie.kit.partners import PartnerRegistry

    return PartnerRegistry(documents(), table("PARTNERS_TABLE"))


@singleton
def partner_verifier() -> Any:
    from bianjie.kit.signing import NonceStore, PartnerVerifier

    cfg = settings()
    nonces = NonceStore(documents(), table("NONCES_TABLE"), ttl=2 * cfg.clock_skew_seconds)
    return PartnerVerifier(partner_registry(), nonces, window=cfg.clock_skew_seconds)


@singleton
def token_verifier() -> Any:
    """Verifies bearer tokens with the published public keys (``BIANJIE_TOKEN_JWKS``); mints nothing.

    Without a JWKS (a first deployment, before ``TokenJwks`` is set) every token is refused as
    TOKEN_INVALID, and the error log says why.
    """
    from bianjie.kit.logging import get_logger
    from bianjie.kit.tokenkeys import PublicKeySet
    from bianjie.kit.tokens import TokenVerifier

    document = env("BIANJIE_TOKEN_JWKS")
    if document is None:
        get_logger("bianjie.tokens").error("BIANJIE_TOKEN_JWKS is empty: every token will be refused")
        return TokenVerifier(PublicKeySet([]))
    return TokenVerifier(PublicKeySet.from_jwks(document))


@singleton
def token_issuer() -> Any:
    """Mints tokens: only in the issuer function, the one whose environment names a signing key.

    AWS: ``BIANJIE_TOKEN_SIGNING_KEY`` is a KMS SM2 (or ECC_NIST_P256) key that only the issuer's role may
    ``kms:Sign``. On premises (``BIANJIE_KEYS=local``): ``BIANJIE_TOKEN_SIGNING_KEY_WRAPPED`` is the
    private key's PEM wrapped by the master key, which the issuer alone is given.
    """
    from bianjie.kit.tokens import TokenIssuer

    if settings().key_backend == "local":
        from bianjie.kit.tokenkeys import LocalTokenSigner

        return TokenIssuer(LocalTokenSigner.from_pem(unwrap_setting("BIANJIE_TOKEN_SIGNING_KEY_WRAPPED")))
    from bianjie.kit import aws
    from bianjie.kit.tokenkeys import KmsTokenSigner

    return TokenIssuer(KmsTokenSigner(aws.client("kms"), require_env("BIANJIE_TOKEN_SIGNING_KEY")))


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
        from bianjie.kit.audit import AuditLog

        return AuditLog(documents(), table("AUDIT_TABLE"), service=service)

    return scope_cached(f"audit_log:{service}", build)


def _topic() -> Any:
    from bianjie.kit import aws
    from bianjie.kit.events import SnsSink

    return SnsSink(aws.client("sns"), require_env("DOMAIN_EVENTS_TOPIC"))


def _queue_sink_builder(env_name: str) -> Callable[[], Any]:
    def build() -> Any:
        from bianjie.kit.outbox import QueueSink

        return QueueSink(queues(), require_env(env_name))

    return build


OutboxBackend = Callable[[str, dict[str, str]], dict[str, Any]]
"""Builds an outbox's sinks: (service, {sink name: queue URL environment variable}) -> {sink name: Sink},
with sink "events" the domain-events topic."""


def _aws_outbox_sinks(service: str, queue_env: dict[str, str]) -> dict[str, Any]:
    from bianjie.kit.outbox import EVENTS, TopicSink

    sinks: dict[str, Any] = {EVENTS: _LazySink(lambda: TopicSink(_topic()))}
    for name, env_name in queue_env.items():
        sinks[name] = _LazySink(_queue_sink_builder(env_name))
    return sinks


_OUTBOX_BACKENDS: dict[str, OutboxBackend] = {"aws": _aws_outbox_sinks}


def register_outbox_backend(name: str, build: OutboxBackend) -> None:
    """Add where outbox intents go (``BIANJIE_OUTBOX_BACKEND=name``): the relay and every writer's dispatch
    send through the sinks ``build`` returns. "aws" (the default) is the SNS topic and SQS queues (the
    emulator on the local stack); an on-premises topic and queues register theirs here."""
    _OUTBOX_BACKENDS[name] = build


def outbox(service: str, **queue_env: str) -> Any:
    """The transactional outbox of ``service`` (``OUTBOX_TABLE``): sink "events" is the domain-events
    topic; each keyword adds a queue sink, named by the keyword, at the URL in that environment variable
    (pay: ``outbox("pay", webhooks="PAY_WEBHOOK_QUEUE")``). The sinks come from the outbox backend named
    by ``BIANJIE_OUTBOX_BACKEND`` (default "aws"; ``register_outbox_backend``)."""

    def build() -> Any:
        from bianjie.kit.outbox import Outbox

        backend = (env("BIANJIE_OUTBOX_BACKEND") or "aws").lower()
        if backend not in _OUTBOX_BACKENDS:
            known = ", ".join(sorted(_OUTBOX_BACKENDS))
            raise RuntimeError(f"BIANJIE_OUTBOX_BACKEND={backend!r} is not registered (known: {known})")
        sinks = _OUTBOX_BACKENDS[backend](service, dict(queue_env))
        return Outbox(documents(), table("OUTBOX_TABLE"), service, sinks)

    return scope_cached(f"outbox:{service}", build)


class _LazySink:
    """Builds its sink on first send, so a function that commits no intent never needs the client."""

    def __init__(self, build: Callable[[], Any]) -> None:
        self._build = build
        self._sink: Any = None

    def send(self, message: dict[str, Any]) -> None:
        if self._sink is None:
            self._sink = self._build()
        self._sink.send(message)


@singleton
def idempotency() -> Any:
    from bianjie.kit.idempotency import IdempotencyStore

    # the table is resolved at first use: a function that never takes an idempotent path needs no
    # IDEMPOTENCY_TABLE (and no permission on it)
    return IdempotencyStore(documents(), lambda: table("IDEMPOTENCY_TABLE"))


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


def queue(env_name: str) -> Any:
    """The queue whose URL is in ``env_name`` (template.yaml: ``!Ref`` of the queue), as a ``QueueSender``."""
    from bianjie.kit.queues import QueueSender

    return QueueSender(queues(), require_env(env_name))


def dead_letters(env_name: str) -> Any:
    """The dead-letter queue at the URL in ``env_name``, for ``bianjie.kit.batch.process``'s poison."""

    def build() -> Any:
        from bianjie.kit.batch import DeadLetterQueue

        return DeadLetterQueue(queues(), require_env(env_name))

    return scope_cached(f"dead_letters:{env_name}", build)
