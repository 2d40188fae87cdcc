"""escort through its Chalice app and moto, each route as the function the template declares: guide's
progress event in, invite, the SMS stand-in's outbox, phone code, join, room, revoke; the single-use
link and the lock under concurrency on DynamoDB's conditional writes."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from bianjie.kit.errors import AppError
from bianjie.kit.timefmt import BEIJING
from bianjie.runtime.invoke import load_module
from chalice.test import Client

from tests import events as canned
from tests.conftest import ROOT
from tests.functional.conftest import app_of, token_issuer

PHONE = "13912345678"


@pytest.fixture
def escort(aws_stack: Any) -> Any:
    """The module (its event handler); routes go through ``client``."""
    return load_module(ROOT / "functions" / "escort" / "app.py")


@pytest.fixture
def client(escort: Any) -> Client:
    with Client(app_of("escort")) as c:
        yield c


def patient(sub: str = "demo-patient") -> dict[str, str]:
    return {"Authorization": "Bearer " + token_issuer().issue(sub, "patient"), "Content-Type": "application/json"}


def staff(*roles: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token_issuer().issue("ops-1", "staff", roles=list(roles))}


def progress(escort: Any, seq: int, **data: Any) -> dict[str, Any]:
    today = datetime.now(BEIJING).date().isoformat()
    env = canned.envelope("guide.visit_progressed", id=f"V20261204-0001-{seq}", seq=seq, visit_day=today, **data)
    return escort.on_guide_event(canned.sqs_batch(env), None)


def post(client: Client, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return client.http.post(
        path, body=json.dumps(body, ensure_ascii=False), headers=headers or {"Content-Type": "application/json"}
    )


def outbox(client: Client) -> list[dict[str, Any]]:
    answer = client.http.get("/escort/outbox", headers=staff("developer"))
    assert answer.status_code == 200, answer.body
    return json.loads(answer.body)["messages"]


def invite(client: Client, phone: str = PHONE, **scope: bool) -> dict[str, Any]:
    body = {
        "visit_id": "V20261204-0001",
        "companion_name": "王芳",
        "companion_phone": phone,
        "relation": "child",
        "scope": scope,
    }
    answer = post(client, "/escort/invitations", body, patient())
    assert answer.status_code == 201, answer.body
    return json.loads(answer.body)


def test_invite_join_room_revoke(client: Client, escort: Any) -> None:
    assert progress(escort, 3) == {"batchItemFailures": []}
    created = invite(client)
    sms = [m for m in outbox(client) if created["link"] in m["text"]]
    assert sms and sms[0]["to"] == "139****5678"
    handle = created["link"].split("#h=")[1]

    preview = post(client, "/escort/join/preview", {"handle": handle})
    assert preview.status_code == 200 and preview.headers["Referrer-Policy"] == "no-referrer"
    assert json.loads(preview.body)["department"] == "心内科"

    assert post(client, "/escort/join/otp", {"handle": handle, "phone": PHONE}).status_code == 202
    code = next(re.search(r"验证码为(\d{6})", m["text"]) for m in outbox(client) if "验证码" in m["text"])
    assert code is not None
    wrong = post(
        client,
        "/escort/join",
        {"handle": handle, "phone": PHONE, "otp": code.group(1), "invitation_code": "ZZZZZZZZ"},
    )
    assert wrong.status_code == 422 and json.loads(wrong.body)["error"]["code"] == "INVITATION_CODE_WRONG"
    joined = post(
        client,
        "/escort/join",
        {"handle": handle, "phone": PHONE, "otp": code.group(1), "invitation_code": created["invitation_code"]},
    )
    assert joined.status_code == 201, joined.body
    session = {"X-Escort-Session": json.loads(joined.body)["session"]}

    room = client.http.get("/escort/room", headers=session)
    assert room.status_code == 200, room.body
    view = json.loads(room.body)
    assert view["state_label"] == "候诊中" and view["queue_position"] == 4 and view["reports"] is None

    progress(escort, 4, state="consulted", state_label="已就诊", queue_position=None, next_title="缴费")
    view = json.loads(client.http.get("/escort/room", headers=session).body)
    assert view["state"] == "consulted" and view["notices"][0]["text"].startswith("已就诊")

    listed = client.http.get("/escort/visits/V20261204-0001/companions", headers=patient())
    invitation = json.loads(listed.body)["invitations"][0]
    assert invitation["status"] == "active" and invitation["in_room"] is True
    assert client.http.get("/escort/visits/V20261204-0001/companions", headers=patient("other")).status_code == 403

    consent = client.http.get(f"/escort/invitations/{invitation['invitation_id']}/consent", headers=patient())
    assert consent.status_code == 200 and json.loads(consent.body)["resourceType"] == "Consent"

    revoked = client.http.post(f"/escort/invitations/{invitation['invitation_id']}/revoke", headers=patient())
    assert revoked.status_code == 200 and json.loads(revoked.body)["invitation"]["status"] == "revoked"
    after = client.http.get("/escort/room", headers=session)
    assert after.status_code == 403 and json.loads(after.body)["error"]["code"] == "GRANT_REVOKED"


def test_refusals_have_codes(client: Client, escort: Any) -> None:
    unknown = post(
        client,
        "/escort/invitations",
        {"visit_id": "nope", "companion_name": "王芳", "companion_phone": PHONE, "relation": "child"},
        patient(),
    )
    assert unknown.status_code == 404 and json.loads(unknown.body)["error"]["code"] == "VISIT_NOT_FOUND"
    progress(escort, 3)
    theirs = post(
        client,
        "/escort/invitations",
        {"visit_id": "V20261204-0001", "companion_name": "王芳", "companion_phone": PHONE, "relation": "child"},
        patient("someone-else"),
    )
    assert theirs.status_code == 403 and json.loads(theirs.body)["error"]["code"] == "VISIT_NOT_YOURS"
    bad = post(client, "/escort/join/preview", {"handle": "x" * 22})
    assert bad.status_code == 404 and json.loads(bad.body)["error"]["code"] == "INVITATION_NOT_FOUND"
    malformed = post(client, "/escort/join/otp", {"handle": "short", "phone": "123"})
    assert malformed.status_code == 400
    assert client.http.get("/escort/room").status_code == 401
    assert client.http.get("/escort/outbox", headers=staff("pharmacist")).status_code == 403


def dead_letters() -> list[dict[str, Any]]:
    import os

    from bianjie.kit import aws

    sqs, url, out = aws.client("sqs"), os.environ["ESCORT_GUIDE_EVENTS_DLQ"], []
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get(
        "Messages", []
    ):
        out += batch
        for m in batch:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return out


def test_guide_events_that_do_not_validate_are_dead_lettered(escort: Any) -> None:
    bad = canned.envelope("guide.visit_progressed", seq=0)
    assert escort.on_guide_event(canned.sqs_batch(bad), None) == {"batchItemFailures": []}
    assert [m["MessageAttributes"]["reason"]["StringValue"] for m in dead_letters()] == ["EVENT_INVALID"]
    assert escort.on_guide_event(canned.poison_batch(), None) == {"batchItemFailures": []}
    reasons = [m["MessageAttributes"]["reason"]["StringValue"] for m in dead_letters()]
    assert reasons == ["EVENT_MALFORMED", "EVENT_VERSION_UNKNOWN", "EVENT_INVALID"]  # the valid rx event: ignored


def test_single_use_and_lock_under_concurrency_on_dynamodb(client: Client, escort: Any) -> None:
    from bianjie.escort.model import JoinRequest
    from bianjie.escort.wiring import escort_service
    from bianjie.kit.actor import Origin
    from bianjie_dev.runtime.motoserver import tune_dynamodb

    # moto checks a condition and writes in two steps without a lock, so in-process threads can both pass
    # one condition (a moto race DynamoDB does not have); the local stack serialises moto's DynamoDB
    # requests for that reason (docs/architecture.md 5c), and so does this test
    tune_dynamodb()

    progress(escort, 3)
    first, second = invite(client), invite(client, phone="13700001111")
    service = escort_service()
    origin = Origin(source_ip="10.1.1.1", request_id="t")

    def code_for(handle: str, phone: str) -> str:
        assert post(client, "/escort/join/otp", {"handle": handle, "phone": phone}).status_code == 202
        texts = [m["text"] for m in outbox(client) if "验证码" in m["text"]]
        found = re.search(r"验证码为(\d{6})", texts[0])
        assert found
        return found.group(1)

    def attempt(body: JoinRequest) -> str:
        try:
            service.join(origin, body)
            return "ok"
        except AppError as exc:
            return exc.code

    handle = first["link"].split("#h=")[1]
    body = JoinRequest(
        handle=handle, phone=PHONE, otp=code_for(handle, PHONE), invitation_code=first["invitation_code"]
    )
    with ThreadPoolExecutor(20) as pool:
        outcomes = list(pool.map(lambda _: attempt(body), range(20)))
    assert outcomes.count("ok") == 1, outcomes

    handle2 = second["link"].split("#h=")[1]
    wrong = JoinRequest(
        handle=handle2, phone="13700001111", otp=code_for(handle2, "13700001111"), invitation_code="ZZZZZZZZ"
    )
    with ThreadPoolExecutor(10) as pool:
        outcomes = list(pool.map(lambda _: attempt(wrong), range(20)))
    assert outcomes.count("INVITATION_CODE_WRONG") == 4, outcomes
    listed = json.loads(client.http.get("/escort/visits/V20261204-0001/companions", headers=patient()).body)
    locked = next(i for i in listed["invitations"] if i["invitation_id"] == second["invitation"]["invitation_id"])
    assert locked["status"] == "locked" and locked["failures"] == 5
