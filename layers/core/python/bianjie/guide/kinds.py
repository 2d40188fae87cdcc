"""The seven notification kinds (消息通知) and the rules each follows.

- urgent kinds pass through quiet hours (the patient is in the hospital, or the visit is imminent);
- ``sms`` says whether the kind may fall back to SMS when WeChat cannot deliver. SMS costs money and
  patients read it as important, so invitations (pre-consultation, survey) stay WeChat-only;
- ``step`` names what one notification is about, so the dedup key (kind, visit, step) lets one
  message through per order, report, prescription or reminder slot.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    REGISTRATION_SUCCESS = "registration_success"
    PENDING_PAYMENT = "pending_payment"
    MEDICINE_PICKUP = "medicine_pickup"
    REPORT_PUBLISHED = "report_published"
    VISIT_REMINDER = "visit_reminder"
    PRECONSULT_REMINDER = "preconsult_reminder"
    SURVEY = "survey"


@dataclass(frozen=True)
class KindRule:
    label: str
    urgent: bool
    sms: bool


RULES: dict[Kind, KindRule] = {
    Kind.REGISTRATION_SUCCESS: KindRule("挂号成功通知", urgent=False, sms=True),
    Kind.PENDING_PAYMENT: KindRule("待缴费通知", urgent=True, sms=True),
    Kind.MEDICINE_PICKUP: KindRule("取药通知", urgent=True, sms=True),
    Kind.REPORT_PUBLISHED: KindRule("报告发布通知", urgent=False, sms=True),
    Kind.VISIT_REMINDER: KindRule("就诊提醒", urgent=True, sms=True),
    Kind.PRECONSULT_REMINDER: KindRule("预问诊提醒", urgent=False, sms=False),
    Kind.SURVEY: KindRule("满意度调研提醒", urgent=False, sms=False),
}


def dedup_key(kind: Kind, visit_id: str, step: str) -> str:
    return f"{kind.value}#{visit_id}#{step}"
