"""A day of hospital events for one visit, through every state: for HIS developers to copy, for the
CLI (`bianjie guide example-day`), the integration test and the benchmark."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from bianjie.guide.model import CST


def example_day(
    visit_id: str,
    patient_id: str,
    day: date,
    *,
    openid: str | None = "oWx_demo_patient",
    phone: str | None = "13800138000",
    name: str = "张三",
    booked_at: datetime | None = None,
    prefix: str | None = None,
) -> list[dict[str, Any]]:
    """Eleven events: booked (the day before, unless ``booked_at``) ... done, in Beijing time on ``day``."""
    p = prefix or visit_id

    def at(hh_mm: str) -> str:
        hour, minute = hh_mm.split(":")
        return datetime(day.year, day.month, day.day, int(hour), int(minute), tzinfo=CST).isoformat()

    def ev(n: int, type_: str, when: str, **data: Any) -> dict[str, Any]:
        return {"event_id": f"{p}-{n}", "type": type_, "visit_id": visit_id, "occurred_at": when, "data": data}

    contact = {k: v for k, v in {"phone": phone, "wechat_openid": openid, "name": name}.items() if v}
    booked = ev(
        1,
        "visit.booked",
        (
            booked_at or datetime.combine(day - timedelta(days=1), datetime.min.time(), CST) + timedelta(hours=10)
        ).isoformat(),
        department="心内科",
        doctor="李医生",
        appointment_at=at("09:30"),
        place_poi="rj.out.3f.cardio",
        place_name="门诊楼3楼心内科",
        preconsult_required=True,
        contact=contact,
    )
    booked["patient_id"] = patient_id
    return [
        booked,
        ev(2, "visit.checked_in", at("09:10")),
        ev(3, "queue.updated", at("09:12"), queue_position=3),
        ev(4, "visit.consulted", at("09:40")),
        ev(
            5,
            "payment.pending",
            at("09:45"),
            order_id=f"{p}-O1",
            amount_fen=12850,
            place_poi="rj.out.1f.cashier",
            place_name="门诊楼1楼收费处",
        ),
        ev(6, "payment.paid", at("09:50"), order_id=f"{p}-O1"),
        ev(
            7,
            "exam.checked_in",
            at("10:05"),
            exam_id=f"{p}-E1",
            exam_name="心脏彩超",
            place_poi="rj.med.2f.echo",
            place_name="医技楼2楼超声室",
        ),
        ev(8, "report.ready", at("10:40"), report_id=f"{p}-R1", report_name="心脏彩超报告"),
        ev(
            9,
            "medicine.ready",
            at("11:00"),
            rx_id=f"{p}-RX1",
            place_poi="rj.out.1f.pharmacy",
            place_name="门诊楼1楼西药房",
        ),
        ev(10, "medicine.collected", at("11:10"), rx_id=f"{p}-RX1"),
        ev(11, "visit.done", at("11:20")),
    ]
