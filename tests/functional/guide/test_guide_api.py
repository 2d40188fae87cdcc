"""Guide through its Chalice app and moto: signed events, the patient's board, preferences, the WeChat
popup answers, the channel queues and senders, domain events from other services, the outbox."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from bianjie.guide.model import CST
from bianjie.kit import aws
from bianjie.kit.signing import sign_request
from bianjie.runtime.invoke import load_module
from chalice.test import Client

from tests import events as canned
from tests.conftest import ROOT
from tests.functional.conftest import DemoPartner, token_issuer


@pytest.fixture
def guide(aws_stack: Any) -> Any:
    return load_module(ROOT / "functions" / "guide" / "app.py")


@pytest.fixture
def client(guide: Any) -> Client:
    with Client(guide.app) as c:
        yield c


def post_events(client: Client, partner: DemoPartner, events: list[dict[str, Any]]) -> Any:
    body = json.dumps({"events": events}, ensure_ascii=False).encode()
    headers = sign_request(partner.key, "POST", "/guide/events", "", body, partner.app_id, partner.serial)
    return client.http.post("/guide/events", body=body, headers={**headers, "Content-Type": "application/json"})


def patient(sub: str = "p-1001") -> dict[str, str]:
    return {"Authorization": "Bearer " + token_issuer().issue(sub, "patient")}


def staff(*roles: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + token_issuer().issue("ops-1", "staff", roles=list(roles))}


def tomorrow(hh_mm: str) -> str:
    day = (datetime.now(CST) + timedelta(days=1)).date().isoformat()
    return f"{day}T{hh_mm}:00+08:00"


def booked(event_id: str = "e1", visit_id: str = "V1", openid: str = "oWx_patient_1001") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "type": "visit.booked",
        "visit_id": visit_id,
        "patient_id": "p-1001",
        "occurred_at": datetime.now(CST).isoformat(),
        "data": {
            "department": "心内科",
            "appointment_at": tomorrow("09:30"),
            "place_poi": "rj.out.3f.cardio",
            "place_name": "门诊楼3楼心内科",
            "contact": {"phone": "13800138000", "wechat_openid": openid, "name": "张三"},
        },
    }


def dead_letters(queue_env: str) -> list[dict[str, Any]]:
    """Everything on a dead-letter queue, with its message attributes (the reason)."""
    import os

    sqs, out = aws.client("sqs"), []
    while batch := sqs.receive_message(
        QueueUrl=os.environ[queue_env], MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        out += batch
        for m in batch:
            sqs.delete_message(QueueUrl=os.environ[queue_env], ReceiptHandle=m["ReceiptHandle"])
    return out


def drain(guide: Any, queue_env: str, handler: str) -> list[dict[str, Any]]:
    """Receives what a channel queue holds and runs its sender, as the event-source mapping does."""
    import os

    sqs = aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=os.environ[queue_env], MaxNumberOfMessages=10).get("Messages", [])
    records = [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]} for m in messages]
    if records:
        result = getattr(guide, handler)({"Records": records}, None)
        assert result["batchItemFailures"] == []
        for m in messages:
            sqs.delete_message(QueueUrl=os.environ[queue_env], ReceiptHandle=m["ReceiptHandle"])
    return records


def no_quiet_hours(client: Client) -> None:
    body = json.dumps({"quiet_hours": None}).encode()
    r = client.http.put("/guide/preferences", body=body, headers={**patient(), "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json_body["quiet_hours"] is None


def test_event_to_recorded_message_with_fallback_to_sms(guide: Any, client: Client, partner: DemoPartner) -> None:
    no_quiet_hours(client)
    r = post_events(client, partner, [booked()])
    assert r.status_code == 200, r.body
    assert r.json_body["accepted"] == 1 and r.json_body["results"][0]["notifications"] == ["registration_success"]
    assert len(drain(guide, "GUIDE_WECHAT_QUEUE", "send_wechat")) == 1  # no subscription credit: to SMS
    assert len(drain(guide, "GUIDE_SMS_QUEUE", "send_sms")) == 1
    out = client.http.get("/guide/outbox?visit_id=V1", headers=staff("guide-operator"))
    assert out.status_code == 200
    [message] = out.json_body["messages"]
    assert message["channel"] == "sms" and message["to"] == "138****8000" and message["accepted"]
    assert "心内科" in message["content"]["text"]
    [note] = out.json_body["notifications"]
    assert note["status"] == "sent" and note["reason"] == "WECHAT_QUOTA_EXHAUSTED"


def test_subscription_credit_then_wechat(guide: Any, client: Client, partner: DemoPartner) -> None:
    no_quiet_hours(client)
    tpl = "local-wx-registration-success"
    body = json.dumps({"results": {tpl: "accept"}}).encode()
    r = client.http.post("/guide/subscriptions", body=body, headers={**patient(), "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json_body["ledgers"][0]["credits"] == 1
    post_events(client, partner, [booked()])
    drain(guide, "GUIDE_WECHAT_QUEUE", "send_wechat")
    messages = client.http.get("/guide/outbox?visit_id=V1", headers=staff("developer")).json_body["messages"]
    assert [(m["channel"], m["kind"], m["accepted"]) for m in messages] == [("wechat", "registration_success", True)]
    assert messages[0]["content"]["name1"] == "张三"


def test_dashboard_board_and_privacy(client: Client, partner: DemoPartner) -> None:
    post_events(
        client,
        partner,
        [
            booked(),
            {
                "event_id": "e2",
                "type": "payment.pending",
                "visit_id": "V1",
                "occurred_at": datetime.now(CST).isoformat(),
                "data": {"order_id": "O1", "amount_fen": 2000, "place_poi": "rj.out.1f.cashier"},
            },
        ],
    )
    dash = client.http.get("/guide/dashboard", headers=patient())
    assert dash.status_code == 200
    assert dash.json_body["cards"][0]["title"] == "待缴费 ¥20.00"
    assert dash.json_body["visits"][0]["state"] == "payment_pending"
    board = client.http.get("/guide/visits/V1", headers=patient())
    assert board.json_body["next_todo"]["place_poi"] == "rj.out.1f.cashier"
    assert [h["state"] for h in board.json_body["history"]] == ["booked", "payment_pending"]
    other = client.http.get("/guide/visits/V1", headers=patient("p-2002"))
    assert other.status_code == 404 and other.json_body["error"]["code"] == "VISIT_NOT_FOUND"


def test_refusals(client: Client, partner: DemoPartner) -> None:
    assert client.http.get("/guide/dashboard").json_body["error"]["code"] == "TOKEN_MISSING"
    assert client.http.get("/guide/dashboard", headers=staff("developer")).json_body["error"]["code"] == "TOKEN_KIND"
    no_role = client.http.get("/guide/outbox", headers=staff("nurse"))
    assert no_role.status_code == 403
    unsigned = client.http.post("/guide/events", body=b'{"events": []}', headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    bad = post_events(client, partner, [{**booked(), "type": "visit.teleported"}])
    assert bad.status_code == 400 and bad.json_body["error"]["code"] == "VALIDATION_FAILED"
    missing = post_events(client, partner, [{**booked(), "patient_id": None}])
    assert missing.status_code == 400 and "patient_id" in json.dumps(missing.json_body, ensure_ascii=False)


def test_duplicate_batch_is_idempotent(client: Client, partner: DemoPartner) -> None:
    event = booked()
    first = post_events(client, partner, [event])
    again = post_events(client, partner, [event])
    assert first.json_body["accepted"] == 1 and again.json_body["duplicates"] == 1
    changed = post_events(client, partner, [{**event, "occurred_at": datetime.now(CST).isoformat()}])
    assert changed.json_body["results"][0]["code"] == "EVENT_ID_REUSED"


@pytest.mark.parametrize("delivery", ["raw", "notification"])
def test_domain_events_from_other_services(guide: Any, client: Client, partner: DemoPartner, delivery: str) -> None:
    post_events(client, partner, [booked()])

    def later(minutes: int) -> dict[str, str]:
        return {"visit_id": "V1", "at": (datetime.now(CST) + timedelta(minutes=minutes)).isoformat()}

    batch = canned.sqs_batch(
        canned.envelope("rx.dispensed", **later(1)),
        canned.envelope("pay.charge.succeeded", **later(2)),
        canned.envelope("film.report_published", **later(3)),
        canned.envelope("pay.refund.succeeded", **later(4)),  # a valid event guide does not use
        canned.envelope("film.report_published", id="no-visit", **{**later(5), "visit_id": None}),  # none given
        delivery=delivery,  # type: ignore[arg-type]
    )
    assert guide.on_domain_event(batch, None) == {"batchItemFailures": []}
    board = client.http.get("/guide/visits/V1", headers=patient()).json_body
    assert board["state"] == "report_ready"
    assert {c["action"] for c in board["todos"]} >= {"medicine", "report"}
    assert len(board["history"]) == 4  # booked, medicine.ready, payment.paid, report.ready
    # redelivery of the same envelopes changes nothing
    assert guide.on_domain_event(batch, None) == {"batchItemFailures": []}
    assert len(client.http.get("/guide/visits/V1", headers=patient()).json_body["history"]) == 4
    assert dead_letters("GUIDE_DOMAIN_EVENTS_DLQ") == []


def test_malformed_domain_events_are_dead_lettered_at_once_with_the_reason(guide: Any) -> None:
    assert guide.on_domain_event(canned.poison_batch(), None) == {"batchItemFailures": []}
    dead = dead_letters("GUIDE_DOMAIN_EVENTS_DLQ")
    reasons = [m["MessageAttributes"]["reason"]["StringValue"] for m in dead]
    assert reasons == ["EVENT_MALFORMED", "EVENT_VERSION_UNKNOWN", "EVENT_INVALID"]
    assert "visit_id" in dead[2]["MessageAttributes"]["message"]["StringValue"]


def test_a_store_outage_redelivers_only_its_record(guide: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from bianjie.guide.wiring import guide_service

    service = guide_service()
    real = service.ingest

    def flaky(caller: Any, events: list[Any]) -> Any:
        if events[0].event_id == "down":
            raise ConnectionError("store unreachable (injected)")
        return real(caller, events)

    monkeypatch.setattr(service, "ingest", flaky)
    batch = canned.sqs_batch(
        canned.envelope("rx.released", visit_id="V9"), canned.envelope("rx.dispensed", id="down", visit_id="V9")
    )
    assert guide.on_domain_event(batch, None) == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert dead_letters("GUIDE_DOMAIN_EVENTS_DLQ") == []


def test_channel_queue_poison_goes_to_its_dlq(guide: Any) -> None:
    batch = canned.sqs_batch({"channel": "wechat"}, "not json", queue="bianjie-GuideWeChatQueue")
    assert guide.send_wechat(batch, None) == {"batchItemFailures": []}
    reasons = [m["MessageAttributes"]["reason"]["StringValue"] for m in dead_letters("GUIDE_WECHAT_DLQ")]
    assert reasons == ["INVALID_MESSAGE", "BODY_NOT_JSON"]
    # at the last stop (the DLQ's own handler) poison is dropped, not looped
    assert guide.on_dead_letter(batch, None) == {"batchItemFailures": [], "outcomes": []}


def test_schedule_handler_and_dead_letter_handler(guide: Any, client: Client, partner: DemoPartner) -> None:
    import os

    no_quiet_hours(client)
    post_events(client, partner, [booked()])
    drain(guide, "GUIDE_WECHAT_QUEUE", "send_wechat")
    drain(guide, "GUIDE_SMS_QUEUE", "send_sms")
    assert guide.remind_day_before({"time": "2020-01-01T10:00:00Z"}, None) == {"visits": 0, "planned": 0}
    assert guide.remind_day_before({}, None) == {"visits": 1, "planned": 1}
    assert guide.remind_day_before({}, None) == {"visits": 1, "planned": 0}
    # the reminder's WeChat message reaches the dead-letter queue (as after three failed receives)
    sqs = aws.client("sqs")
    [message] = sqs.receive_message(QueueUrl=os.environ["GUIDE_WECHAT_QUEUE"]).get("Messages", [])
    dead = {"Records": [{"messageId": message["MessageId"], "receiptHandle": "r", "body": message["Body"]}]}
    assert guide.on_dead_letter(dead, None) == {"batchItemFailures": [], "outcomes": ["fallback"]}
    drain(guide, "GUIDE_SMS_QUEUE", "send_sms")
    notes = client.http.get("/guide/outbox?visit_id=V1", headers=staff("developer")).json_body["notifications"]
    reminder = next(n for n in notes if n["kind"] == "visit_reminder")
    assert reminder["status"] == "sent" and reminder["channel"] == "sms"
    assert reminder["reason"].startswith("WECHAT_RETRIES_EXHAUSTED")


@pytest.mark.parametrize("value", [0, 1, "true", "yes", None])
def test_a_channel_switch_must_be_a_json_boolean(guide: Any, client: Client, value: Any) -> None:
    body = json.dumps({"sms": value}).encode()
    r = client.http.put("/guide/preferences", body=body, headers={**patient(), "Content-Type": "application/json"})
    assert r.status_code == 400, r.body
    assert r.json_body["error"]["code"] == "VALIDATION_FAILED"
    assert r.json_body["error"]["details"][0]["field"] == "sms"
    kept = client.http.get("/guide/preferences", headers=patient())
    assert kept.status_code == 200 and kept.json_body["sms"] is True
