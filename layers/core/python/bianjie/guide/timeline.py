"""The visit timeline (就诊动态): fold events into a view, and say what the patient does next.

``fold`` sorts events by the hospital's clock (``occurred_at``), then by the natural order of a
visit, then by event id, and applies each once. The view is therefore the same whatever order the
events arrived in and however often each was delivered; a late event slots into its place in time.

``done`` and ``cancelled`` are sticky: a report published the day after the visit still adds its
to-do card, but the visit stays done.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, time, timedelta

from bianjie.guide.model import (
    CST,
    EVENT_RANK,
    EVENT_STATE,
    STATE_LABELS,
    Exam,
    Medicine,
    NextTodo,
    Order,
    Report,
    State,
    Step,
    TodoCard,
    VisitEvent,
    VisitView,
)

TERMINAL = (State.DONE, State.CANCELLED)


def event_order(event: VisitEvent) -> tuple[datetime, int, str]:
    return (event.occurred_at.astimezone(UTC), EVENT_RANK[event.type], event.event_id)


def fold(visit_id: str, events: Iterable[VisitEvent]) -> VisitView:
    view = VisitView(visit_id=visit_id)
    seen: set[str] = set()
    for event in sorted(events, key=event_order):
        if event.event_id in seen:
            continue
        seen.add(event.event_id)
        apply(view, event)
    view.event_count = len(seen)
    return view


def apply(view: VisitView, event: VisitEvent) -> None:
    d = event.data
    at = event.occurred_at
    if event.patient_id and not view.patient_id:
        view.patient_id = event.patient_id
    match event.type:
        case "visit.booked":
            view.department = d.department or view.department
            view.doctor = d.doctor or view.doctor
            view.appointment_at = d.appointment_at
            view.place_poi = d.place_poi or view.place_poi
            view.place_name = d.place_name or view.place_name
            view.preconsult_required = bool(d.preconsult_required)
        case "visit.checked_in":
            view.place_poi = d.place_poi or view.place_poi
            view.place_name = d.place_name or view.place_name
        case "queue.updated":
            view.queue_position = d.queue_position
        case "payment.pending":
            assert d.order_id is not None and d.amount_fen is not None
            old = view.orders.get(d.order_id)
            view.orders[d.order_id] = Order(
                order_id=d.order_id,
                amount_fen=d.amount_fen,
                paid=bool(old and old.paid),  # a payment stamped earlier than its order still counts
                due_at=d.due_at,
                place_poi=d.place_poi,
                place_name=d.place_name,
            )
        case "payment.paid":
            assert d.order_id is not None
            order = view.orders.setdefault(d.order_id, Order(order_id=d.order_id, amount_fen=d.amount_fen or 0))
            order.paid = True
        case "exam.checked_in":
            assert d.exam_id is not None
            view.exams[d.exam_id] = Exam(
                exam_id=d.exam_id, name=d.exam_name, place_poi=d.place_poi, place_name=d.place_name, checked_in=True
            )
        case "report.ready":
            assert d.report_id is not None
            view.reports[d.report_id] = Report(report_id=d.report_id, name=d.report_name or d.exam_name, at=at)
        case "medicine.ready":
            assert d.rx_id is not None
            old_med = view.medicines.get(d.rx_id)
            view.medicines[d.rx_id] = Medicine(
                rx_id=d.rx_id,
                place_poi=d.place_poi,
                place_name=d.place_name,
                external=bool(d.external_pharmacy),
                collected=bool(old_med and old_med.collected),
                ready_at=at,
            )
        case "medicine.collected":
            assert d.rx_id is not None
            view.medicines.setdefault(d.rx_id, Medicine(rx_id=d.rx_id)).collected = True
        case "preconsult.completed":
            view.preconsult_done = True
        case "survey.completed":
            view.survey_done = True
        case "visit.done":
            view.done_at = at
    new_state = EVENT_STATE[event.type]
    if new_state is None or view.state in TERMINAL:
        return
    if new_state is State.PAID and view.pending_orders:
        new_state = State.PAYMENT_PENDING  # one order paid, another still owed
    if new_state is not State.WAITING:
        view.queue_position = None
    view.state = new_state
    view.state_at = at
    place_poi, place_name = _place_of(view, event)
    view.history.append(
        Step(
            state=new_state,
            label=STATE_LABELS[new_state],
            at=at,
            event_id=event.event_id,
            place_poi=place_poi,
            place_name=place_name,
        )
    )


def _place_of(view: VisitView, event: VisitEvent) -> tuple[str | None, str | None]:
    d = event.data
    if d.place_poi or d.place_name:
        return d.place_poi, d.place_name
    if event.type in ("visit.booked", "visit.checked_in", "queue.updated", "visit.consulted"):
        return view.place_poi, view.place_name
    return None, None


# -- what to do next --------------------------------------------------------------------------------


def yuan(fen: int) -> str:
    return f"¥{fen // 100}.{fen % 100:02d}"


def end_of_day(at: datetime) -> datetime:
    local = at.astimezone(CST)
    return datetime.combine(local.date(), time(23, 59, 59), CST)


def _link(path: str, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return f"/m/{path}?{query}" if query else f"/m/{path}"


def todos(view: VisitView) -> list[TodoCard]:
    """Every open item of the visit, most pressing first (the first is the next to-do)."""
    v = view.visit_id
    cards: list[TodoCard] = []
    if view.state is None or view.state is State.CANCELLED:
        return cards
    for order in sorted(view.pending_orders, key=lambda o: o.order_id):
        cards.append(
            TodoCard(
                card_id=f"pay:{order.order_id}",
                visit_id=v,
                priority=10,
                action="pay",
                title=f"待缴费 {yuan(order.amount_fen)}",
                detail="可在线缴费，或到收费窗口缴费",
                deadline=order.due_at or (end_of_day(view.state_at) if view.state_at else None),
                place_poi=order.place_poi,
                place_name=order.place_name or "收费窗口",
                action_link=_link("pay", visit_id=v, order_id=order.order_id),
            )
        )
    for med in sorted(view.medicines.values(), key=lambda m: m.rx_id):
        if med.collected:
            continue
        if med.external:
            title, detail = "到定点药店购药", "处方已流转，凭医保电子凭证到定点药店购药"
        else:
            title, detail = f"到{med.place_name or '药房'}取药", "药品已备好，请持就诊凭证取药"
        cards.append(
            TodoCard(
                card_id=f"medicine:{med.rx_id}",
                visit_id=v,
                priority=20,
                action="medicine",
                title=title,
                detail=detail,
                deadline=end_of_day(med.ready_at) if med.ready_at and not med.external else None,
                place_poi=None if med.external else med.place_poi,
                place_name=None if med.external else (med.place_name or "药房"),
                action_link=_link("prescriptions", visit_id=v, rx_id=med.rx_id),
            )
        )
    if view.state is State.BOOKED:
        if view.preconsult_required and not view.preconsult_done:
            cards.append(
                TodoCard(
                    card_id="preconsult",
                    visit_id=v,
                    priority=30,
                    action="preconsult",
                    title="完成预问诊",
                    detail="就诊前填写病情信息，医生可提前了解",
                    deadline=view.appointment_at,
                    action_link=_link("preconsult", visit_id=v),
                )
            )
        cards.append(
            TodoCard(
                card_id="check_in",
                visit_id=v,
                priority=31,
                action="check_in",
                title="到院签到取号",
                detail=f"{view.department or ''}就诊，请提前15分钟签到".lstrip(),
                deadline=view.appointment_at,
                place_poi=view.place_poi,
                place_name=view.place_name,
                action_link=_link("checkin", visit_id=v),
            )
        )
    elif view.state in (State.CHECKED_IN, State.WAITING):
        if view.queue_position == 0:
            title, detail = "请进入诊室就诊", "已叫到您的号"
        elif view.queue_position is not None:
            title, detail = f"候诊中，前面还有{view.queue_position}位", "请留意叫号屏幕"
        else:
            title, detail = "候诊中", "请在候诊区等候叫号"
        cards.append(
            TodoCard(
                card_id="wait",
                visit_id=v,
                priority=40,
                action="wait",
                title=title,
                detail=detail,
                place_poi=view.place_poi,
                place_name=view.place_name,
            )
        )
    elif view.state is State.EXAM_CHECKED_IN:
        exam = next((e for e in reversed(view.exams.values()) if e.checked_in), None)
        cards.append(
            TodoCard(
                card_id=f"exam:{exam.exam_id}" if exam else "exam",
                visit_id=v,
                priority=40,
                action="exam",
                title=f"{exam.name or '检查'}：请在检查室外等候" if exam else "检查中",
                place_poi=exam.place_poi if exam else None,
                place_name=exam.place_name if exam else None,
            )
        )
    for report in sorted(view.reports.values(), key=lambda r: r.at):
        if view.state is State.DONE and view.done_at and report.at < view.done_at:
            continue  # read during the visit; the board keeps it in history
        cards.append(
            TodoCard(
                card_id=f"report:{report.report_id}",
                visit_id=v,
                priority=50,
                action="report",
                title=f"查看报告：{report.name or '检查报告'}",
                action_link=_link("reports", visit_id=v, report_id=report.report_id),
            )
        )
    if view.state is State.PAID and not cards:
        cards.append(
            TodoCard(
                card_id="invoice",
                visit_id=v,
                priority=60,
                action="invoice",
                title="获取电子发票",
                action_link=_link("invoice", visit_id=v),
            )
        )
    if view.state is State.CONSULTED and not cards:
        cards.append(
            TodoCard(
                card_id="await_orders",
                visit_id=v,
                priority=60,
                action="wait",
                title="请留意缴费、检查或取药通知",
                detail="医生开具的检查、处方缴费后即可办理",
            )
        )
    if view.state is State.DONE and not view.survey_done:
        cards.append(
            TodoCard(
                card_id="survey",
                visit_id=v,
                priority=70,
                action="survey",
                title="评价本次就诊",
                detail="您的评价帮助我们改进服务",
                deadline=(view.done_at + timedelta(days=7)) if view.done_at else None,
                action_link=_link("survey", visit_id=v),
            )
        )
    cards.sort(key=lambda c: c.priority)
    return cards


def next_todo(view: VisitView) -> NextTodo:
    cards = todos(view)
    if cards:
        return NextTodo(**cards[0].model_dump(exclude={"card_id", "visit_id", "priority"}))
    if view.state is State.CANCELLED:
        return NextTodo(action="none", title="本次预约已取消")
    if view.state is State.DONE:
        return NextTodo(action="none", title="本次就诊已完成", action_link=_link("invoice", visit_id=view.visit_id))
    return NextTodo(action="none", title="暂无待办")
