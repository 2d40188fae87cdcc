"""Builds escort's use cases from the environment (functions/escort/template.yaml), once per function.

On the local stage (``use_standin("escort.sms")``) SMS goes to the local stand-in of Aliyun dysms
(``bianjie_dev.escort.adapters.sms``), which records each message in escort's table for the outbox
route; elsewhere to Aliyun with ESCORT_SMS_ACCESS_KEY_ID and ESCORT_SMS_ACCESS_KEY_SECRET (the secret
wrapped by the master key).
"""

from __future__ import annotations

from typing import Any

from bianjie.escort.service import EscortService
from bianjie.escort.store import EscortStore
from bianjie.escort.tags import HmacTags
from bianjie.kit import deps
from bianjie.kit.config import env, require_env
from bianjie.kit.standins import use_standin


@deps.singleton
def escort_store() -> EscortStore:
    return EscortStore(deps.documents(), deps.table("ESCORT_TABLE"))


@deps.singleton
def escort_sms() -> Any:
    from bianjie.escort.adapters.sms import AliyunSender
    from bianjie.kit.sms import AliyunSmsClient

    if not use_standin("escort.sms"):
        from bianjie.kit.sms import http_transport

        return AliyunSender(
            AliyunSmsClient(
                require_env("ESCORT_SMS_ACCESS_KEY_ID"),
                deps.unwrap_setting("ESCORT_SMS_ACCESS_KEY_SECRET").decode(),
                http_transport,
            )
        )
    from bianjie_dev.escort.adapters.sms import EscortSmsStandIn

    standin = EscortSmsStandIn(escort_store())
    return AliyunSender(AliyunSmsClient(standin.access_key_id, standin.secret, standin))


@deps.singleton
def escort_service() -> EscortService:
    return EscortService(
        escort_store(),
        deps.field_cipher(),
        deps.blind_index(),
        HmacTags(deps.derived_key(b"bianjie/escort/secrets/v1")),
        escort_sms(),
        deps.audit_log("escort"),
        nav_base=env("ESCORT_NAV_URL"),
    )
