"""Other services' events read as visit events: which type each becomes, and what is skipped."""

from __future__ import annotations

from typing import Any

from bianjie.guide.bridge import visit_event
from bianjie.kit.events import Envelope

PHARMACY = {"place_poi": "rj.out.1f.pharmacy", "place_name": "门诊楼1楼西药房"}


def rx(event_type: str, **extra: Any) -> Envelope:
    # the shape rx publishes (bianjie.rx.service._publish)
    data = {
        "rx_id": "3120260101000001",
        "hospital": "demo-hospital",
        "patient_ref": "ref",
        "visit_id": "V1",
        "status": event_type.split(".")[1],
        "valid_end": "2026-01-04T09:30:00Z",
        "uses": 1,
        **extra,
    }
    return Envelope(id="3120260101000001-4", source="bianjie.rx", type=event_type, subject=data["rx_id"], data=data)


def places(app_id: str) -> dict[str, str] | None:
    return PHARMACY if app_id == "demo-hospital" else None


def test_in_hospital_dispensing_is_medicine_ready_at_the_hospitals_pharmacy() -> None:
    event, why = visit_event(rx("rx.dispensed"), places)
    assert why is None and event is not None
    assert (event.type, event.visit_id, event.event_id) == ("medicine.ready", "V1", "3120260101000001-4")
    assert (event.data.rx_id, event.data.place_poi, event.data.place_name) == ("3120260101000001", *PHARMACY.values())
    assert not event.data.external_pharmacy


def test_a_place_in_the_event_wins_and_a_bad_setting_is_ignored() -> None:
    event, _ = visit_event(rx("rx.dispensed", place_name="急诊药房"), places)
    assert event is not None and (event.data.place_poi, event.data.place_name) == (None, "急诊药房")
    event, _ = visit_event(rx("rx.dispensed"), lambda _: {"place_poi": "has spaces", "place_name": "x"})
    assert event is not None and event.type == "medicine.ready" and event.data.place_poi is None
    event, _ = visit_event(rx("rx.dispensed"))
    assert event is not None and event.data.place_name is None


def test_bought_at_a_pharmacy_is_collected_and_released_is_external() -> None:
    event, _ = visit_event(rx("rx.dispensed", pharmacy="demo-pharmacy"), places)
    assert event is not None and (event.type, event.data.rx_id) == ("medicine.collected", "3120260101000001")
    event, _ = visit_event(rx("rx.released"), places)
    assert event is not None and event.type == "medicine.ready" and event.data.external_pharmacy is True
    assert event.data.place_poi is None


def test_pay_success_with_the_his_order_number() -> None:
    envelope = Envelope(
        source="bianjie.pay",
        type="pay.charge_succeeded",
        data={"charge_id": "ch1", "order_no": "HIS-1", "amount": 8800, "visit_id": "V1"},
    )
    event, _ = visit_event(envelope)
    assert event is not None and (event.type, event.data.order_id, event.data.amount_fen) == (
        "payment.paid",
        "HIS-1",
        8800,
    )


def test_skipped_events_say_why() -> None:
    assert visit_event(rx("rx.uploaded"))[1] == "TYPE_NOT_HANDLED"
    assert visit_event(Envelope(source="bianjie.rx", type="rx.released", data={"rx_id": "R"}))[1] == "NO_VISIT_ID"
    assert (
        visit_event(Envelope(source="bianjie.pay", type="pay.charge_failed", data={"order_no": "O", "visit_id": "V1"}))[
            1
        ]
        == "TYPE_NOT_HANDLED"
    )
    bad = visit_event(
        Envelope(source="bianjie.rx", type="rx.dispensed", data={"rx_id": "has spaces", "visit_id": "V1"})
    )[1]
    assert bad is not None and bad.startswith("INVALID")
