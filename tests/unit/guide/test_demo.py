"""The ``make run`` demo visit (bianjie_dev.guide.demo): posted as one batch the moment the stack starts,
it leaves the patient with a payment to make, and its messages by day and by night."""

from __future__ import annotations

from datetime import datetime

import pytest
from bianjie.guide.model import CST, VisitEvent
from bianjie_dev.guide.demo import SUBSCRIBED, VISIT, demo_events

from tests.unit.guide.conftest import HOSPITAL, Rig


def start_stack_at(rig: Rig, local: str) -> None:
    now = datetime.fromisoformat(local)
    rig.clock.now = now.timestamp()
    rig.service.record_subscriptions("p-demo-1", {t: "accept" for t in SUBSCRIBED})
    results = rig.service.ingest(HOSPITAL, [VisitEvent.model_validate(e) for e in demo_events(now)])
    assert [r.status for r in results] == ["accepted"] * 11
    rig.pump()


def test_demo_visit_waits_for_payment_with_a_place_and_a_link(rig: Rig) -> None:
    start_stack_at(rig, "2025-06-04T10:30:00+08:00")
    board = rig.service.board("p-demo-1", VISIT)
    assert board.state == "payment_pending" and board.appointment_at == datetime(2025, 6, 4, 9, 15, tzinfo=CST)
    todo = board.next_todo
    assert (todo.action, todo.title, todo.place_name) == ("pay", "待缴费 ¥128.50", "门诊楼1楼收费处")
    assert todo.action_link == f"/m/pay?visit_id={VISIT}&order_id={VISIT}-O2"
    assert [c.action for c in board.todos] == ["pay", "report"]
    # by day: the report and the reminder for the open order; the exam fee was already paid
    assert sorted(rig.sent(VISIT)) == [("wechat", "pending_payment"), ("wechat", "report_published")]
    notes = {n["step"]: n for n in rig.store.notifications_of_visit(VISIT)}
    assert notes[f"{VISIT}-O1"]["reason"] == "NO_LONGER_NEEDED (ORDER_PAID)"


@pytest.mark.parametrize("local", ["2025-06-04T23:30:00+08:00", "2025-06-05T03:00:00+08:00"])
def test_at_night_the_report_waits_for_the_morning(rig: Rig, local: str) -> None:
    start_stack_at(rig, local)
    assert rig.sent(VISIT) == [("wechat", "pending_payment")]  # urgent: quiet hours do not hold it
    report = next(n for n in rig.store.notifications_of_visit(VISIT) if n["kind"] == "report_published")
    assert (report["status"], report["reason"]) == ("deferred", "QUIET_HOURS")
    assert datetime.fromisoformat(report["not_before"]).astimezone(CST).strftime("%H:%M") == "08:00"
