"""A guide service on in-memory documents (tables as the templates declare them), real SM4 field encryption,
a real audit chain, the WeChat and SMS stand-ins, and a clock the test moves."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from bianjie.guide.adapters.queues import MemoryNotificationQueue
from bianjie.guide.adapters.sms import AliyunSmsClient
from bianjie.guide.adapters.wechat import WeChatClient
from bianjie.guide.delivery import Deliverer, RetryLater, SmsLimits
from bianjie.guide.service import Contacts, GuideService
from bianjie.guide.store import GuideStore, Tables
from bianjie.guide.templates import TemplateBook
from bianjie.kit.actor import Actor
from bianjie.kit.audit import AuditLog
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.fieldcrypt import BlindIndex, FieldCipher
from bianjie.kit.keys import LocalKeyPort
from bianjie.kit.tables import table_spec
from bianjie_dev.guide.adapters.outbox import OutboxRecorder
from bianjie_dev.guide.adapters.sms import AliyunSmsStandIn
from bianjie_dev.guide.adapters.wechat import WeChatStandIn

TABLES = Tables("visits", "notifications", "outbox", "patients")
VARIABLES = {
    "visits": "GUIDE_VISITS_TABLE",
    "notifications": "GUIDE_NOTIFICATIONS_TABLE",
    "outbox": "GUIDE_OUTBOX_TABLE",
    "patients": "GUIDE_PATIENTS_TABLE",
}
HOSPITAL = Actor.partner("demo-hospital")
# Tuesday 2025-06-03 09:00 Beijing time, the day before the demo visit: outside default quiet hours
DAYTIME = datetime(2025, 6, 3, 1, 0, tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, now: float = DAYTIME) -> None:
        self.now = now

    def __call__(self) -> float:
        self.now += 0.001  # each reading a little later, so records made in one test keep their order
        return self.now

    def at(self, iso: str) -> None:
        self.now = datetime.fromisoformat(iso).timestamp()


def guide_specs() -> list[Any]:
    return [table_spec(variable, name) for name, variable in VARIABLES.items()]


@dataclass
class Rig:
    clock: Clock
    db: MemoryDocumentStore
    store: GuideStore
    queue: MemoryNotificationQueue
    service: GuideService
    deliverer: Deliverer
    wechat: WeChatStandIn
    sms: AliyunSmsStandIn

    def post(self, *events: dict[str, Any], caller: Actor = HOSPITAL) -> list[Any]:
        """Ingests events as they happen: the clock stands one minute after each."""
        from bianjie.guide.model import VisitEvent

        results = []
        for body in events:
            event = VisitEvent.model_validate(body)
            self.clock.now = max(self.clock.now, event.occurred_at.timestamp() + 60)
            results.extend(self.service.ingest(caller, [event]))
        return results

    def pump(self, max_rounds: int = 10) -> list[tuple[str, str, str]]:
        """Delivers everything queued (including fallbacks), as the channel queues' senders would."""
        done = []
        for _ in range(max_rounds):
            batch = self.queue.drain()
            if not batch:
                break
            for channel, key in batch:
                try:
                    done.append((channel, key, self.deliverer.deliver(channel, key)))
                except RetryLater:
                    done.append((channel, key, "retry"))
        return done

    def outbox(self, visit_id: str) -> list[dict[str, Any]]:
        return sorted(self.store.outbox_of_visit(visit_id), key=lambda m: m["sent_at"])

    def sent(self, visit_id: str) -> list[tuple[str, str]]:
        return [(m["channel"], m["kind"]) for m in self.outbox(visit_id) if m["accepted"]]

    def grant(self, patient_id: str, kind: str, times: int = 1) -> None:
        tpl = next(t for k, t in self.service.templates.wechat.items() if k.value == kind)
        for _ in range(times):
            self.service.record_subscriptions(patient_id, {tpl.template_id: "accept"})


