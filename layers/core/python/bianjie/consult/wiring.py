"""Builds consult's use cases from the function's environment (once per process).

Environment (functions/consult/template.yaml):
- ``CONSULT_TABLE``, ``CONSULT_SCOPE_TABLE``: the service's tables; ``CONSULT_ATTACHMENTS_BUCKET``.
- ``consult.video`` (``bianjie.kit.standins``): the local stand-in, else a self-hosted LiveKit at
  ``CONSULT_LIVEKIT_URL`` with ``CONSULT_LIVEKIT_API_KEY`` and ``CONSULT_LIVEKIT_API_SECRET`` (wrapped by
  the master key).
- ``consult.signing``: the local stand-in key registry; the hospital CA's signing service is not wired
  in this build (docs/consult.md), so other stages fail at wiring rather than sign with stand-in keys.
- ``consult.scanner``: the stand-in (EICAR only), else clamd at ``CONSULT_CLAMD_HOST``/``CONSULT_CLAMD_PORT``.
"""

from __future__ import annotations

from typing import Any

from bianjie.consult.repo import ConsultRepository
from bianjie.consult.scope import ScopeRepository
from bianjie.consult.service import ConsultService
from bianjie.kit import deps
from bianjie.kit.config import env, env_int, require_env
from bianjie.kit.standins import use_standin


@deps.singleton
def consult_rooms() -> Any:
    if use_standin("consult.video"):
        from bianjie_dev.consult.standins import room_tokens

        return room_tokens()
    from bianjie.consult.rooms import LiveKitTokens

    return LiveKitTokens(
        url=require_env("CONSULT_LIVEKIT_URL"),
        api_key=require_env("CONSULT_LIVEKIT_API_KEY"),
        api_secret=deps.unwrap_setting("CONSULT_LIVEKIT_API_SECRET"),
    )


@deps.singleton
def consult_keys() -> Any:
    if not use_standin("consult.signing"):
        raise RuntimeError("the CA signing service for consult reports is not wired in this build (docs/consult.md)")
    from bianjie_dev.consult.standins import key_registry

    return key_registry()


def consult_scanner() -> Any:
    if use_standin("consult.scanner"):
        from bianjie_dev.consult.standins import StandInScanner

        return StandInScanner()
    from bianjie.consult.adapters.clamd import ClamdScanner

    return ClamdScanner(require_env("CONSULT_CLAMD_HOST"), env_int("CONSULT_CLAMD_PORT", 3310))


@deps.singleton
def consult_service() -> ConsultService:
    store = deps.documents()
    keys = consult_keys()
    return ConsultService(
        repo=ConsultRepository(store, deps.table("CONSULT_TABLE")),
        scope_repo=ScopeRepository(store, deps.table("CONSULT_SCOPE_TABLE")),
        cipher=deps.field_cipher(),
        index=deps.blind_index(),
        audit=deps.audit_log("consult"),
        outbox=deps.outbox("consult"),
        idempotency=deps.idempotency(),
        objects=deps.objects(),
        bucket=env("CONSULT_ATTACHMENTS_BUCKET") or "",
        rooms=consult_rooms(),
        signer=keys,
        keys=keys,
        scanner=consult_scanner(),
    )


def service() -> ConsultService:
    return consult_service()


def outbox() -> Any:
    return deps.outbox("consult")
