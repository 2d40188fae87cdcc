"""The senders: one per channel queue. WeChat first; SMS when WeChat cannot deliver.

WeChat subscribe messages (订阅消息): a one-time subscription allows one message per "allow" the
patient tapped, and WeChat offers no API to ask how many are left, so we keep the ledger
(``quota#<template>`` per patient) and spend a credit per send. Outcomes:

    errcode 0                 sent
    no openid / no credit     fall back to SMS (if the kind and the patient allow SMS), else undeliverable
    43101 (user refused)      ledger set to 0, fall back
    40003 / 47003             bad openid / field rejected: fall back (47003 is our bug; logged as an error)
    anything else, network    credit refunded, the message is retried by the queue, then dead-lettered

SMS: our own limit per number (``GUIDE_SMS_PER_HOUR`` / ``GUIDE_SMS_PER_DAY``) before the provider's
(Aliyun: 50 notifications a day per signature, template and number; ``isv.BUSINESS_LIMIT_CONTROL``).

Every transition is written to the notification record's history with a reason, so an operator can
answer "why did this patient get an SMS / nothing".
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from bianjie.guide.kinds import Kind
from bianjie.guide.model import CST
from bianjie.guide.planner import sms_allowed, still_needed
from bianjie.guide.service import Contacts, NotificationQueue, load_preferences, load_view, utc_iso
from bianjie.guide.store import GuideStore, LimitReached
from bianjie.guide.templates import SMS_SIGN, FieldInvalid, TemplateBook
from bianjie.kit.batch import Retry
from bianjie.kit.documents.port import ConditionFailed
from bianjie.kit.logging import get_logger
from bianjie.kit.sms import ChannelUnavailable  # shared with escort; re-exported for guide's adapters

log = get_logger("bianjie.guide.delivery")
LEASE_SECONDS = 60
FINAL = ("sent", "undeliverable", "suppressed", "dead")


class RetryLater(Retry):
    """Raised to the queue handler: leave the message for redelivery (then the dead-letter queue)."""


class ChannelJob(BaseModel):
    """A channel queue's message (``adapters.queues``): which notification, on which channel."""

    channel: Literal["wechat", "sms"]
    key: str = Field(min_length=1, max_length=512)


class WeChatPort(Protocol):
    def send_subscribe(
        self, touser: str, template_id: str, page: str, data: dict[str, dict[str, str]]
    ) -> dict[str, Any]:
        """The JSON answer of POST /cgi-bin/message/subscribe/send; ChannelUnavailable on transport errors."""


class SmsPort(Protocol):
    def send_sms(
        self, phone: str, sign_name: str, template_code: str, params: dict[str, str], out_id: str
    ) -> dict[str, Any]:
        """The answer of Aliyun SendSms (Code, Message, BizId, RequestId); ChannelUnavailable on transport errors."""


@dataclass(frozen=True)
class SmsLimits:
    per_hour: int = 5
    per_day: int = 20


