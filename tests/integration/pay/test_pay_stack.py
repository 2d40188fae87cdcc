"""Pay on the real local stack (as `make run` starts it): a patient signs and reorders agreements, a
hospital charges (a decline falls through), the stand-in's callbacks arrive over HTTP, the hospital
gets a signed webhook, refunds, and the reconciliation finds a crafted mismatch."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from bianjie.kit.crypto import Sm2PrivateKey, Sm2PublicKey
from bianjie.kit.signing import sign_request
from bianjie.pay import wire
from bianjie_dev.runtime.child import StackProcess, free_port


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("pay-stack"), env={"BIANJIE_RETRY_DELAY": "1"}, seed=["pay"])
    yield s
    s.stop()


class Hospital:
    """The hospital's webhook receiver (a real HTTP server on loopback)."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/his/pay-events"

    def wait_for(self, kind: str, timeout: float = 20) -> tuple[dict[str, str], dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for headers, body in list(self.received):
                event = json.loads(body)
                if event["type"] == kind:
                    return headers, event
            time.sleep(0.2)
        raise AssertionError(f"no {kind} webhook; got {[json.loads(b)['type'] for _, b in self.received]}")


@pytest.fixture(scope="module")
def hospital() -> Iterator[Hospital]:
    h = Hospital()
    yield h
    h.server.shutdown()


def http(
    stack: StackProcess, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        stack.url + path, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def patient(stack: StackProcess, patient_id: str) -> dict[str, str]:
    result = stack.cli("pay", "token", patient_id)
    assert result.returncode == 0, result.stderr
    return {"Authorization": f"Bearer {result.stdout.strip().splitlines()[-1]}"}


def hospital_call(stack: StackProcess, method: str, path: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
    key = Sm2PrivateKey.from_pem(partner["private_key_pem"])
    raw = json.dumps(body).encode() if body is not None else b""
    signed = sign_request(key, method, path, "", raw, "demo-hospital", str(partner["key_serial"]))
    return http(stack, method, path, body, {**signed, **headers})


def until(fn: Any, timeout: float = 20) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def test_pay_end_to_end(stack: StackProcess, hospital: Hospital, tmp_path: Path) -> None:
    token = patient(stack, "p-int-1")
    # a patient signs two agreements and puts 惠民就医 first
    status, huimin = http(stack, "POST", "/pay/agreements", {"channel": "HUIMIN", "account": "HM0000000051"}, token)
    assert status == 201, huimin
    status, card = http(stack, "POST", "/pay/agreements", {"channel": "UNIONPAY", "account": "6222000000001234"}, token)
    assert status == 201, card
    status, listed = http(stack, "GET", "/pay/agreements", headers=token)
    assert [a["channel"] for a in listed["agreements"]] == ["UNIONPAY", "HUIMIN"]
    order = {"agreement_ids": [huimin["agreement_id"], card["agreement_id"]]}
    status, listed = http(stack, "PUT", "/pay/agreements/order", order, token)
    assert status == 200 and [a["channel"] for a in listed["agreements"]] == ["HUIMIN", "UNIONPAY"]

    # the hospital charges: 惠民就医 declines (account ends 0051), the bank card pays
    bill = {"order_no": "HIS-INT-1", "patient_id": "p-int-1", "amount": 8800, "notify_url": hospital.url}
    status, charge = hospital_call(stack, "POST", "/pay/charges", bill, **{"Idempotency-Key": "int-1"})
    assert status == 201, charge
    assert charge["status"] == "SUCCEEDED" and charge["channel"] == "UNIONPAY"
    assert [a["state"] for a in charge["attempts"]] == ["DECLINED", "SUCCEEDED"]
    charge_id = charge["charge_id"]

    # the signed webhook reaches the hospital and verifies with the key we publish
    status, published = hospital_call(stack, "GET", "/pay/webhook-key")
    assert status == 200
    headers, event = hospital.wait_for("charge.succeeded")
    raw = next(b for _, b in hospital.received if json.loads(b)["id"] == event["id"])
    wire.verify_headers(
        headers, (), raw, lambda s: Sm2PublicKey.from_hex(published["public_key"]), prefix=wire.WEBHOOK_PREFIX
    )
    assert event["data"]["charge_id"] == charge_id

    # the stand-in's own success callback arrives over HTTP and changes nothing (already SUCCEEDED)
    time.sleep(2)
    status, after = hospital_call(stack, "GET", f"/pay/charges/{charge_id}")
    assert status == 200 and after["status"] == "SUCCEEDED" and len(after["history"]) == 1

    # an asynchronous channel: PENDING at first, settled by the channel's callback
    token2 = patient(stack, "p-int-2")
    http(stack, "POST", "/pay/agreements", {"channel": "YIBAO_CREDIT", "account": "YB0000000070"}, token2)
    bill2 = {"order_no": "HIS-INT-2", "patient_id": "p-int-2", "amount": 1500}
    status, pending = hospital_call(stack, "POST", "/pay/charges", bill2, **{"Idempotency-Key": "int-2"})
    assert status == 202 and pending["status"] == "PENDING", pending
    settled = until(
        lambda: (
            (r := hospital_call(stack, "GET", f"/pay/charges/{pending['charge_id']}")[1])["status"] == "SUCCEEDED" and r
        )
    )
    assert settled and settled["history"][0]["source"] == "callback" and len(settled["history"]) == 1

    # refunds: partial, idempotent, bounded
    status, refund = hospital_call(
        stack, "POST", f"/pay/charges/{charge_id}/refunds", {"refund_no": "R1", "amount": 800}
    )
    assert status == 201 and refund["status"] == "SUCCEEDED", refund
    status, refused = hospital_call(
        stack, "POST", f"/pay/charges/{charge_id}/refunds", {"refund_no": "R2", "amount": 8001}
    )
    assert status == 409 and refused["error"]["code"] == "REFUND_EXCEEDS_CHARGE"
    hospital.wait_for("refund.succeeded")

    # reconciliation of today: clean, then the channel's bill is tampered with and it says so
    result = stack.cli("pay", "reconcile", "--day", "today")
    assert result.returncode == 0, result.stdout + result.stderr
    trade_no = after["attempts"][1]["out_trade_no"]
    assert stack.cli("pay", "standin", "tamper", trade_no, "8700").returncode == 0
    result = stack.cli("pay", "reconcile", "--day", "today")
    assert result.returncode == 3, result.stdout + result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["amount_mismatch"] == 1 and summary["missing_local"] == 0 and summary["missing_remote"] == 0
    assert trade_no in result.stdout

    # the bank ends the card agreement on its own; its callback terminates ours
    assert stack.cli("pay", "standin", "bank-terminate", "p-int-1", card["agreement_id"]).returncode == 0
    ended = until(
        lambda: next(
            (
                a
                for a in http(stack, "GET", "/pay/agreements", headers=token)[1]["agreements"]
                if a["agreement_id"] == card["agreement_id"] and a["status"] == "TERMINATED"
            ),
            None,
        )
    )
    assert ended and ended["terminated_by"] == "channel"


def test_a_webhook_intent_left_by_a_crash_is_relayed_and_delivered(stack: StackProcess, hospital: Hospital) -> None:
    """The crash window on the real stack: a transition committed with its intent and the process died
    before queueing it. The relay (the schedule's code, run now by the operator command) queues it and
    the webhook function delivers it, signed, with the intent's id."""
    from decimal import Decimal

    from bianjie.kit.outbox import Outbox
    from bianjie.pay.webhooks import WEBHOOKS
    from boto3.dynamodb.types import TypeSerializer

    now = time.time()
    event_id = "ev-chcrashwindow0001-charge.succeeded"
    event = {"id": event_id, "type": "charge.succeeded", "created": int(now) - 60, "data": {"charge_id": "chcrash"}}
    # the row pay's outbox commits with the transition (bianjie.kit.outbox), 60 s ago
    box = Outbox(None, stack.ref("OutboxTable"), "pay", {WEBHOOKS: None}, clock=lambda: now - 60)  # type: ignore[arg-type]
    item = box.row(box.message(WEBHOOKS, event_id, {"url": hospital.url, "event": event, "attempt": 0, "due": 0}))
    serializer = TypeSerializer()
    typed = {k: serializer.serialize(json.loads(json.dumps(v), parse_float=Decimal)) for k, v in item.items()}
    stack.client("dynamodb").put_item(TableName=stack.ref("OutboxTable"), Item=typed)

    listed = stack.cli("pay", "outbox")
    assert listed.returncode == 0 and event_id in listed.stdout, listed.stdout + listed.stderr
    relayed = stack.cli("pay", "outbox", "--relay")
    assert relayed.returncode == 0, relayed.stdout + relayed.stderr
    # the stack's own relay schedule (every minute) may have sent it between the two commands: either way
    # nothing failed, and the webhook arrives below, once relayed
    counts = json.loads(relayed.stdout.strip().splitlines()[-1])
    assert counts["failed"] == 0 and counts["sent"] <= 1, counts
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not any(json.loads(b)["id"] == event_id for _, b in hospital.received):
        time.sleep(0.2)
    assert any(json.loads(b)["id"] == event_id for _, b in hospital.received)
    after = stack.cli("pay", "outbox")
    assert json.loads(after.stdout.strip().splitlines()[-1]) == {"pending": 0}, after.stdout
