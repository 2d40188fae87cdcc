"""consult's HTTP API in moto, each route run as its function: scope administration, the whole lifecycle
with two partner doctors, refusals with their codes, attachments through the storage-triggered check,
the LiveKit webhook, the sweep, FHIR R4 export, report verification."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from bianjie.kit.timefmt import utc_iso
from bianjie.runtime.invoke import load_module
from chalice.test import Client
from fhir.resources.R4B.bundle import Bundle

from tests import events as canned
from tests.functional.conftest import app_of, token_issuer

ROOT = Path(__file__).resolve().parents[3]
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
DOCTORS = {
    "a1": ("hospital-a", "A001", "王医生", "肿瘤科"),
    "b1": ("hospital-b", "B001", "赵医生", "病理科"),
    "b2": ("hospital-b", "B002", "钱医生", "胸外科"),
    "c1": ("hospital-c", "C001", "孙医生", "心内科"),
}


@dataclass
class World:
    client: Client
    tokens: dict[str, str]
    module: Any
    agreement: dict[str, Any]

    def call(self, who: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        h = {"Content-Type": "application/json", **(headers or {})}
        if who != "anonymous":
            h["Authorization"] = f"Bearer {self.tokens[who]}"
        raw = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        return getattr(self.client.http, method.lower())(path, headers=h, body=raw)

    def ok(self, who: str, method: str, path: str, body: Any = None, status: int = 200, **kw: Any) -> Any:
        response = self.call(who, method, path, body, **kw)
        assert response.status_code == status, response.body
        return response.json_body

    def apply(self, invitees: list[str], key: str, **overrides: Any) -> Any:
        return self.call(
            "a1", "POST", "/consult/consultations", apply_body(invitees, **overrides), {"Idempotency-Key": key}
        )


def apply_body(invitees: list[str], **overrides: Any) -> dict[str, Any]:
    import time

    body = {
        "invitees": [{"org": DOCTORS[d][0], "doctor_code": DOCTORS[d][1]} for d in invitees],
        "start": utc_iso(time.time() + 600, "seconds"),
        "duration_min": 45,
        "patient": {"name": "张三丰", "id_number": "310101198001010011", "sex": "male"},
        "visits": [{"visit_id": "V001", "visit_date": "2026-11-20", "department": "肿瘤科", "summary": "CT示右肺结节"}],
        "purpose": "右肺结节性质判断",
        "location": {"kind": "video"},
        "symptoms": "咳嗽、痰中带血",
        "difficulties": "良恶性难以判断",
        "diagnosis": "右肺上叶结节，性质待定",
    }
    return {**body, **overrides}


@pytest.fixture
def world(aws_stack: Any) -> Any:
    issuer = token_issuer()
    tokens = {"admin": issuer.issue("ops1", "staff", ["consult-admin"], hospital="shenkang")}
    for name, (org, code, _, _) in DOCTORS.items():
        tokens[name] = issuer.issue(code, "staff", ["doctor"], hospital=org)
    with Client(app_of("consult")) as client:
        w = World(client, tokens, load_module(ROOT / "functions" / "consult" / "app.py"), {})
        today = date.today()
        w.agreement = w.ok(
            "admin",
            "POST",
            "/consult/agreements",
            {
                "name": "A-B 多学科协作",
                "parties": ["hospital-a", "hospital-b"],
                "services": ["mdt"],
                "valid_from": (today - timedelta(days=1)).isoformat(),
                "valid_to": (today + timedelta(days=365)).isoformat(),
            },
            status=201,
        )
        for org, code, name, dept in DOCTORS.values():
            w.ok(
                "admin",
                "PUT",
                f"/consult/credentials/{org}/{code}",
                {"name": name, "licence_no": "110310000123456", "title": "主任医师", "department": dept},
            )
        yield w


def _upload_and_check(w: World, cid: str, data: bytes) -> dict[str, Any]:
    answer = w.ok(
        "a1",
        "POST",
        f"/consult/consultations/{cid}/attachments",
        {"file_name": "CT报告.pdf", "content_type": "application/pdf", "size": len(data)},
        status=201,
    )
    bucket = os.environ["CONSULT_ATTACHMENTS_BUCKET"]
    key = f"{cid}/{answer['attachment_id']}"
    assert answer["upload_url"].startswith("http") and "X-Amz-Signature" in answer["upload_url"]
    boto3.client("s3").put_object(Bucket=bucket, Key=key, Body=data, ContentType="application/pdf")
    assert w.module.check_attachment(canned.s3_via_sqs(bucket, key, len(data)), None) == {"batchItemFailures": []}
    return answer  # type: ignore[no-any-return]


def test_two_partner_doctors_through_the_four_states(world: World) -> None:
    w = world
    body = apply_body(["b1", "b2"])
    created = w.call("a1", "POST", "/consult/consultations", body, {"Idempotency-Key": "k-1"})
    assert created.status_code == 201, created.body
    cid = created.json_body["consultation_id"]
    again = w.call("a1", "POST", "/consult/consultations", body, {"Idempotency-Key": "k-1"})
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json_body["consultation_id"] == cid
    _upload_and_check(w, cid, PDF)
    submit = w.call("a1", "POST", f"/consult/consultations/{cid}/submit")
    assert submit.status_code == 409 and submit.json_body["error"]["code"] == "CONSENT_REQUIRED"
    w.ok("a1", "POST", f"/consult/consultations/{cid}/consent", {"method": "written", "reference": "F-1"})
    assert w.ok("a1", "POST", f"/consult/consultations/{cid}/submit")["status_zh"] == "待会诊"
    joined = w.ok("b1", "GET", "/consult/consultations?box=joined&status=scheduled")
    assert [i["consultation_id"] for i in joined["items"]] == [cid] and joined["counts"]["scheduled"] == 1
    for d in ("b1", "b2"):
        w.ok(d, "POST", f"/consult/consultations/{cid}/response", {"answer": "accept"})
    room = w.ok("b1", "POST", f"/consult/consultations/{cid}/join")
    assert room["status"] == "in_progress" and room["url"] == "standin://livekit" and room["token"].count(".") == 2
    from bianjie_dev.consult.standins import webhook

    body, auth = webhook("room_finished", room["room"])
    answer = w.ok("anonymous", "POST", "/consult/rooms/webhook", body, headers={"Authorization": auth})
    assert answer == {"handled": True, "consultation_id": cid, "status": "awaiting_report"}
    for d, text in (("b1", "考虑早期肺腺癌"), ("b2", "建议胸腔镜手术")):
        w.ok(d, "PUT", f"/consult/consultations/{cid}/reports/mine", {"opinion": text})
        signed = w.ok(d, "POST", f"/consult/consultations/{cid}/reports/mine/signature")
        assert signed["status"] == "final" and signed["signature"]
    twice = w.call("b1", "POST", f"/consult/consultations/{cid}/reports/mine/signature")
    assert twice.status_code == 409 and twice.json_body["error"]["code"] == "REPORT_ALREADY_SIGNED"
    view = w.ok("a1", "GET", f"/consult/consultations/{cid}")
    assert view["status"] == "completed" and view["status_zh"] == "已完成"
    assert {r["doctor_code"] for r in view["reports"]} == {"B001", "B002"}
    (attachment,) = view["attachments"]
    assert attachment["status"] == "clean" and attachment["sha256"] and attachment["download_url"]
    bundle = Bundle.model_validate(w.ok("b1", "GET", f"/consult/consultations/{cid}/fhir"))
    kinds = [e.resource.get_resource_type() for e in bundle.entry]
    assert kinds == ["ServiceRequest", "Task", "Appointment", "DiagnosticReport", "DiagnosticReport"]
    task = bundle.entry[1].resource
    assert task.status == "completed" and task.businessStatus.coding[0].display == "已完成"
    from bianjie.consult import wiring

    assert wiring.service().verify_report(cid, "hospital-b", "B001").valid


def test_a_doctor_without_agreement_cannot_be_invited_nor_open_the_case(world: World) -> None:
    refused = world.apply(["b1", "c1"], "k-2")
    assert refused.status_code == 422 and refused.json_body["error"]["code"] == "NOT_IN_SCOPE"
    assert "hospital-c/C001" in refused.json_body["error"]["message"]
    cid = world.ok(
        "a1", "POST", "/consult/consultations", apply_body(["b1"]), status=201, headers={"Idempotency-Key": "k-3"}
    )["consultation_id"]
    for path in (f"/consult/consultations/{cid}", f"/consult/consultations/{cid}/fhir"):
        hidden = world.call("c1", "GET", path)
        assert hidden.status_code == 404 and hidden.json_body["error"]["code"] == "CONSULT_NOT_FOUND"


def test_bad_input_is_refused_with_stable_codes(world: World) -> None:
    missing = world.call("a1", "POST", "/consult/consultations", {"purpose": "x"}, {"Idempotency-Key": "k-4"})
    assert missing.status_code == 400 and missing.json_body["error"]["code"] == "VALIDATION_FAILED"
    past = world.apply(["b1"], "k-5", start="2020-01-01T08:00:00+08:00")
    assert past.status_code == 422 and past.json_body["error"]["code"] == "SLOT_IN_PAST"
    no_key = world.call("a1", "POST", "/consult/consultations", apply_body(["b1"]))
    assert no_key.status_code == 400
    not_admin = world.call("a1", "GET", "/consult/agreements")
    assert not_admin.status_code == 403
    forged = world.call(
        "anonymous", "POST", "/consult/rooms/webhook", b'{"event":"room_finished"}', {"Authorization": "x.y.z"}
    )
    assert forged.status_code == 401 and forged.json_body["error"]["code"] == "ROOM_TOKEN_INVALID"


def test_suspending_the_agreement_closes_the_partner_doctors_access(world: World) -> None:
    cid = world.ok(
        "a1", "POST", "/consult/consultations", apply_body(["b1"]), status=201, headers={"Idempotency-Key": "k-6"}
    )["consultation_id"]
    world.ok("a1", "POST", f"/consult/consultations/{cid}/consent", {"method": "electronic", "reference": "E-1"})
    world.ok("a1", "POST", f"/consult/consultations/{cid}/submit")
    assert world.ok("b1", "GET", f"/consult/consultations/{cid}")["status"] == "scheduled"
    ag = world.agreement
    update = {k: ag[k] for k in ("name", "parties", "services", "departments", "valid_from", "valid_to", "version")}
    world.ok("admin", "PUT", f"/consult/agreements/{ag['agreement_id']}", {**update, "status": "suspended"})
    closed = world.call("b1", "GET", f"/consult/consultations/{cid}")
    assert closed.status_code == 403 and closed.json_body["error"]["code"] == "AGREEMENT_INACTIVE"
    listed = world.ok("admin", "GET", "/consult/agreements")["items"]
    assert listed[0]["status"] == "suspended" and listed[0]["active"] is False


def test_an_infected_attachment_is_refused_and_the_sweep_cancels_a_no_show(world: World) -> None:
    from bianjie_dev.consult.standins import EICAR

    cid = world.ok(
        "a1", "POST", "/consult/consultations", apply_body(["b1"]), status=201, headers={"Idempotency-Key": "k-7"}
    )["consultation_id"]
    _upload_and_check(world, cid, b"%PDF-1.4\n" + EICAR)
    (attachment,) = world.ok("a1", "GET", f"/consult/consultations/{cid}")["attachments"]
    assert attachment["status"] == "rejected" and "病毒" in attachment["reason"]
    world.ok("a1", "POST", f"/consult/consultations/{cid}/consent", {"method": "written", "reference": "F-2"})
    world.ok("a1", "POST", f"/consult/consultations/{cid}/submit")
    import time

    later = utc_iso(time.time() + 3 * 3600, "seconds")
    assert world.module.sweep(canned.scheduled(later), None)["lapsed"] == 1
    assert world.ok("a1", "GET", f"/consult/consultations/{cid}")["status"] == "cancelled"


def test_the_record_list_reads_its_query_as_a_browser_sends_it(world: World) -> None:
    listed = world.ok("a1", "GET", "/consult/consultations?box=mine&status=completed&limit=20&from_date=2026-01-01")
    assert listed["items"] == [] and set(listed["counts"]) >= {
        "scheduled",
        "in_progress",
        "awaiting_report",
        "completed",
    }
    bad = world.call("a1", "GET", "/consult/consultations?box=theirs")
    assert bad.status_code == 400 and bad.json_body["error"]["code"] == "VALIDATION_FAILED"
