"""An in-memory consult world: memory documents and objects, real crypto (SM4 fields, SM2 reports), the
stand-in key registry, scanner and LiveKit tokens; three hospitals (A and B with an MDT agreement, C
with none) and their doctors; a platform admin."""

from __future__ import annotations

import itertools
import time
from datetime import date, timedelta
from typing import Any

import pytest
from bianjie.consult.models import (
    AgreementRequest,
    ApplyRequest,
    ConsultConsentRequest,
    CredentialRequest,
    ReportDraft,
    RespondRequest,
)
from bianjie.consult.repo import ConsultRepository
from bianjie.consult.rooms import LiveKitTokens
from bianjie.consult.scope import ScopeRepository
from bianjie.consult.service import ConsultService
from bianjie.kit.actor import Actor
from bianjie.kit.audit import AuditLog
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.events import MemorySink
from bianjie.kit.fieldcrypt import BlindIndex, FieldCipher
from bianjie.kit.idempotency import IdempotencyStore
from bianjie.kit.keys import LocalKeyPort
from bianjie.kit.objects import MemoryObjectStore
from bianjie.kit.outbox import EVENTS, Outbox, TopicSink
from bianjie.kit.tables import table_spec
from bianjie_dev.consult.standins import StandInKeyRegistry, StandInScanner

ADMIN = Actor(kind="staff", id="ops1", org="shenkang", roles=("consult-admin",))
PATIENT_ID = "310101198001010011"
PATIENT_NAME = "张三丰"
BUCKET = "consult-attachments"


def doctor(org: str, code: str) -> Actor:
    return Actor(kind="staff", id=code, org=org, roles=("doctor",))


A1, A2 = doctor("hospital-a", "A001"), doctor("hospital-a", "A002")
B1, B2 = doctor("hospital-b", "B001"), doctor("hospital-b", "B002")
C1 = doctor("hospital-c", "C001")


class Clock:
    def __init__(self) -> None:
        self.t = time.time()

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.docs = MemoryDocumentStore(
            table_spec("CONSULT_TABLE", "consult"),
            table_spec("CONSULT_SCOPE_TABLE", "scope"),
            table_spec("AUDIT_TABLE", "audit"),
            table_spec("OUTBOX_TABLE", "outbox"),
            table_spec("IDEMPOTENCY_TABLE", "idem"),
            clock=self.clock,
        )
        self.objects = MemoryObjectStore(clock=self.clock)
        self.events = MemorySink()
        self.keys = StandInKeyRegistry(b"k" * 32)
        self.rooms = LiveKitTokens(url="standin://livekit", api_key="standin", api_secret=b"s" * 32, clock=self.clock)
        self.audit = AuditLog(self.docs, "audit", self.clock, service="consult")
        self.service = ConsultService(
            repo=ConsultRepository(self.docs, "consult"),
            scope_repo=ScopeRepository(self.docs, "scope"),
            cipher=FieldCipher(LocalKeyPort(b"m" * 16)),
            index=BlindIndex(b"i" * 32),
            audit=self.audit,
            outbox=Outbox(self.docs, "outbox", "consult", {EVENTS: TopicSink(self.events)}, clock=self.clock),
            idempotency=IdempotencyStore(self.docs, "idem", clock=self.clock),
            objects=self.objects,
            bucket=BUCKET,
            rooms=self.rooms,
            signer=self.keys,
            keys=self.keys,
            scanner=StandInScanner(),
            clock=self.clock,
        )
        self._keys = itertools.count(1)
        today = date.today()
        self.agreement = self.service.create_agreement(
            ADMIN,
            AgreementRequest(
                name="A-B 肿瘤多学科协作",
                parties=["hospital-a", "hospital-b"],
                services=["mdt"],
                departments=[],
                valid_from=today - timedelta(days=30),
                valid_to=today + timedelta(days=365),
            ),
        )
        for actor, name, dept in (
            (A1, "王医生", "肿瘤科"),
            (A2, "李医生", "放射科"),
            (B1, "赵医生", "病理科"),
            (B2, "钱医生", "胸外科"),
            (C1, "孙医生", "心内科"),
        ):
            self.credential(actor, name, dept)

    def credential(self, actor: Actor, name: str, dept: str, status: str = "active") -> None:
        assert actor.org
        self.service.put_credential(
            ADMIN,
            actor.org,
            actor.id,
            CredentialRequest(
                name=name, licence_no="110310000123456", title="主任医师", department=dept, status=status
            ),  # type: ignore[arg-type]
        )

    def apply_body(self, invitees: list[Actor] | None = None, **overrides: Any) -> ApplyRequest:
        invitees = invitees if invitees is not None else [B1, B2]
        body: dict[str, Any] = {
            "invitees": [{"org": d.org, "doctor_code": d.id} for d in invitees],
            "start": self.iso(3600),
            "duration_min": 60,
            "patient": {"name": PATIENT_NAME, "id_number": PATIENT_ID, "sex": "male"},
            "visits": [
                {
                    "visit_id": "V001",
                    "visit_date": "2026-11-20",
                    "department": "肿瘤科",
                    "summary": "咳嗽三月，CT示右肺结节",
                }
            ],
            "purpose": "右肺结节性质判断及治疗方案",
            "location": {"kind": "video"},
            "symptoms": "咳嗽、痰中带血",
            "difficulties": "结节良恶性难以判断",
            "diagnosis": "右肺上叶结节，性质待定",
        }
        body.update(overrides)
        return ApplyRequest.model_validate(body)

    def iso(self, offset: float) -> str:
        from bianjie.kit.timefmt import utc_iso

        return utc_iso(self.clock() + offset, "seconds")

    def apply(self, invitees: list[Actor] | None = None, **overrides: Any) -> str:
        answer = self.service.apply(A1, self.apply_body(invitees, **overrides), f"k{next(self._keys)}")
        return answer.value.consultation_id

    def scheduled(self, invitees: list[Actor] | None = None, **overrides: Any) -> str:
        cid = self.apply(invitees, **overrides)
        self.service.record_consent(A1, cid, ConsultConsentRequest(method="written", reference="CONSENT-1"))
        assert self.service.submit(A1, cid).status == "scheduled"
        return cid

    def accepted(self, invitees: list[Actor] | None = None) -> str:
        invitees = invitees if invitees is not None else [B1, B2]
        cid = self.scheduled(invitees)
        for d in invitees:
            self.service.respond(d, cid, RespondRequest(answer="accept"))
        return cid

    def awaiting(self) -> str:
        cid = self.accepted()
        self.clock.advance(3600)
        self.service.join(A1, cid)
        self.service.join(B1, cid)
        self.clock.advance(1800)
        self.service.end(A1, cid)
        return cid

    def report(self, actor: Actor, cid: str, text: str = "考虑早期肺腺癌，建议手术切除") -> None:
        self.service.save_report(actor, cid, ReportDraft(opinion=text, recommendations="胸腔镜下肺叶切除"))
        self.service.sign_report(actor, cid)

    def status(self, cid: str) -> str:
        return str(self.service.repo.require(cid)["status"])


@pytest.fixture
def world() -> World:
    return World()
