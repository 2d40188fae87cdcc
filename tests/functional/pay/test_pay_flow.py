"""The pay app through chalice.test.Client + moto, against the stand-in channels."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.functional.pay.conftest import PayHarness

OK_CARD = "6222020200001234"
DECLINED_CARD = "6222020200000051"


def test_sign_list_and_reorder(pay: PayHarness) -> None:
    r1 = pay.sign("p1", "YIBAO_CREDIT", "YB0000000001")
    assert r1.status_code == 201, r1.body
    r2 = pay.sign("p1", "UNIONPAY", OK_CARD)
    assert r2.status_code == 201, r2.body
    listed = pay.agreements("p1")
    # bank card goes before 医保信用 by default, whatever the signing order
    assert [a["channel"] for a in listed] == ["UNIONPAY", "YIBAO_CREDIT"]
    assert listed[0]["account"] == "****1234" and "agreement_no" not in listed[0]
    ids = [a["agreement_id"] for a in listed]
    response = pay.client.http.put(
        "/pay/agreements/order",
        headers={**pay.token("p1"), "Content-Type": "application/json"},
        body=f'{{"agreement_ids": ["{ids[1]}", "{ids[0]}"]}}',
    )
    assert response.status_code == 200, response.body
    assert [a["channel"] for a in pay.agreements("p1")] == ["YIBAO_CREDIT", "UNIONPAY"]


def test_second_agreement_on_same_channel_is_refused(pay: PayHarness) -> None:
    assert pay.sign("p2", "UNIONPAY", OK_CARD).status_code == 201
    again = pay.sign("p2", "UNIONPAY", "6222020200009999")
    assert again.status_code == 409 and again.json_body["error"]["code"] == "AGREEMENT_EXISTS"


def test_agreement_numbers_are_encrypted_at_rest(pay: PayHarness) -> None:
    import os

    from bianjie.kit import deps
    from bianjie.kit.documents.port import KeyCond

    pay.sign("p3", "HUIMIN", "HM0000001234")
    items = deps.documents().query(os.environ["PAY_TABLE"], KeyCond.of("pk", "PAT#p3")).items
    assert len(items) == 1
    item = items[0]
    assert item["agreement_no_enc"].startswith("sm4gcm1.") and item["account_enc"].startswith("sm4gcm1.")
    assert "HM0000001234" not in str(item)


def test_charge_falls_through_a_decline_then_refunds(pay: PayHarness) -> None:
    pay.sign("p4", "UNIONPAY", DECLINED_CARD)
    pay.sign("p4", "HUIMIN", "HM0000005678")
    response = pay.charge("k-1", order_no="INV-1", patient_id="p4", amount=12345)
    assert response.status_code == 201, response.body
    charge = response.json_body
    assert charge["status"] == "SUCCEEDED" and charge["channel"] == "HUIMIN"
    assert [(a["channel"], a["state"], a["decline_code"]) for a in charge["attempts"]] == [
        ("UNIONPAY", "DECLINED", "INSUFFICIENT_FUNDS"),
        ("HUIMIN", "SUCCEEDED", None),
    ]
    assert len(charge["history"]) == 1

    got = pay.get_charge(charge["charge_id"])
    assert got.status_code == 200 and got.json_body["status"] == "SUCCEEDED"

    part = pay.refund(charge["charge_id"], "RF-1", 2345)
    assert part.status_code == 201 and part.json_body["status"] == "SUCCEEDED", part.body
    again = pay.refund(charge["charge_id"], "RF-1", 2345)
    assert again.status_code == 201 and again.json_body == part.json_body
    too_much = pay.refund(charge["charge_id"], "RF-2", 10001)
    assert too_much.status_code == 409 and too_much.json_body["error"]["code"] == "REFUND_EXCEEDS_CHARGE"
    rest = pay.refund(charge["charge_id"], "RF-3", 10000)
    assert rest.status_code == 201 and rest.json_body["status"] == "SUCCEEDED"
    after = pay.get_charge(charge["charge_id"]).json_body
    assert after["refunded"] == 12345 and after["refundable"] == 0


def test_idempotency_key(pay: PayHarness) -> None:
    pay.sign("p5", "UNIONPAY", OK_CARD)
    first = pay.charge("same-key", order_no="INV-5", patient_id="p5", amount=100)
    assert first.status_code == 201
    replay = pay.charge("same-key", order_no="INV-5", patient_id="p5", amount=100)
    assert replay.status_code == 201 and replay.json_body == first.json_body
    assert replay.headers.get("Idempotent-Replayed") == "true"
    other = pay.charge("same-key", order_no="INV-5", patient_id="p5", amount=101)
    assert other.status_code == 409 and other.json_body["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    # a new key with the same order number cannot charge twice either
    second = pay.charge("other-key", order_no="INV-5", patient_id="p5", amount=100)
    assert second.json_body["charge_id"] == first.json_body["charge_id"]


def test_a_refused_charge_binds_no_key_and_a_replay_tells_the_charge_as_it_is(pay: PayHarness) -> None:
    bill = {"order_no": "INV-10", "patient_id": "p10", "amount": 300}
    refused = pay.charge("k-10", **bill)
    assert refused.status_code == 422 and refused.json_body["error"]["code"] == "NO_ACTIVE_AGREEMENT"
    assert pay.sign("p10", "UNIONPAY", "6222020200000070").status_code == 201  # settles asynchronously
    pending = pay.charge("k-10", **bill)  # the same request under the same key, now that it can run
    assert pending.status_code == 202 and pending.json_body["status"] == "PENDING", pending.body
    assert "Idempotent-Replayed" not in pending.headers
    assert pay.drain_callbacks(expect=2) >= 2
    replay = pay.charge("k-10", **bill)
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json_body["status"] == "SUCCEEDED" and replay.json_body["charge_id"] == pending.json_body["charge_id"]
    assert replay.json_body == pay.get_charge(pending.json_body["charge_id"]).json_body


def test_no_agreement_and_missing_key(pay: PayHarness) -> None:
    none = pay.charge("k-none", order_no="INV-6", patient_id="nobody", amount=100)
    assert none.status_code == 422 and none.json_body["error"]["code"] == "NO_ACTIVE_AGREEMENT"
    body = b'{"order_no":"INV-7","patient_id":"p","amount":1}'
    missing = pay.client.http.post("/pay/charges", headers=pay.signed("POST", "/pay/charges", body), body=body)
    assert missing.status_code == 400 and missing.json_body["error"]["code"] == "IDEMPOTENCY_KEY_REQUIRED"


def test_async_charge_settles_by_callback_once(pay: PayHarness) -> None:
    pay.sign("p8", "UNIONPAY", "6222020200000070")
    response = pay.charge("k-8", order_no="INV-8", patient_id="p8", amount=500)
    assert response.status_code == 202 and response.json_body["status"] == "PENDING"
    charge_id = response.json_body["charge_id"]
    # settle message then the success callback (the fixture's drain plays the stand-in notifier)
    assert pay.drain_callbacks(expect=2) >= 2
    after = pay.get_charge(charge_id).json_body
    assert after["status"] == "SUCCEEDED" and len(after["history"]) == 1
    assert after["history"][0]["source"] == "callback"


def test_webhook_outbox_survives_a_queue_outage(pay: PayHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """On moto: the charge commits with its webhook intent while SQS refuses the send; the relay function
    queues it afterwards, with the id the docs promise; a second relay finds nothing. The domain event of
    the same transition went to the topic at once."""
    import json
    import os

    from bianjie.kit import aws, deps
    from bianjie.pay import wiring

    monkeypatch.setenv("PAY_DISPATCH", "inline")  # as on Lambda: sent before the answer (below: background)
    wiring.reset()
    box = wiring.webhook_outbox().outbox
    monkeypatch.setattr(box, "grace", 0)  # due at once (the schedule's grace is 30 s)
    queue_url = os.environ["PAY_WEBHOOK_QUEUE"]
    queues = deps.queues()
    real_send = queues.send

    def refusing(url: str, message: Any) -> str:
        if url == queue_url:
            raise ConnectionError("SQS unreachable (injected)")
        return real_send(url, message)

    pay.sign("p9", "UNIONPAY", OK_CARD)
    monkeypatch.setattr(queues, "send", refusing)
    bill = {"order_no": "INV-9", "patient_id": "p9", "amount": 900, "notify_url": "https://his.example/pay-events"}
    response = pay.charge("k-9", **bill)
    assert response.status_code == 201 and response.json_body["status"] == "SUCCEEDED", response.body
    charge_id = response.json_body["charge_id"]
    event_id = f"ev-{charge_id}-charge.succeeded"

    intent = box.get(f"pay#webhooks#{event_id}")
    assert intent is not None and intent["status"] == "PENDING"
    assert box.get(f"pay#events#{event_id}")["status"] == "SENT"
    sqs = aws.client("sqs")
    assert sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0).get("Messages", []) == []

    monkeypatch.setattr(queues, "send", real_send)
    relayed = pay.client.lambda_.invoke("relay_webhooks", {}).payload
    assert relayed == {"due": 1, "sent": 1, "failed": 0}
    (message,) = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)["Messages"]
    body = json.loads(message["Body"])
    assert body["event"]["id"] == event_id and body["event"]["type"] == "charge.succeeded"
    assert body["event"]["data"]["charge_id"] == charge_id and body["url"] == bill["notify_url"]
    assert box.get(f"pay#webhooks#{event_id}")["status"] == "SENT"
    assert pay.client.lambda_.invoke("relay_webhooks", {}).payload == {"due": 0, "sent": 0, "failed": 0}
    assert len(pay.get_charge(charge_id).json_body["history"]) == 1


def test_off_lambda_the_intents_are_sent_after_the_answer(pay: PayHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """PAY_DISPATCH=background (the default off Lambda: on premises, the local stack): the transition and
    its intents commit before the answer, the sends happen from a pool after it."""
    import time

    from bianjie.pay import wiring

    monkeypatch.setenv("PAY_DISPATCH", "background")
    wiring.reset()
    assert wiring.dispatch_in_background()
    pay.sign("p10", "UNIONPAY", OK_CARD)
    bill = {"order_no": "INV-10", "patient_id": "p10", "amount": 1000, "notify_url": "https://his.example/pay-events"}
    response = pay.charge("k-10", **bill)
    assert response.status_code == 201 and response.json_body["status"] == "SUCCEEDED", response.body
    event_id = f"ev-{response.json_body['charge_id']}-charge.succeeded"
    box = wiring.webhook_outbox().outbox
    assert box.get(f"pay#events#{event_id}") is not None  # committed with the transition
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = [box.get(f"pay#{sink}#{event_id}") for sink in ("events", "webhooks")]
        if all(r is not None and r["status"] == "SENT" for r in rows):
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"not sent after the answer: {rows}")


def test_relay_dispatch_leaves_the_intents_to_the_relay_and_its_backend(
    pay: PayHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PAY_DISPATCH=relay (on premises without the emulator on the request path): the request sends
    nothing; its intents commit with the transition, PENDING and due at once; the relay sends them
    through the sinks of the outbox backend the deployment names (BIANJIE_OUTBOX_BACKEND)."""
    from bianjie.kit import deps
    from bianjie.pay import wiring

    sent: list[tuple[str, dict]] = []

    class Recorder:
        def __init__(self, sink: str) -> None:
            self.sink = sink

        def send(self, message: dict) -> None:
            sent.append((self.sink, message))

    deps.register_outbox_backend("recorder", lambda service, queues: {n: Recorder(n) for n in ("events", *queues)})
    monkeypatch.setenv("PAY_DISPATCH", "relay")
    monkeypatch.setenv("BIANJIE_OUTBOX_BACKEND", "recorder")
    deps.reset()
    wiring.reset()
    assert wiring.dispatch_mode() == "relay" and not wiring.dispatch_in_background()
    pay.sign("p12", "UNIONPAY", OK_CARD)
    bill = {"order_no": "INV-12", "patient_id": "p12", "amount": 1200, "notify_url": "https://his.example/pay-events"}
    response = pay.charge("k-12", **bill)
    assert response.status_code == 201 and response.json_body["status"] == "SUCCEEDED", response.body
    event_id = f"ev-{response.json_body['charge_id']}-charge.succeeded"
    box = wiring.webhook_outbox().outbox
    rows = {sink: box.get(f"pay#{sink}#{event_id}") for sink in ("events", "webhooks")}
    assert all(r is not None and r["status"] == "PENDING" for r in rows.values()), rows
    assert sent == []  # nothing from the request
    counts = wiring.webhook_outbox().relay()
    assert counts["sent"] >= 2 and counts["failed"] == 0, counts
    assert {(sink, m.get("id") or m.get("event", {}).get("id")) for sink, m in sent} >= {
        ("events", event_id),
        ("webhooks", event_id),
    }
    assert all(box.get(f"pay#{sink}#{event_id}")["status"] == "SENT" for sink in ("events", "webhooks"))


