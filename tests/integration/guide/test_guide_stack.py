"""Guide on the real local stack (``make run``'s code path): a day of hospital events moves the board
through every state; the outbox shows exactly the expected messages; domain events arrive through the
topic; scheduled reminders fire with `bianjie stack fire`."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from bianjie.guide.model import CST
from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie_dev.guide.examples import example_day
from bianjie_dev.runtime.child import StackProcess

from tests import events as canned

PATIENT = "p-int-1"

REPORT_2 = "1.2.156.112605.14038013507.20261123.2.9.1"  # the SOP UID of the second report


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("guide-stack"), env={"BIANJIE_RETRY_DELAY": "1"}, seed=["guide"])
    yield s
    s.stop()


def call(
    stack: StackProcess, method: str, path: str, body: Any = None, token: str | None = None, signed: bool = False
) -> tuple[int, Any]:
    raw = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if signed:
        partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
        key = Sm2PrivateKey.from_pem(partner["private_key_pem"])
        headers.update(sign_request(key, method, path.split("?")[0], "", raw, "demo-hospital", partner["key_serial"]))
    request = urllib.request.Request(stack.url + path, data=raw or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def token(stack: StackProcess, subject: str, *extra: str) -> str:
    result = stack.cli("guide", "token", subject, *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def outbox(stack: StackProcess, visit_id: str, want: int, ops: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, body = call(stack, "GET", f"/guide/outbox?visit_id={visit_id}", token=ops)
        assert status == 200, body
        if len(body["messages"]) >= want or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


EXPECTED_STATES = [
    "booked",
    "checked_in",
    "waiting",
    "consulted",
    "payment_pending",
    "paid",
    "exam_checked_in",
    "report_ready",
    "medicine_ready",
    "medicine_ready",
    "done",
]
EXPECTED_TODO = [
    ("preconsult", None),
    ("wait", "rj.out.3f.cardio"),
    ("wait", "rj.out.3f.cardio"),
    ("wait", None),
    ("pay", "rj.out.1f.cashier"),
    ("invoice", None),
    ("exam", "rj.med.2f.echo"),
    ("report", None),
    ("medicine", "rj.out.1f.pharmacy"),
    ("report", None),
    ("survey", None),
]


def test_a_day_of_events_through_every_state_and_exact_messages(stack: StackProcess) -> None:
    patient = token(stack, PATIENT)
    ops = token(stack, "ops-1", "--staff", "--role", "guide-operator")
    assert call(stack, "PUT", "/guide/preferences", {"quiet_hours": None}, token=patient)[0] == 200
    # the patient allowed three templates in the WeChat popup; not the medicine one
    answers = {
        "local-wx-registration-success": "accept",
        "local-wx-pending-payment": "accept",
        "local-wx-report-published": "accept",
        "local-wx-medicine-pickup": "reject",
    }
    assert call(stack, "POST", "/guide/subscriptions", {"results": answers}, token=patient)[0] == 200

    day = (datetime.now(CST) + timedelta(days=1)).date()
    events = example_day("V-INT-1", PATIENT, day, booked_at=datetime.now(CST))
    planned = 0
    for n, event in enumerate(events):
        status, body = call(stack, "POST", "/guide/events", {"events": [event]}, signed=True)
        assert status == 200 and body["accepted"] == 1, body
        if body["results"][0]["notifications"]:
            # real visits leave minutes between steps; let the message go out before the next step
            # (a reminder to pay an order already paid would be dropped at send time, by design)
            planned += 1
            assert len(outbox(stack, "V-INT-1", planned, ops)["messages"]) >= planned
        status, board = call(stack, "GET", "/guide/visits/V-INT-1", token=patient)
        assert status == 200 and board["state"] == EXPECTED_STATES[n], (n, board["state"])
        todo = board["next_todo"]
        assert (todo["action"], todo["place_poi"]) == EXPECTED_TODO[n], (n, todo)
    assert len(board["history"]) == 10

    sent = outbox(stack, "V-INT-1", 4, ops)
    got = sorted((m["channel"], m["kind"], m["accepted"]) for m in sent["messages"])
    assert got == [
        ("sms", "medicine_pickup", True),
        ("wechat", "pending_payment", True),
        ("wechat", "registration_success", True),
        ("wechat", "report_published", True),
    ]
    medicine = next(n for n in sent["notifications"] if n["kind"] == "medicine_pickup")
    assert medicine["reason"] == "WECHAT_QUOTA_EXHAUSTED" and medicine["fallback_from"] == "wechat"

    # the HIS retries the whole day as one batch: nothing new
    status, body = call(stack, "POST", "/guide/events", {"events": events}, signed=True)
    assert status == 200 and body["duplicates"] == len(events)

    # the film service publishes a second report, the day after the visit, on the domain-events topic
    sns = stack.client("sns")
    next_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), CST) + timedelta(hours=15)
    envelope = canned.envelope(
        "film.report_published", id="film-evt-1", at=next_day.isoformat(), report_id=REPORT_2, visit_id="V-INT-1"
    )
    sns.publish(
        TopicArn=stack.ref("DomainEventsTopic"),
        Message=json.dumps(envelope, ensure_ascii=False),
        MessageAttributes={"type": {"DataType": "String", "StringValue": "film.report_published"}},
    )
    sent = outbox(stack, "V-INT-1", 5, ops)
    assert len(sent["messages"]) == 5
    assert ("sms", "report_published") in {(m["channel"], m["kind"]) for m in sent["messages"]}  # credit spent
    time.sleep(2)  # anything duplicated would have arrived by now
    assert len(outbox(stack, "V-INT-1", 99, ops, timeout=0)["messages"]) == 5

    dash = call(stack, "GET", "/guide/dashboard", token=patient)[1]
    assert {c["card_id"] for c in dash["cards"]} == {f"report:{REPORT_2}", "survey"}

    table = stack.cli("guide", "outbox", "--visit", "V-INT-1")
    assert table.returncode == 0 and "medicine_pickup" in table.stdout and "138****8000" in table.stdout

    # the survey schedule, fired "as of" 19:00 on the visit day: WeChat only, and no credit was granted
    evening = datetime.combine(day, datetime.min.time(), CST) + timedelta(hours=19)
    at = evening.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    fired = stack.cli("stack", "fire", "GuideSurveyFunction", "--time", at)
    assert fired.returncode == 0, fired.stdout + fired.stderr
    deadline = time.monotonic() + 20
    survey: dict[str, Any] = {}
    while time.monotonic() < deadline and survey.get("status") != "undeliverable":
        notes = outbox(stack, "V-INT-1", 0, ops, timeout=0)["notifications"]
        survey = next((n for n in notes if n["kind"] == "survey"), {})
        time.sleep(0.3)
    assert (survey.get("status"), survey.get("reason")) == ("undeliverable", "WECHAT_QUOTA_EXHAUSTED")
    assert len(outbox(stack, "V-INT-1", 0, ops, timeout=0)["messages"]) == 5  # no SMS for a survey


def test_scheduled_reminders_fire(stack: StackProcess) -> None:
    patient = token(stack, "p-int-2")
    ops = token(stack, "ops-1", "--staff", "--role", "guide-operator")
    assert call(stack, "PUT", "/guide/preferences", {"quiet_hours": None}, token=patient)[0] == 200
    now = datetime.now(CST)
    soon = {
        "event_id": "int2-1",
        "type": "visit.booked",
        "visit_id": "V-INT-2",
        "patient_id": "p-int-2",
        "occurred_at": now.isoformat(),
        "data": {
            "department": "骨科",
            "appointment_at": (now + timedelta(minutes=90)).isoformat(),
            "place_name": "门诊楼2楼骨科",
            "contact": {"phone": "13900139000"},
        },
    }
    tomorrow = {
        **soon,
        "event_id": "int3-1",
        "visit_id": "V-INT-3",
        "data": {**soon["data"], "appointment_at": (now + timedelta(days=1)).replace(hour=10, minute=0).isoformat()},
    }
    status, body = call(stack, "POST", "/guide/events", {"events": [soon, tomorrow]}, signed=True)
    assert status == 200 and body["accepted"] == 2
    fired = stack.cli("stack", "fire", "GuideRemindSoonFunction")
    assert fired.returncode == 0, fired.stdout + fired.stderr
    fired = stack.cli("stack", "fire", "GuideRemindDayBeforeFunction")
    assert fired.returncode == 0, fired.stdout + fired.stderr
    # after 22:30 Beijing time the visit 90 minutes away is tomorrow's, so the day-before reminder is due too
    day_before_too = (now + timedelta(minutes=90)).date() != now.date()
    two = outbox(stack, "V-INT-2", 3 if day_before_too else 2, ops)
    expected = ["registration_success", "visit_reminder"] + (["visit_reminder"] if day_before_too else [])
    assert sorted(m["kind"] for m in two["messages"]) == expected
    reminder = next(m for m in two["messages"] if m["kind"] == "visit_reminder")
    assert reminder["channel"] == "sms" and reminder["content"]["text"].startswith("【便捷就医】即将就诊")
    three = outbox(stack, "V-INT-3", 2, ops)
    assert "【便捷就医】明日就诊" in " ".join(m["content"]["text"] for m in three["messages"])