@pytest.fixture
def rig() -> Rig:
    clock = Clock()
    db = MemoryDocumentStore(*guide_specs(), table_spec("AUDIT_TABLE", "audit"), clock=clock)
    store = GuideStore(db, TABLES)
    queue = MemoryNotificationQueue()
    contacts = Contacts(
        store, FieldCipher(LocalKeyPort(secrets.token_bytes(16))), BlindIndex(secrets.token_bytes(32)), clock
    )
    templates = TemplateBook()
    service = GuideService(store, queue, contacts, AuditLog(db, "audit", clock, service="guide"), templates, clock)
    recorder = OutboxRecorder(store, clock)
    wx = WeChatStandIn(recorder, templates)
    sms = AliyunSmsStandIn(recorder, templates, clock=clock)
    deliverer = Deliverer(
        store,
        queue,
        contacts,
        WeChatClient(wx.app_id, "local-standin-secret", wx, clock=clock),
        AliyunSmsClient(sms.access_key_id, "local-standin-secret", sms, clock=clock),
        templates,
        SmsLimits(per_hour=5, per_day=20),
        clock,
    )
    return Rig(clock, db, store, queue, service, deliverer, wx, sms)


def ev(
    event_id: str, type_: str, at: str, visit_id: str = "V1", patient_id: str | None = None, **data: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": event_id, "type": type_, "visit_id": visit_id, "occurred_at": at, "data": data}
    if patient_id:
        body["patient_id"] = patient_id
    return body


def day_of_visit(
    visit_id: str = "V1",
    patient_id: str = "p-1001",
    openid: str | None = "oWx_patient_1001",
    phone: str | None = "13800138000",
    day: str = "2025-06-04",
    booked_on: str = "2025-06-03",
) -> list[dict[str, Any]]:
    """A whole visit through every state, as a HIS would post it (Beijing times), booked the day before."""
    contact = {k: v for k, v in {"phone": phone, "wechat_openid": openid, "name": "张三"}.items() if v}
    return [
        ev(
            f"{visit_id}-1",
            "visit.booked",
            f"{booked_on}T10:00:00+08:00",
            visit_id,
            patient_id,
            department="心内科",
            doctor="李医生",
            appointment_at=f"{day}T09:30:00+08:00",
            place_poi="rj.out.3f.cardio",
            place_name="门诊楼3楼心内科",
            preconsult_required=True,
            contact=contact,
        ),
        ev(f"{visit_id}-2", "visit.checked_in", f"{day}T09:10:00+08:00", visit_id),
        ev(f"{visit_id}-3", "queue.updated", f"{day}T09:12:00+08:00", visit_id, queue_position=3),
        ev(f"{visit_id}-4", "visit.consulted", f"{day}T09:40:00+08:00", visit_id),
        ev(
            f"{visit_id}-5",
            "payment.pending",
            f"{day}T09:45:00+08:00",
            visit_id,
            order_id=f"{visit_id}-O1",
            amount_fen=12850,
            place_poi="rj.out.1f.cashier",
            place_name="门诊楼1楼收费处",
        ),
        ev(f"{visit_id}-6", "payment.paid", f"{day}T09:50:00+08:00", visit_id, order_id=f"{visit_id}-O1"),
        ev(
            f"{visit_id}-7",
            "exam.checked_in",
            f"{day}T10:05:00+08:00",
            visit_id,
            exam_id=f"{visit_id}-E1",
            exam_name="心脏彩超",
            place_poi="rj.med.2f.echo",
            place_name="医技楼2楼超声室",
        ),
        ev(
            f"{visit_id}-8",
            "report.ready",
            f"{day}T10:40:00+08:00",
            visit_id,
            report_id=f"{visit_id}-R1",
            report_name="心脏彩超报告",
        ),
        ev(
            f"{visit_id}-9",
            "medicine.ready",
            f"{day}T11:00:00+08:00",
            visit_id,
            rx_id=f"{visit_id}-RX1",
            place_poi="rj.out.1f.pharmacy",
            place_name="门诊楼1楼西药房",
        ),
        ev(f"{visit_id}-10", "medicine.collected", f"{day}T11:10:00+08:00", visit_id, rx_id=f"{visit_id}-RX1"),
        ev(f"{visit_id}-11", "visit.done", f"{day}T11:20:00+08:00", visit_id),
    ]