def test_an_unknown_outbox_backend_or_dispatch_mode_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from bianjie.kit import deps
    from bianjie.pay import wiring

    monkeypatch.setenv("PAY_DISPATCH", "later")
    with pytest.raises(RuntimeError, match="PAY_DISPATCH"):
        wiring.dispatch_mode()
    monkeypatch.setenv("BIANJIE_OUTBOX_BACKEND", "carrier-pigeon")
    deps.reset()
    with pytest.raises(RuntimeError, match="carrier-pigeon"):
        deps.outbox("pay")


def test_a_channel_record_in_stand_in_mode_is_refused_outside_the_local_stage(
    pay: PayHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bianjie.kit.standins import StandinNotAllowed
    from bianjie.pay import wiring

    assert pay.sign("p11", "UNIONPAY", OK_CARD).status_code == 201  # locally: stand-in channels provisioned
    monkeypatch.setenv("BIANJIE_STAGE", "prod")
    monkeypatch.setenv("BIANJIE_STANDINS", "none")
    wiring.reset()
    with pytest.raises(StandinNotAllowed, match=r"pay\.channels"):
        wiring.channels()


def test_an_operator_registers_and_rotates_a_real_channels_keys(pay: PayHarness) -> None:
    """`bianjie pay channel register|rotate|show` (wiring.register_channel / rotate_channel): the record
    switches to mode http with the keys given, secrets field-encrypted at rest, and rotation keeps the rest."""
    from bianjie.kit import deps
    from bianjie.kit.crypto import sm2_generate_key
    from bianjie.pay import wiring
    from bianjie.pay.models import Channel

    ours, theirs, next_theirs = sm2_generate_key(), sm2_generate_key(), sm2_generate_key()
    with pytest.raises(ValueError):
        wiring.register_channel(
            Channel.HUIMIN,
            merchant_id="M1",
            base_url="https://gw.huimin.example",
            our_serial="A1",
            our_private_key=ours,
            channel_keys={},
            api_key=b"k" * 16,
        )
    shown = wiring.register_channel(
        Channel.HUIMIN,
        merchant_id="898310000000001",
        base_url="https://gw.huimin.example/",
        our_serial="A1",
        our_private_key=ours,
        channel_keys={"C1": theirs.public_key},
        api_key=b"k" * 16,
    )
    assert shown == {
        "merchant_id": "898310000000001",
        "mode": "http",
        "base_url": "https://gw.huimin.example",
        "our_serial": "A1",
        "our_public_key": ours.public_key.to_hex(),
        "channel_key_serials": ["C1"],
    }
    item = wiring.pay_store().config("CHANNEL#HUIMIN")
    assert item is not None and ours.to_hex() not in json.dumps(item) and (b"k" * 16).hex() not in json.dumps(item)
    assert (
        deps.field_cipher().decrypt(item["our_private_key_enc"], "pay/channel/HUIMIN/our_private_key") == ours.to_hex()
    )

    wiring.rotate_channel(Channel.HUIMIN, add_channel_keys={"C2": next_theirs.public_key})
    assert wiring.describe_channels()["HUIMIN"]["channel_key_serials"] == ["C1", "C2"]
    with pytest.raises(ValueError):
        wiring.rotate_channel(Channel.HUIMIN, our_serial="A2")  # a serial without its key
    rotated = wiring.rotate_channel(Channel.HUIMIN, drop_channel_serials=("C1",))
    assert rotated["channel_key_serials"] == ["C2"] and rotated["merchant_id"] == "898310000000001"
    config = wiring.channel_configs()[Channel.HUIMIN]
    assert config.channel_key("C2") == next_theirs.public_key and config.api_key == b"k" * 16
