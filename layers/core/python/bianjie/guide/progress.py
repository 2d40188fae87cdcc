"""What guide tells other services of a visit's progress: ``guide.visit_progressed`` (bianjie.contracts.guide),
built from the folded view each time it changes, published through guide's outbox with the view's write.
escort's room (云陪诊) reads it; it carries ids, states, labels and places, never contact details."""

from __future__ import annotations

from bianjie.contracts.guide import GuideVisitProgressedV1, ProgressItem
from bianjie.guide.model import CST, STATE_LABELS, VisitView
from bianjie.guide.timeline import next_todo


def _iso(value: object) -> str | None:
    return value.isoformat() if hasattr(value, "isoformat") else None


def progress_event(view: VisitView, seq: int, hospital: str) -> GuideVisitProgressedV1:
    todo = next_todo(view)
    day = view.appointment_at.astimezone(CST).date().isoformat() if view.appointment_at else None
    if day is None and view.state_at is not None:
        day = view.state_at.astimezone(CST).date().isoformat()
    return GuideVisitProgressedV1(
        visit_id=view.visit_id,
        seq=seq,
        patient_id=view.patient_id,
        hospital=hospital or "unknown",
        state=view.state.value if view.state else None,
        state_label=STATE_LABELS[view.state] if view.state else None,
        is_open=view.open or view.state is None,
        visit_day=day,
        department=view.department,
        queue_position=view.queue_position,
        next_action=todo.action[:20] if todo.action else None,
        next_title=todo.title[:60] if todo.title else None,
        next_place_poi=todo.place_poi,
        next_place_label=todo.place_name,
        reports=tuple(
            ProgressItem(item_id=r.report_id, label=r.name, ready_at=_iso(r.at)) for r in view.reports.values()
        )[:50],
        prescriptions=tuple(
            ProgressItem(item_id=m.rx_id, ready_at=_iso(m.ready_at), place_label=m.place_name)
            for m in view.medicines.values()
        )[:50],
    )
