"""Builds the rx use cases from the function's environment (once per process).

Environment (template.yaml, rx section):
- ``RX_TABLE``, ``RX_AUTH_TABLE``, ``RX_CATALOGUE_TABLE``: the service's tables.
- The center: its stand-in (in process, one process only, i.e. the local stack and tests) where
  ``bianjie.kit.standins.use_standin("rx.center")`` (the local stage's default), else the real center at
  ``RX_CENTER_URL`` with ``RX_CENTER_APP_ID``, ``RX_CENTER_APP_SECRET`` and ``RX_CENTER_PRIVATE_KEY``
  wrapped by the master key (base64) and the center's public key ``RX_CENTER_PUBLIC_KEY`` in hex.
- The e-credential verifier (``rx.ecredential``) exists only as the stand-in until the NHSA decode
  interface is wired (docs/rx.md); other stages fail at wiring rather than trust stand-in tokens.
"""

from __future__ import annotations

from typing import Any

from bianjie.kit import deps
from bianjie.kit.config import require_env
from bianjie.kit.crypto import Sm2PrivateKey, Sm2PublicKey
from bianjie.kit.errors import NotFound
from bianjie.kit.standins import use_standin
from bianjie.rx.service import Org, RxService


def _stand_in_secret() -> bytes:
    # every process of one deployment derives the same stand-in keys from the deployment's HMAC key
    return deps.derived_key(b"bianjie rx stand-ins")


def rx_standin_center() -> Any:
    """The prescription center's stand-in holds its records in memory: one center for every function of
    the process, as the real one is one system for every function."""
    from bianjie_dev.rx.center.standin import StandInCenter, credential_pair

    from bianjie.kit.config import process_cached

    return process_cached("rx.standin_center", lambda: StandInCenter(credential_pair(_stand_in_secret())[1]))


@deps.singleton
def rx_center() -> Any:
    from bianjie.rx.adapters.center_http import HttpTransport
    from bianjie.rx.center.client import NhsaCenterClient
    from bianjie.rx.center.envelope import Credentials

    if use_standin("rx.center"):
        from bianjie_dev.rx.center.standin import InProcessTransport, credential_pair

        ours, _ = credential_pair(_stand_in_secret())
        return NhsaCenterClient(ours, InProcessTransport(rx_standin_center()))
    creds = Credentials(
        app_id=require_env("RX_CENTER_APP_ID"),
        app_secret=deps.unwrap_setting("RX_CENTER_APP_SECRET").decode("utf-8"),
        private_key=Sm2PrivateKey.from_hex(deps.unwrap_setting("RX_CENTER_PRIVATE_KEY").decode("ascii")),
        peer_public_key=Sm2PublicKey.from_hex(require_env("RX_CENTER_PUBLIC_KEY")),
    )
    return NhsaCenterClient(creds, HttpTransport(require_env("RX_CENTER_URL")))


@deps.singleton
def rx_ecredentials() -> Any:
    if not use_standin("rx.ecredential"):
        raise RuntimeError("the NHSA e-credential decoder is not wired in this build (docs/rx.md)")
    from bianjie_dev.rx.ecredential import StandInEcredentials  # development tooling: the local stage only

    return StandInEcredentials(_stand_in_secret())


def standin_e_credential(actor: Any) -> Any:
    """STAND-IN of the patient's 医保电子凭证 app (local stage only): a fresh code for the signed-in patient,
    whom the stand-in knows by the token's ``id_ref`` (its demo people, ``bianjie_dev.rx.ecredential``)."""
    if not use_standin("rx.ecredential"):
        raise NotFound("the e-credential stand-in exists on the local stage only", code="EC_STANDIN_OFF")
    from bianjie_dev.rx.ecredential import issue_for  # development tooling: the local stage only

    return issue_for(rx_ecredentials(), actor.patient_ref, deps.blind_index().digest)


@deps.singleton
def rx_catalogue() -> Any:
    from bianjie.rx.catalogue import DocumentCatalogue

    return DocumentCatalogue(deps.documents(), deps.table("RX_CATALOGUE_TABLE"))


@deps.singleton
def rx_audit() -> Any:
    from bianjie.kit.audit import AuditLog

    # four chains a day instead of one: every prescription step appends, and one chain head serialises
    return AuditLog(deps.documents(), deps.table("AUDIT_TABLE"), service="rx", shards=16)


def org(app_id: str) -> Org | None:
    partner = deps.partner_registry().lookup(app_id)
    if partner is None:
        return None
    rx = partner.settings.get("rx") or {}
    return Org(
        app_id=partner.app_id,
        name=partner.name,
        role=rx.get("role"),
        fixmedins_code=rx.get("fixmedins_code", ""),
        doctor_keys=dict(rx.get("doctor_keys") or {}),
        require_pharmacist_review=bool(rx.get("require_pharmacist_review", False)),
    )


@deps.singleton
def rx_service() -> RxService:
    from bianjie.rx.repo import AuthorizationRepository, RxRepository

    store = deps.documents()
    return RxService(
        repo=RxRepository(store, deps.table("RX_TABLE")),
        authorizations=AuthorizationRepository(store, deps.table("RX_AUTH_TABLE")),
        catalogue=rx_catalogue(),
        center=rx_center(),
        cipher=deps.field_cipher(),
        index=deps.blind_index(),
        audit=rx_audit(),
        events=deps.outbox("rx"),
        orgs=org,
        ecredentials=rx_ecredentials(),
        idempotency=deps.idempotency(),
    )


def service() -> RxService:
    return rx_service()


def outbox() -> Any:
    """rx's transactional outbox (``OUTBOX_TABLE``; domain events to the topic)."""
    return deps.outbox("rx")
