"""Property-based: any arrival order, with any duplicates, ends in the same board and never sends twice."""

from __future__ import annotations

from typing import Any

from bianjie.guide.model import VisitEvent
from bianjie.guide.timeline import fold
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.guide.conftest import day_of_visit
from tests.unit.guide.conftest import rig as make_rig

BODIES = day_of_visit()
IN_ORDER = fold("V1", [VisitEvent.model_validate(b) for b in BODIES])


@st.composite
def deliveries(draw: Any) -> list[dict[str, Any]]:
    """Every event at least once, some several times, in any order."""
    extra = draw(st.lists(st.sampled_from(BODIES), max_size=12))
    return draw(st.permutations(BODIES + extra))


@settings(max_examples=200, deadline=None)
@given(deliveries())
def test_fold_is_order_and_duplicate_independent(arrivals: list[dict[str, Any]]) -> None:
    assert fold("V1", [VisitEvent.model_validate(b) for b in arrivals]) == IN_ORDER


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrivals=deliveries())
def test_service_board_and_sends_under_reordering(arrivals: list[dict[str, Any]]) -> None:
    rig = make_rig.__wrapped__()  # a fresh rig per example
    for kind in ("registration_success", "pending_payment", "report_published", "medicine_pickup"):
        rig.grant("p-1001", kind, times=3)
    for body in arrivals:
        rig.service.ingest(_hospital(), [VisitEvent.model_validate(body)])
        rig.pump()
    stored = rig.store.view_item("V1")["view"]
    assert {k: v for k, v in stored.items() if k not in ("appt_utc", "appt_day")} == IN_ORDER.model_dump(mode="json")
    keys = [m["dedup_key"] or (m["kind"], m["template"]) for m in rig.outbox("V1")]
    assert len(keys) == len(set(keys))  # nothing sent twice
    first = {b["event_id"]: arrivals.index(b) for b in reversed(arrivals)}
    expected = {"report_published"}
    before_booking = {b["type"] for b in arrivals[: first["V1-1"]]}
    if before_booking <= {"medicine.collected"}:
        expected.add("registration_success")  # only while the visit is still just booked
    # a message goes out once its event and the booking (who to tell) are both in, unless by then the
    # order is already paid or the medicine already collected
    if first["V1-6"] > max(first["V1-5"], first["V1-1"]):
        expected.add("pending_payment")
    if first["V1-10"] > max(first["V1-9"], first["V1-1"]):
        expected.add("medicine_pickup")
    kinds = [k for _, k in rig.sent("V1")]
    assert sorted(kinds) == sorted(expected)


def _hospital() -> Any:
    from tests.unit.guide.conftest import HOSPITAL

    return HOSPITAL
