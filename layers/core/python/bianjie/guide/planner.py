"""The notification planner: which of the seven kinds an event or a schedule calls for, and on which channel.

``plan_event`` looks at the event and at the visit as folded *with* it, so a late or reordered event
never produces a stale message: a "pending payment" for an order the view already shows as paid, or a
"pick up your medicine" for medicine already collected, is not planned. ``decide`` applies the
patient's preferences and quiet hours; the WeChat quota and fallback are the sender's business,
because only the sender knows whether WeChat delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from bianjie.guide.kinds import RULES, Kind, dedup_key
from bianjie.guide.model import CST, State, VisitEvent, VisitView
from bianjie.guide.prefs import Preferences, quiet_until

SURVEY_AFTER = timedelta(hours=1)
SURVEY_UNTIL = timedelta(days=3)
PRECONSULT_WITHIN = timedelta(hours=24)
SOON_WITHIN = timedelta(hours=2)


@dataclass(frozen=True)
class Intent:
    kind: Kind
    visit_id: str
    patient_id: str
    step: str
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return dedup_key(self.kind, self.visit_id, self.step)


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def base_params(view: VisitView) -> dict[str, Any]:
    params = {
        "department": view.department,
        "place_name": view.place_name,
        "appointment_at": _iso(view.appointment_at),
    }
    return {k: v for k, v in params.items() if v is not None}


def plan_event(event: VisitEvent, view: VisitView, now: datetime) -> list[Intent]:
    if not view.patient_id or view.state is State.CANCELLED:
        return []
    d = event.data
    params = base_params(view)

    def intent(kind: Kind, step: str, **extra: Any) -> list[Intent]:
        assert view.patient_id is not None
        return [Intent(kind, view.visit_id, view.patient_id, step, {**params, **extra})]

    match event.type:
        case "visit.booked":
            if view.state is State.BOOKED and view.appointment_at and view.appointment_at > now:
                # a rescheduled booking is a new appointment and deserves its own confirmation
                return intent(Kind.REGISTRATION_SUCCESS, "booked@" + view.appointment_at.strftime("%Y%m%d%H%M"))
        case "payment.pending":
            order = view.orders.get(d.order_id or "")
            if order and not order.paid:
                place = {"place_name": order.place_name} if order.place_name else {}
                return intent(
                    Kind.PENDING_PAYMENT, order.order_id, amount_fen=order.amount_fen, order_id=order.order_id, **place
                )
        case "report.ready":
            report = view.reports.get(d.report_id or "")
            if report:
                return intent(
                    Kind.REPORT_PUBLISHED,
                    report.report_id,
                    report_name=report.name or "检查报告",
                    at=report.at.isoformat(),
                )
        case "medicine.ready":
            med = view.medicines.get(d.rx_id or "")
            if med and not med.collected:
                extra: dict[str, Any] = {"rx_id": med.rx_id, "at": event.occurred_at.isoformat()}
                if med.external:
                    extra.update(place_name="定点药店", hint="处方已流转，请凭医保电子凭证购药")
                elif med.place_name:
                    extra["place_name"] = med.place_name
                return intent(Kind.MEDICINE_PICKUP, med.rx_id, **extra)
    return []


# -- schedules ------------------------------------------------------------------------------------------


def plan_day_before(view: VisitView, now: datetime) -> list[Intent]:
    """Visits tomorrow (Beijing date), still only booked."""
    if view.state is not State.BOOKED or not view.appointment_at or not view.patient_id:
        return []
    tomorrow = (now.astimezone(CST) + timedelta(days=1)).date()
    if view.appointment_at.astimezone(CST).date() != tomorrow:
        return []
    params = {**base_params(view), "when": "明日就诊"}
    return [Intent(Kind.VISIT_REMINDER, view.visit_id, view.patient_id, "d-1", params)]


def plan_soon(view: VisitView, now: datetime) -> list[Intent]:
    """Visits starting within two hours, not yet checked in."""
    if view.state is not State.BOOKED or not view.appointment_at or not view.patient_id:
        return []
    if not now < view.appointment_at <= now + SOON_WITHIN:
        return []
    params = {**base_params(view), "when": "即将就诊"}
    return [Intent(Kind.VISIT_REMINDER, view.visit_id, view.patient_id, "h-2", params)]


def plan_preconsult(view: VisitView, now: datetime) -> list[Intent]:
    if view.state is not State.BOOKED or not view.appointment_at or not view.patient_id:
        return []
    if not view.preconsult_required or view.preconsult_done:
        return []
    if not now < view.appointment_at <= now + PRECONSULT_WITHIN:
        return []
    return [Intent(Kind.PRECONSULT_REMINDER, view.visit_id, view.patient_id, "pre", base_params(view))]


def plan_survey(view: VisitView, now: datetime) -> list[Intent]:
    if view.state is not State.DONE or view.survey_done or not view.done_at or not view.patient_id:
        return []
    if not now - SURVEY_UNTIL <= view.done_at <= now - SURVEY_AFTER:
        return []
    return [Intent(Kind.SURVEY, view.visit_id, view.patient_id, "survey", base_params(view))]


# -- channel decision ---------------------------------------------------------------------------------

Channel = Literal["wechat", "sms"]


@dataclass(frozen=True)
class Decision:
    status: Literal["queued", "deferred", "suppressed"]
    channel: Channel | None = None
    not_before: datetime | None = None
    reason: str | None = None


def sms_allowed(kind: Kind, prefs: Preferences, has_phone: bool) -> bool:
    return RULES[kind].sms and prefs.sms and has_phone


def decide(kind: Kind, prefs: Preferences, *, has_openid: bool, has_phone: bool, now: datetime) -> Decision:
    if kind in prefs.muted:
        return Decision("suppressed", reason="MUTED_BY_PATIENT")
    channel: Channel
    if prefs.wechat and has_openid:
        channel = "wechat"
    elif sms_allowed(kind, prefs, has_phone):
        channel = "sms"
    else:
        return Decision("suppressed", reason="NO_CHANNEL")
    if not RULES[kind].urgent:
        until = quiet_until(prefs, now)
        if until is not None:
            return Decision("deferred", channel, not_before=until, reason="QUIET_HOURS")
    return Decision("queued", channel)


def still_needed(kind: Kind, step: str, view: VisitView, now: datetime) -> str | None:
    """None when a planned message still makes sense at send time; else why not. A HIS posting a day at
    once, or quiet hours holding a message till morning, must not make us remind a patient to pay an
    order already paid or to fetch medicine already collected."""
    if view.state is State.CANCELLED:
        return "VISIT_CANCELLED"
    match kind:
        case Kind.REGISTRATION_SUCCESS | Kind.VISIT_REMINDER | Kind.PRECONSULT_REMINDER:
            if view.state is not State.BOOKED:
                return f"VISIT_{view.state.value.upper() if view.state else 'UNKNOWN'}"
            if kind is Kind.PRECONSULT_REMINDER and view.preconsult_done:
                return "PRECONSULT_DONE"
            if kind is not Kind.REGISTRATION_SUCCESS and view.appointment_at and view.appointment_at <= now:
                return "APPOINTMENT_PASSED"
        case Kind.PENDING_PAYMENT:
            order = view.orders.get(step)
            if order is None or order.paid:
                return "ORDER_PAID"
        case Kind.MEDICINE_PICKUP:
            med = view.medicines.get(step)
            if med is None or med.collected:
                return "MEDICINE_COLLECTED"
        case Kind.SURVEY:
            if view.survey_done:
                return "SURVEY_DONE"
    return None
