"""Other bianjie services' domain events, read as visit events.

Guide subscribes to the domain-events topic with a filter on ``type`` and maps:

    rx.dispensed (in hospital) -> medicine.ready   (settled at the hospital: "pick it up at the pharmacy")
    rx.dispensed (pharmacy)    -> medicine.collected (bought at an outside pharmacy: nothing left to do)
    rx.released                -> medicine.ready, external_pharmacy (take it to a designated pharmacy)
    pay.charge_succeeded       -> payment.paid     (any pay.* type naming a completed charge/payment)
    film.report_published      -> report.ready

rx tells the two dispensings apart by ``data.pharmacy`` (the pharmacy's app id, set only for outside
purchases). rx events carry no place; for an in-hospital dispensing the place is the hospital's
pharmacy window from its partner settings (``guide.pharmacy``: ``{"place_poi", "place_name"}``), read
through ``pharmacy_place``; without it the to-do says "药房".

Producers publish ids only. Guide needs ``data.visit_id`` (the hospital's visit / encounter id) to place
the event; ids it reads besides: prescription_id|rx_id, order_id|order_no|his_order_id|charge_id,
report_id|study_uid|accession_number, place_poi, place_name. An event it cannot place, or of a type it
does not know, is acknowledged and logged, never retried: retrying cannot make it placeable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from bianjie.guide.model import EventData, VisitEvent
from bianjie.kit.events import Envelope

PAID_WORDS = ("succeeded", "success", "completed", "paid", "settled")
SUBSCRIBED = ["rx.dispensed", "rx.released", "film.report_published"]


def _first(data: dict[str, Any], *names: str) -> Any:
    for name in names:
        if data.get(name) not in (None, ""):
            return data[name]
    return None


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


PlaceLookup = Callable[[str], dict[str, str] | None]


def visit_event(envelope: Envelope, pharmacy_place: PlaceLookup | None = None) -> tuple[VisitEvent | None, str | None]:
    """(the visit event, None), or (None, why it was skipped). ``pharmacy_place``: hospital app id -> the
    place of its pharmacy window (``place_poi``, ``place_name``), or None."""
    data = dict(envelope.data)
    visit_id = _first(data, "visit_id", "encounter_id", "visit_no")
    if not visit_id:
        return None, "NO_VISIT_ID"
    place = {k: data[k] for k in ("place_poi", "place_name") if data.get(k)}
    t = envelope.type
    body: dict[str, Any]
    if t in ("rx.dispensed", "rx.released"):
        rx_id = _first(data, "prescription_id", "rx_id", "hi_rxno") or envelope.subject
        if t == "rx.dispensed" and data.get("pharmacy"):
            body = {"type": "medicine.collected", "data": {"rx_id": rx_id}}
        elif t == "rx.released":
            body = {"type": "medicine.ready", "data": {"rx_id": rx_id, "external_pharmacy": True}}
        else:
            if not place and pharmacy_place and data.get("hospital"):
                place = _place(pharmacy_place(str(data["hospital"])))
            body = {"type": "medicine.ready", "data": {"rx_id": rx_id, **place}}
    elif t.startswith("pay.") and any(word in t for word in PAID_WORDS):
        order_id = _first(data, "order_id", "order_no", "his_order_id", "charge_id") or envelope.subject
        amount = _first(data, "amount_fen", "total_fen", "amount")
        body = {"type": "payment.paid", "data": {"order_id": order_id}}
        if isinstance(amount, int):
            body["data"]["amount_fen"] = amount
    elif t == "film.report_published":
        report_id = _first(data, "report_id", "study_uid", "accession_number") or envelope.subject
        name = _first(data, "report_name", "study_description")
        body = {"type": "report.ready", "data": {"report_id": report_id}}
        if name:
            body["data"]["report_name"] = str(name)[:40]
    else:
        return None, "TYPE_NOT_HANDLED"
    try:
        event = VisitEvent.model_validate(
            {
                **body,
                "event_id": envelope.id,
                "visit_id": visit_id,
                "occurred_at": envelope.time,
                **({"patient_id": data["patient_id"]} if data.get("patient_id") else {}),
            }
        )
    except ValidationError as exc:
        return None, f"INVALID ({exc.errors()[0]['loc']})"
    return event, None
