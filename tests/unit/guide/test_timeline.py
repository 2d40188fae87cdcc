"""The visit state machine: every state, the next to-do and its place, and order independence."""

from __future__ import annotations

from datetime import datetime

from bianjie.guide.model import State, VisitEvent
from bianjie.guide.timeline import fold, next_todo, todos

from tests.unit.guide.conftest import day_of_visit, ev


def events(bodies: list[dict]) -> list[VisitEvent]:
    return [VisitEvent.model_validate(b) for b in bodies]


EXPECTED = [
    # state after each event of day_of_visit, and the next to-do (action, title start, place)
    (State.BOOKED, "preconsult", "完成预问诊", None),
    (State.CHECKED_IN, "wait", "候诊中", "rj.out.3f.cardio"),
    (State.WAITING, "wait", "候诊中，前面还有3位", "rj.out.3f.cardio"),
    (State.CONSULTED, "wait", "请留意缴费", None),
    (State.PAYMENT_PENDING, "pay", "待缴费 ¥128.50", "rj.out.1f.cashier"),
    (State.PAID, "invoice", "获取电子发票", None),
    (State.EXAM_CHECKED_IN, "exam", "心脏彩超：请在检查室外等候", "rj.med.2f.echo"),
    (State.REPORT_READY, "report", "查看报告：心脏彩超报告", None),
    (State.MEDICINE_READY, "medicine", "到门诊楼1楼西药房取药", "rj.out.1f.pharmacy"),
    (State.MEDICINE_READY, "report", "查看报告：心脏彩超报告", None),  # medicine collected: the report is left
    (State.DONE, "survey", "评价本次就诊", None),
]


def test_every_state_in_order_with_next_step_and_place() -> None:
    bodies = day_of_visit()
    for n, (state, action, title, poi) in enumerate(EXPECTED, start=1):
        view = fold("V1", events(bodies[:n]))
        todo = next_todo(view)
        assert view.state is state, n
        assert (todo.action, todo.place_poi) == (action, poi), (n, todo)
        assert todo.title.startswith(title), (n, todo.title)
    assert [s.state for s in view.history] == list(dict.fromkeys(s for s, *_ in EXPECTED))
    assert len(view.history) == 10  # every state of the list, once
    assert view.history[0].place_poi == "rj.out.3f.cardio"


def test_booked_without_preconsult_asks_to_check_in_with_deadline() -> None:
    body = day_of_visit()[0]
    body["data"]["preconsult_required"] = False
    todo = next_todo(fold("V1", events([body])))
    assert todo.action == "check_in" and todo.title == "到院签到取号"
    assert todo.deadline == datetime.fromisoformat("2025-06-04T09:30:00+08:00")
    assert todo.action_link == "/m/checkin?visit_id=V1" and todo.place_poi == "rj.out.3f.cardio"


def test_reversed_and_duplicated_arrival_gives_the_same_view() -> None:
    bodies = day_of_visit()
    in_order = fold("V1", events(bodies))
    shuffled = fold("V1", events(list(reversed(bodies)) + bodies[3:6]))
    assert shuffled == in_order


def test_second_order_keeps_payment_pending_after_first_is_paid() -> None:
    bodies = [
        *day_of_visit()[:6],
        ev("x1", "payment.pending", "2025-06-04T09:46:00+08:00", order_id="O2", amount_fen=500),
    ]
    view = fold("V1", events(bodies))
    assert view.state is State.PAYMENT_PENDING
    assert [c.card_id for c in todos(view)] == ["pay:O2"]


def test_payment_stamped_before_its_order_still_counts_as_paid() -> None:
    view = fold(
        "V1",
        events(
            [
                ev("a", "payment.paid", "2025-06-04T09:00:00+08:00", order_id="O1"),
                ev("b", "payment.pending", "2025-06-04T09:01:00+08:00", order_id="O1", amount_fen=100),
            ]
        ),
    )
    assert view.pending_orders == []


def test_done_is_sticky_but_a_late_report_adds_a_card() -> None:
    late = ev("late", "report.ready", "2025-06-05T15:00:00+08:00", report_id="R9", report_name="血常规报告")
    bodies = [*day_of_visit(), late]
    view = fold("V1", events(bodies))
    assert view.state is State.DONE
    cards = [c.card_id for c in todos(view)]
    assert "report:R9" in cards and "report:V1-R1" not in cards and "survey" in cards


def test_cancelled_visit_has_nothing_to_do() -> None:
    view = fold("V1", events([day_of_visit()[0], ev("c", "visit.cancelled", "2025-06-03T12:00:00+08:00")]))
    assert view.state is State.CANCELLED and todos(view) == []
    assert next_todo(view).title == "本次预约已取消"


def test_external_pharmacy_card_has_no_in_hospital_place() -> None:
    view = fold(
        "V1", events([ev("m", "medicine.ready", "2025-06-04T11:00:00+08:00", rx_id="RX1", external_pharmacy=True)])
    )
    card = todos(view)[0]
    assert card.title == "到定点药店购药" and card.place_poi is None


def test_queue_called() -> None:
    view = fold("V1", events([ev("q", "queue.updated", "2025-06-04T09:00:00+08:00", queue_position=0)]))
    assert next_todo(view).title == "请进入诊室就诊"
