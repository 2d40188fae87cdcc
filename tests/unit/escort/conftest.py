"""An escort service on in-memory documents (the table as the template declares it), real SM4 field
encryption, a real audit chain, the kit's SMS client talking to escort's SMS stand-in, and a clock the
test moves."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from bianjie.contracts.guide import GuideVisitProgressedV1
from bianjie.escort.adapters.sms import AliyunSender
from bianjie.escort.model import InviteRequest, JoinRequest, OtpRequest
from bianjie.escort.service import EscortService
from bianjie.escort.store import EscortStore
from bianjie.escort.tags import HmacTags
from bianjie.kit.actor import Actor, Origin
from bianjie.kit.audit import AuditLog
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.fieldcrypt import BlindIndex, FieldCipher
from bianjie.kit.keys import LocalKeyPort
from bianjie.kit.sms import AliyunSmsClient
from bianjie.kit.tables import table_spec
from bianjie_dev.escort.adapters.sms import EscortSmsStandIn

# Thursday 2026-12-03 10:00 Beijing time
MORNING = datetime(2026, 12, 3, 2, 0, tzinfo=UTC).timestamp()
PATIENT = Actor(kind="patient", id="p-1", patient_ref="ref-p-1")
STRANGER = Actor(kind="patient", id="p-2", patient_ref="ref-p-2")
PHONE = "13812345678"


class Clock:
    def __init__(self, now: float = MORNING) -> None:
        self.now = now

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def progress(visit_id: str = "V1", seq: int = 1, **data: Any) -> GuideVisitProgressedV1:
    base: dict[str, Any] = {
        "visit_id": visit_id,
        "seq": seq,
        "patient_id": "p-1",
        "hospital": "demo-hospital",
        "state": "checked_in",
        "state_label": "已签到",
        "is_open": True,
        "visit_day": "2026-12-03",
        "department": "心内科",
    }
    return GuideVisitProgressedV1.model_validate({**base, **data})


@dataclass
class Rig:
    clock: Clock
    db: MemoryDocumentStore
    store: EscortStore
    service: EscortService
    sms: EscortSmsStandIn

    def origin(self, ip: str = "10.0.0.1") -> Origin:
        return Origin(source_ip=ip, request_id="r-1")

    def visit(self, visit_id: str = "V1", seq: int = 1, **data: Any) -> str:
        return self.service.on_progress(progress(visit_id, seq, **data), "2026-12-03T02:00:00Z")

    def invite(self, visit_id: str = "V1", phone: str = PHONE, **scope: bool) -> Any:
        body = InviteRequest(
            visit_id=visit_id, companion_name="李小明", companion_phone=phone, relation="child", scope=scope
        )
        return self.service.invite(PATIENT, body, "https://h.example").value

    @staticmethod
    def handle(answer: Any) -> str:
        return str(answer.link.split("#h=", 1)[1])

    def texts(self) -> list[str]:
        return [m["text"] for m in self.sms.messages(200)]

    def last_otp(self) -> str:
        for text in self.texts():
            found = re.search(r"验证码为(\d{6})", text)
            if found:
                return found.group(1)
        raise AssertionError("no phone code was sent")

    def otp(self, handle: str, phone: str = PHONE, ip: str = "10.0.0.1") -> Any:
        return self.service.request_otp(self.origin(ip), OtpRequest(handle=handle, phone=phone))

    def join(self, handle: str, code: str, otp: str | None = None, phone: str = PHONE) -> Any:
        return self.service.join(
            self.origin(),
            JoinRequest(handle=handle, phone=phone, otp=otp or self.last_otp(), invitation_code=code),
        )

    def joined(self, **scope: bool) -> tuple[Any, str]:
        """An invitation joined: (the invite answer, the companion's session)."""
        answer = self.invite(**scope)
        handle = self.handle(answer)
        self.otp(handle)
        session = self.join(handle, answer.invitation_code).value.session
        return answer, session

    def audit_actions(self) -> list[str]:
        import json

        actions = []
        for item in self.db.items("audit"):
            body = item.get("record") or item.get("body") or item
            if isinstance(body, str):
                body = json.loads(body)
            if isinstance(body, dict) and "action" in body:
                actions.append(str(body["action"]))
        return actions


def make_rig(sleep: Any = None) -> Rig:
    clock = Clock()
    db = MemoryDocumentStore(table_spec("ESCORT_TABLE", "escort"), table_spec("AUDIT_TABLE", "audit"), clock=clock)
    store = EscortStore(db, "escort") if sleep is None else EscortStore(db, "escort", sleep)
    standin = EscortSmsStandIn(store, clock)
    sender = AliyunSender(AliyunSmsClient(standin.access_key_id, standin.secret, standin, clock=clock))
    service = EscortService(
        store,
        FieldCipher(LocalKeyPort(secrets.token_bytes(16))),
        BlindIndex(secrets.token_bytes(32)),
        HmacTags(secrets.token_bytes(32)),
        sender,
        AuditLog(db, "audit", clock, service="escort"),
        clock,
        nav_base="https://h.example/nav",
    )
    return Rig(clock, db, store, service, standin)


@pytest.fixture
def rig() -> Rig:
    return make_rig()
