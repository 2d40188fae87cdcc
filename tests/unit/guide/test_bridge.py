"""Other services' events read through their contracts as visit events: which type each becomes, what is
acknowledged unused, and what is rejected (dead-lettered by the batch helper)."""

from __future__ import annotations

from typing import Any

import pytest
from bianjie.guide.bridge import SUBSCRIBED, visit_event
from bianjie.kit.events import Envelope, EventRejected

from tests import events
from tests.functional.test_template_contract import ROOT

PHARMACY = {"place_poi": "rj.out.1f.pharmacy", "place_name": "门诊楼1楼西药房"}


def env(event_type: str, **data: Any) -> Envelope:
    return Envelope.model_validate(events.envelope(event_type, **data))


def places(app_id: str) -> dict[str, str] | None:
    return PHARMACY if app_id == "demo-hospital" else None


def test_in_hospital_dispensing_is_medicine_ready_at_the_hospitals_pharmacy() -> None:
    event, why = visit_event(env("rx.dispensed"), places)
    assert why is None and event is not None
    assert (event.type, event.visit_id, event.event_id) == (
        "medicine.ready",
        "MDTRT-20261122-0001",
        "31202611224167084115-5",
    )
    assert (event.data.rx_id, event.data.place_poi, event.data.place_name) == (
        "31202611224167084115",
        *PHARMACY.values(),
    )
    assert not event.data.external_pharmacy


def test_a_bad_pharmacy_setting_is_ignored() -> None:
    event, _ = visit_event(env("rx.dispensed"), lambda _: {"place_poi": "has spaces", "place_name": "x"})
    assert event is not None and event.type == "medicine.ready" and event.data.place_poi is None
    event, _ = visit_event(env("rx.dispensed"))
    assert event is not None and event.data.place_name is None


def test_bought_at_a_pharmacy_is_collected_and_released_is_external() -> None:
    event, _ = visit_event(env("rx.dispensed", pharmacy="demo-pharmacy"), places)
    assert event is not None and (event.type, event.data.rx_id) == ("medicine.collected", "31202611224167084115")
    event, _ = visit_event(env("rx.released"), places)
    assert event is not None and event.type == "medicine.ready" and event.data.external_pharmacy is True
    assert event.data.place_poi is None


def test_pay_success_with_the_his_order_number_and_film_report() -> None:
    event, _ = visit_event(env("pay.charge.succeeded"))
    assert event is not None
    assert (event.type, event.data.order_id, event.data.amount_fen) == ("payment.paid", "HIS-20261122-0001", 12850)
    event, _ = visit_event(env("film.report_published"))
    assert event is not None and (event.type, event.data.report_id) == (
        "report.ready",
        "1.2.156.112605.14038013507.20261122.1.9.1",
    )


def test_a_failed_pay_charge_leaves_the_bill_to_pay() -> None:
    """Every agreement declined: the bill is still unpaid, so it is pending again (the planner's to-do)."""
    event, why = visit_event(env("pay.charge.failed"))
    assert why is None and event is not None
    assert (event.type, event.data.order_id, event.data.amount_fen) == ("payment.pending", "HIS-20261122-0001", 12850)
    assert visit_event(env("pay.charge.failed", visit_id=None)) == (None, "NO_VISIT_ID")


def test_valid_events_guide_does_not_use_are_acknowledged_with_why() -> None:
    for unused in ("rx.uploaded", "rx.expired", "pay.refund.succeeded", "pay.refund.failed"):
        assert visit_event(env(unused)) == (None, "TYPE_NOT_HANDLED")
    assert visit_event(env("pay.charge.succeeded", visit_id=None)) == (None, "NO_VISIT_ID")
    assert visit_event(env("film.report_published", visit_id=None)) == (None, "NO_VISIT_ID")


@pytest.mark.parametrize(
    ("event_type", "data", "code"),
    [
        ("rx.dispensed", {"rx_id": "has spaces"}, "EVENT_INVALID"),  # the contract itself refuses
        ("rx.released", {"visit_id": None}, "EVENT_INVALID"),  # rx always has a visit
        ("pay.charge.succeeded", {"order_no": "订单 1"}, "EVENT_NOT_MAPPABLE"),  # valid, but not a guide id
    ],
)
def test_events_guide_cannot_read_are_rejected_with_a_reason(event_type: str, data: dict, code: str) -> None:
    with pytest.raises(EventRejected) as caught:
        visit_event(env(event_type, **data))
    assert caught.value.code == code


def test_the_subscription_filter_lists_exactly_what_guide_maps() -> None:
    from bianjie.runtime.template import load_template

    resources = load_template(ROOT / "template.yaml").resources
    policy = resources["GuideDomainEventsSubscription"]["Properties"]["FilterPolicy"]
    assert sorted(policy["type"]) == SUBSCRIBED
