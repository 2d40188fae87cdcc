"""guide announces each change of a visit's view as guide.visit_progressed, committed with the view
through its outbox; a duplicate event that changes nothing announces nothing."""

from __future__ import annotations

import secrets

from bianjie.contracts import REGISTRY
from bianjie.guide.adapters.queues import MemoryNotificationQueue
from bianjie.guide.model import VisitEvent
from bianjie.guide.service import Contacts, GuideService
from bianjie.guide.store import GuideStore
from bianjie.kit.audit import AuditLog
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.events import MemorySink
from bianjie.kit.fieldcrypt import BlindIndex, FieldCipher
from bianjie.kit.keys import LocalKeyPort
from bianjie.kit.outbox import Outbox, TopicSink
from bianjie.kit.tables import table_spec

from tests.unit.guide.conftest import HOSPITAL, TABLES, Clock, guide_specs


def test_each_change_of_a_view_is_announced_once() -> None:
    clock = Clock()
    db = MemoryDocumentStore(
        *guide_specs(), table_spec("AUDIT_TABLE", "audit"), table_spec("OUTBOX_TABLE", "outbox-rows"), clock=clock
    )
    store = GuideStore(db, TABLES)
    contacts = Contacts(
        store, FieldCipher(LocalKeyPort(secrets.token_bytes(16))), BlindIndex(secrets.token_bytes(32)), clock
    )
    sink = MemorySink()
    outbox = Outbox(db, "outbox-rows", "guide", {"events": TopicSink(sink)}, clock=clock)
    service = GuideService(
        store,
        MemoryNotificationQueue(),
        contacts,
        AuditLog(db, "audit", clock, service="guide"),
        clock=clock,
        events=outbox,
    )
    booked = {
        "event_id": "e1",
        "type": "visit.booked",
        "visit_id": "V1",
        "patient_id": "p-1",
        "occurred_at": "2025-06-04T09:00:00+08:00",
        "data": {"department": "心内科", "appointment_at": "2025-06-04T09:30:00+08:00"},
    }
    queued = {
        "event_id": "e2",
        "type": "queue.updated",
        "visit_id": "V1",
        "occurred_at": "2025-06-04T09:10:00+08:00",
        "data": {"queue_position": 3, "place_name": "3楼候诊区", "place_poi": "opd-3f"},
    }
    service.ingest(HOSPITAL, [VisitEvent.model_validate(booked), VisitEvent.model_validate(queued)])
    service.ingest(HOSPITAL, [VisitEvent.model_validate(queued)])  # a duplicate: nothing new to say
    sent = sink.of_type("guide.visit_progressed")
    assert [e.id for e in sent] == ["V1-1", "V1-2"]
    data = REGISTRY.parse(sent[-1])
    assert data.model_dump()["state"] == "waiting" and data.model_dump()["queue_position"] == 3
    assert data.model_dump()["hospital"] == "demo-hospital" and data.model_dump()["visit_day"] == "2025-06-04"
    assert data.model_dump()["is_open"] is True