class Deliverer:
    def __init__(
        self,
        store: GuideStore,
        queue: NotificationQueue,
        contacts: Contacts,
        wechat: WeChatPort,
        sms: SmsPort,
        templates: TemplateBook | None = None,
        limits: SmsLimits = SmsLimits(),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.queue = queue
        self.contacts = contacts
        self.wechat = wechat
        self.sms = sms
        self.templates = templates or TemplateBook()
        self.limits = limits
        self.clock = clock

    # -- entry points -----------------------------------------------------------------------------

    def deliver(self, channel: str, key: str) -> str:
        """Sends one queued notification; returns its new status. Raises RetryLater on transient failure."""
        record = self._claim(channel, key)
        if record is None:
            return "skipped"
        item = self.store.view_item(record["visit_id"])
        if item is not None:
            why = still_needed(Kind(record["kind"]), record["step"], load_view(item["view"]), self._now())
            if why:
                self._move(record, "suppressed", reason=f"NO_LONGER_NEEDED ({why})")
                return "suppressed"
        try:
            return self._wechat(record) if channel == "wechat" else self._sms(record)
        except ChannelUnavailable as exc:
            self._move(record, "queued", reason=f"RETRY: {exc}", last_error=str(exc))
            raise RetryLater(str(exc)) from None

    def dead_letter(self, channel: str, key: str) -> str:
        """A message that used up its retries. WeChat ones still get their SMS chance."""
        record = self.store.notification(key)
        if record is None or record.get("status") in FINAL or record.get("channel") != channel:
            return "skipped"
        last = record.get("last_error") or "unknown"
        if channel == "wechat":
            return self._fallback(record, f"WECHAT_RETRIES_EXHAUSTED ({last})")
        self._move(record, "dead", reason=f"SMS_RETRIES_EXHAUSTED ({last})")
        log.error("guide notification dead-lettered", extra={"dedup_key": key, "channel": channel})
        return "dead"

    # -- claim and transitions --------------------------------------------------------------------

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def _claim(self, channel: str, key: str) -> dict[str, Any] | None:
        record = self.store.notification(key)
        if record is None or record.get("channel") != channel:
            return None
        status = record.get("status")
        if status == "sending" and float(record.get("lease_until", 0)) > self.clock():
            return None  # another delivery of the same message is at work
        if status not in ("queued", "sending"):
            return None  # already sent, deferred, or final: a duplicate queue message
        try:
            return self.store.update_notification(
                {
                    **record,
                    "status": "sending",
                    "lease_until": self.clock() + LEASE_SECONDS,
                    "attempts": int(record.get("attempts", 0)) + 1,
                }
            )
        except ConditionFailed:
            return None

    def _move(
        self,
        record: dict[str, Any],
        status: str,
        *,
        channel: str | None = None,
        reason: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        channel = channel or record.get("channel")
        entry = {"at": utc_iso(self._now()), "status": status, "channel": channel, "reason": reason}
        for _ in range(5):
            new = {
                **record,
                **fields,
                "status": status,
                "channel": channel,
                "reason": reason,
                "history": [*record.get("history", []), entry],
            }
            new.pop("lease_until", None)
            try:
                return self.store.update_notification(new)
            except ConditionFailed:
                fresh = self.store.notification(record["pk"])
                if fresh is None:
                    raise
                record = fresh
        raise ConditionFailed(record["pk"])

    def _fallback(self, record: dict[str, Any], reason: str) -> str:
        kind = Kind(record["kind"])
        prefs = load_preferences(self.store, record["patient_id"])
        _, has_phone = self.contacts.flags(record["patient_id"])
        if sms_allowed(kind, prefs, has_phone):
            self._move(record, "queued", channel="sms", reason=reason, fallback_from="wechat")
            self.queue.send("sms", record["pk"])
            return "fallback"
        self._move(record, "undeliverable", reason=reason)
        return "undeliverable"

    # -- WeChat -----------------------------------------------------------------------------------

    def _spend_credit(self, patient_id: str, template_id: str) -> str | None:
        """None when a credit was spent; else why not."""
        why: list[str] = []

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None or int(current.get("credits", 0)) <= 0:
                why.append("WECHAT_BANNED" if current and current.get("banned") else "WECHAT_QUOTA_EXHAUSTED")
                return None
            return {**current, "credits": int(current["credits"]) - 1}

        self.store.change_patient_item(patient_id, f"quota#{template_id}", change)
        return why[0] if why else None

    def _refund(self, patient_id: str, template_id: str) -> None:
        self.store.change_patient_item(
            patient_id,
            f"quota#{template_id}",
            lambda c: {**(c or {}), "credits": int((c or {}).get("credits", 0)) + 1},
        )

    def _zero(self, patient_id: str, template_id: str) -> None:
        self.store.change_patient_item(
            patient_id, f"quota#{template_id}", lambda c: {**(c or {}), "credits": 0, "last_answer": "refused"}
        )

    def _wechat(self, record: dict[str, Any]) -> str:
        kind = Kind(record["kind"])
        patient = record["patient_id"]
        tpl = self.templates.wechat[kind]
        contact = self.contacts.reveal(patient)
        if not contact.get("openid"):
            return self._fallback(record, "NO_OPENID")
        why = self._spend_credit(patient, tpl.template_id)
        if why:
            return self._fallback(record, why)
        try:
            data = self.templates.wechat_data(kind, {**record.get("params", {}), "patient": contact.get("name")})
        except FieldInvalid as exc:
            self._refund(patient, tpl.template_id)
            log.error("guide template field invalid", extra={"kind": kind.value, "field": exc.key})
            return self._fallback(record, f"WECHAT_FIELD_INVALID ({exc.key})")
        page = f"{tpl.page}?visit_id={record['visit_id']}"
        try:
            answer = self.wechat.send_subscribe(str(contact["openid"]), tpl.template_id, page, data)
        except ChannelUnavailable:
            self._refund(patient, tpl.template_id)
            raise
        code = int(answer.get("errcode", -1))
        if code == 0:
            self._move(record, "sent", reason=None, message_id=str(answer.get("msgid", "")))
            return "sent"
        if code == 43101:
            self._zero(patient, tpl.template_id)
            return self._fallback(record, "WECHAT_REFUSED (43101)")
        if code in (40003, 47003):
            self._refund(patient, tpl.template_id)
            if code == 47003:
                log.error("wechat rejected template data", extra={"kind": kind.value, "errmsg": answer.get("errmsg")})
            return self._fallback(record, f"WECHAT_REJECTED ({code})")
        self._refund(patient, tpl.template_id)
        raise ChannelUnavailable(f"WECHAT_ERROR ({code} {answer.get('errmsg', '')})".strip())

    # -- SMS --------------------------------------------------------------------------------------

    def _sms(self, record: dict[str, Any]) -> str:
        kind = Kind(record["kind"])
        tpl = self.templates.sms.get(kind)
        contact = self.contacts.reveal(record["patient_id"])
        if tpl is None or not contact.get("phone"):
            return self._move(record, "undeliverable", reason="NO_PHONE" if tpl else "NO_SMS_TEMPLATE")["status"]
        now = self._now().astimezone(CST)
        rate_pk = f"smsrate#{contact['phone_index']}"
        epoch = int(self.clock())
        try:
            self.store.bump_counter(rate_pk, f"h#{now:%Y%m%d%H}", self.limits.per_hour, epoch + 2 * 3600)
            self.store.bump_counter(rate_pk, f"d#{now:%Y%m%d}", self.limits.per_day, epoch + 2 * 86400)
        except LimitReached as exc:
            window = "hour" if str(exc).startswith("h#") else "day"
            return self._move(record, "suppressed", reason=f"SMS_RATE_LIMITED (per {window})")["status"]
        variables = self.templates.sms_variables(kind, record.get("params", {}))
        answer = self.sms.send_sms(str(contact["phone"]), SMS_SIGN, tpl.code, variables, out_id=record["pk"])
        code = str(answer.get("Code"))
        if code == "OK":
            sent = self._move(record, "sent", reason=record.get("reason"), message_id=str(answer.get("BizId")))
            return str(sent["status"])
        if code == "isv.BUSINESS_LIMIT_CONTROL":
            return self._move(record, "suppressed", reason=f"SMS_PROVIDER_LIMIT ({code})")["status"]
        if code.startswith("isv."):
            log.error("sms refused", extra={"code": code, "kind": kind.value})
            return self._move(record, "undeliverable", reason=f"SMS_REFUSED ({code})")["status"]
        raise ChannelUnavailable(f"SMS_ERROR ({code})")
