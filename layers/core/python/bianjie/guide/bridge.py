"""Other bianjie services' domain events, read through their contracts and mapped to visit events.

Guide's queue is subscribed to the domain-events topic with a filter on ``type`` (template.yaml,
``GuideDomainEventsSubscription``). Each message is read with ``bianjie.contracts.REGISTRY``; a body
that is no envelope, an unknown type or version, or data that breaks its contract raises
``EventRejected`` and is dead-lettered with the reason by the batch helper. Each contract maps
explicitly:

    rx.dispensed, pharmacy absent   -> medicine.ready     (settled at the hospital: "pick it up at the pharmacy")
    rx.dispensed, pharmacy set      -> medicine.collected (bought at an outside pharmacy: nothing left to do)
    rx.released                     -> medicine.ready, external_pharmacy (take it to a designated pharmacy)
    pay.charge.succeeded            -> payment.paid       (order_id = the hospital's bill number)
    pay.charge.failed               -> payment.pending    (every agreement declined: the bill is still to pay,
                                                           so the patient gets the to-do to pay it)
    film.report_published           -> report.ready

rx events carry no place; for an in-hospital dispensing the place is the hospital's pharmacy window from
its partner settings (``guide.pharmacy``: ``{"place_poi", "place_name"}``), read through
``pharmacy_place``; without it the to-do says "药房".

A valid event guide does not use (another contract, or one without a visit id: pay and film give one
only when the hospital does) is acknowledged and logged with why: retrying cannot change it. A valid
event whose ids guide's own model refuses is dead-lettered (``EVENT_NOT_MAPPABLE``): the contract and
guide disagree, and an operator should see it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from bianjie.contracts import REGISTRY
from bianjie.contracts.film import FilmReportPublishedV1
from bianjie.contracts.pay import PayChargeFailedV1, PayChargeSucceededV1
from bianjie.contracts.rx import RxDispensedV1, RxReleasedV1
from bianjie.guide.model import EventData, VisitEvent
from bianjie.guide.service import GuideService
from bianjie.kit.actor import Actor
from bianjie.kit.events import Envelope, EventContract, EventRejected, parse_envelope
from bianjie.kit.logging import get_logger

log = get_logger("bianjie.guide.bridge")

MAPPED: tuple[type[EventContract], ...] = (
    RxDispensedV1,
    RxReleasedV1,
    PayChargeSucceededV1,
    PayChargeFailedV1,
    FilmReportPublishedV1,
)
SUBSCRIBED = sorted({c.event_type for c in MAPPED})  # what the subscription's FilterPolicy lists

PlaceLookup = Callable[[str], dict[str, str] | None]


def _place(setting: Any) -> dict[str, str]:
    """A place from partner settings, or {} when it is missing or malformed (a typo there must not cost
    the patient the pickup message: the to-do then just says "药房")."""
    if not isinstance(setting, dict):
        return {}
    place = {k: str(setting[k]) for k in ("place_poi", "place_name") if setting.get(k)}
    try:
        EventData.model_validate(place)
    except ValidationError:
        return {}
    return place


def _body(event: EventContract, pharmacy_place: PlaceLookup | None) -> dict[str, Any] | None:
    if isinstance(event, RxDispensedV1):
        if event.pharmacy:
            return {"type": "medicine.collected", "data": {"rx_id": event.rx_id}}
        place = _place(pharmacy_place(event.hospital)) if pharmacy_place else {}
        return {"type": "medicine.ready", "data": {"rx_id": event.rx_id, **place}}
    if isinstance(event, RxReleasedV1):
        return {"type": "medicine.ready", "data": {"rx_id": event.rx_id, "external_pharmacy": True}}
    if isinstance(event, PayChargeSucceededV1):
        return {"type": "payment.paid", "data": {"order_id": event.order_no, "amount_fen": event.amount_fen}}
    if isinstance(event, PayChargeFailedV1):
        return {"type": "payment.pending", "data": {"order_id": event.order_no, "amount_fen": event.amount_fen}}
    if isinstance(event, FilmReportPublishedV1):
        return {"type": "report.ready", "data": {"report_id": event.report_id}}
    return None


def visit_event(envelope: Envelope, pharmacy_place: PlaceLookup | None = None) -> tuple[VisitEvent | None, str | None]:
    """(the visit event, None), or (None, why it is acknowledged unused). Raises ``EventRejected`` for
    an event that breaks its contract or that guide cannot map. ``pharmacy_place``: hospital app id ->
    the place of its pharmacy window (``place_poi``, ``place_name``), or None."""
    event = REGISTRY.parse(envelope)
    body = _body(event, pharmacy_place)
    if body is None:
        return None, "TYPE_NOT_HANDLED"
    visit_id = getattr(event, "visit_id", None)
    if not visit_id:
        return None, "NO_VISIT_ID"
    try:
        visit = VisitEvent.model_validate(
            {**body, "event_id": envelope.id, "visit_id": visit_id, "occurred_at": envelope.time}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise EventRejected("EVENT_NOT_MAPPABLE", f"{envelope.type}: guide refuses {where}: {first['msg']}") from exc
    return visit, None


def consume(service: GuideService, body: str, pharmacy_place: PlaceLookup | None = None) -> str:
    """One message from guide's domain-events queue into the visit timeline; returns what became of it
    ("accepted", "duplicate", "rejected", or why it was skipped). Store errors propagate (redelivered)."""
    envelope = parse_envelope(body)
    event, skipped = visit_event(envelope, pharmacy_place)
    context = {"type": envelope.type, "event_id": envelope.id}
    if event is None:
        log.info("domain event not used", extra={**context, "why": skipped})
        return str(skipped)
    caller = Actor.system(envelope.source)
    [result] = service.ingest(caller, [event])
    if result.status == "rejected":
        log.warning("domain event refused", extra={**context, "why": result.code})
    return str(result.status)
