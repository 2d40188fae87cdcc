"""Builds guide's use cases from the environment (template.yaml sets the variables), once per process.

On the local stage (``bianjie.kit.standins.use_standin("guide.channels")``) the channels talk to the local
stand-ins of WeChat and Aliyun SMS (development tooling), which record into the outbox table; any other
stage uses the real platforms with credentials unwrapped through
the key port (GUIDE_WECHAT_APP_ID, GUIDE_WECHAT_SECRET, GUIDE_SMS_ACCESS_KEY_ID, GUIDE_SMS_ACCESS_KEY_SECRET;
the secrets wrapped by the master key, as `bianjie keys init` wraps the blind-index key).
"""

from __future__ import annotations

from typing import Any

from bianjie.guide.delivery import Deliverer, SmsLimits
from bianjie.guide.service import Contacts, GuideService
from bianjie.guide.store import GuideStore, Tables
from bianjie.guide.templates import TemplateBook
from bianjie.kit import deps
from bianjie.kit.config import env, env_int, require_env
from bianjie.kit.standins import use_standin


@deps.singleton
def guide_store() -> GuideStore:

    return GuideStore(
        deps.documents(),
        Tables(
            visits=deps.table("GUIDE_VISITS_TABLE"),
            notifications=deps.table("GUIDE_NOTIFICATIONS_TABLE"),
            outbox=deps.table("GUIDE_OUTBOX_TABLE"),
            patients=deps.table("GUIDE_PATIENTS_TABLE"),
        ),
    )


@deps.singleton
def guide_templates() -> TemplateBook:
    return TemplateBook(env("GUIDE_WECHAT_TEMPLATES"), env("GUIDE_SMS_TEMPLATES"))


@deps.singleton
def guide_queue() -> Any:
    from bianjie.guide.adapters.queues import ChannelQueues

    return ChannelQueues({"wechat": deps.queue("GUIDE_WECHAT_QUEUE"), "sms": deps.queue("GUIDE_SMS_QUEUE")})


@deps.singleton
def guide_contacts() -> Contacts:
    import time

    return Contacts(guide_store(), deps.field_cipher(), deps.blind_index(), time.time)


@deps.singleton
def guide_service() -> GuideService:
    return GuideService(
        guide_store(),
        guide_queue(),
        guide_contacts(),
        deps.audit_log("guide"),
        guide_templates(),
        events=guide_outbox(),
    )


@deps.singleton
def guide_outbox() -> Any:
    """guide's transactional outbox (``OUTBOX_TABLE``): guide.visit_progressed to the domain-events topic."""
    return deps.outbox("guide")


@deps.singleton
def guide_channels() -> tuple[Any, Any]:
    import time

    if not use_standin("guide.channels"):
        from bianjie.guide.adapters import sms, wechat

        return (
            wechat.WeChatClient(
                require_env("GUIDE_WECHAT_APP_ID"),
                deps.unwrap_setting("GUIDE_WECHAT_SECRET").decode(),
                wechat.http_transport,
            ),
            sms.AliyunSmsClient(
                require_env("GUIDE_SMS_ACCESS_KEY_ID"),
                deps.unwrap_setting("GUIDE_SMS_ACCESS_KEY_SECRET").decode(),
                sms.http_transport,
            ),
        )
    from bianjie_dev.guide.adapters.outbox import OutboxRecorder
    from bianjie_dev.guide.adapters.sms import AliyunSmsStandIn
    from bianjie_dev.guide.adapters.wechat import WeChatStandIn

    from bianjie.guide.adapters.sms import AliyunSmsClient
    from bianjie.guide.adapters.wechat import WeChatClient

    recorder = OutboxRecorder(guide_store(), time.time)
    wx_standin = WeChatStandIn(recorder, guide_templates())
    sms_standin = AliyunSmsStandIn(recorder, guide_templates())
    return (
        WeChatClient(wx_standin.app_id, "local-standin-secret", wx_standin),
        AliyunSmsClient(sms_standin.access_key_id, "local-standin-secret", sms_standin),
    )


@deps.singleton
def guide_deliverer() -> Deliverer:
    wechat, sms = guide_channels()
    limits = SmsLimits(per_hour=env_int("GUIDE_SMS_PER_HOUR", 5), per_day=env_int("GUIDE_SMS_PER_DAY", 20))
    return Deliverer(guide_store(), guide_queue(), guide_contacts(), wechat, sms, guide_templates(), limits)


def hospital_pharmacy_place(app_id: str) -> dict[str, str] | None:
    """Where a hospital's patients pick up medicine bought in the hospital: partner setting
    ``guide.pharmacy`` = ``{"place_poi": ..., "place_name": ...}`` (cached partner read)."""
    partner = deps.partner_registry().lookup(app_id)
    value = partner.setting("guide", "pharmacy") if partner else None
    return value if isinstance(value, dict) else None
