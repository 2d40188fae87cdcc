"""Pay in the on-premises configuration, as separate processes: PostgreSQL documents, the channel stand-in
in its own process (reached over HTTP), and ``bianjie serve --workers 2`` serving pay's functions.

- under a burst of concurrent charges every request still gets its full checks: a replayed request
  (same signature, same nonce), a tampered one (body changed after signing) and a tampered channel
  callback are refused while the burst runs, and nothing they carry is written;
- SIGHUP replaces the workers one by one while requests keep coming, and none is refused;
- SIGTERM lets the requests in flight finish before the workers exit.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import pytest
from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie_dev.pay.onprem import Child, postgres_env, start_onprem, use_stack_env, worker_pids
from bianjie_dev.runtime.child import StackProcess

Request = tuple[str, str, dict[str, str], bytes]
CARD = "6222000000{:02d}1234"  # the stand-in charges these at once


class OnPrem:
    def __init__(self, stack: StackProcess, serve: Child, standin: Child, url: str) -> None:
        self.stack, self.serve, self.standin, self.url = stack, serve, standin, url
        partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
        self.key = Sm2PrivateKey.from_pem(partner["private_key_pem"])
        self.serial = str(partner["key_serial"])

    def signed(self, method: str, path: str, body: bytes = b"", **extra: str) -> dict[str, str]:
        headers = sign_request(self.key, method, path, "", body, "demo-hospital", self.serial)
        return {**headers, "Content-Type": "application/json", **extra}

    def charge_request(self, order_no: str, patient: int, amount: int = 100) -> Request:
        body = json.dumps(
            {"order_no": order_no, "patient_id": f"op-p{patient}", "amount": amount, "description": "门诊"}
        ).encode()
        return "POST", "/pay/charges", self.signed("POST", "/pay/charges", body, **{"Idempotency-Key": order_no}), body

    def send(self, request: Request, timeout: float = 60) -> tuple[int, dict[str, Any]]:
        method, path, headers, body = request
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        return response.status, json.loads(payload) if payload else {}

    def get_charge(self, charge_id: str) -> tuple[int, dict[str, Any]]:
        path = f"/pay/charges/{charge_id}"
        return self.send(("GET", path, self.signed("GET", path), b""))

    def workers(self) -> list[int]:
        return worker_pids(self.serve.proc.pid)


@pytest.fixture(scope="module")
def onprem(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnPrem]:
    from bianjie_dev.cli.tokens import issue_token, via_gateway

    pg, drop = postgres_env()
    pg.pop("BENCH_DATABASE")
    tmp = tmp_path_factory.mktemp("pay-onprem")
    stack = StackProcess(tmp / "stack", env={**pg, "BIANJIE_LOG_LEVEL": "WARNING"}, seed=["pay"])
    restore = use_stack_env(stack)
    children: list[Child] = []
    try:
        issuer = via_gateway(stack.url)
        for i in range(4):
            token = issue_token(issuer, f"op-p{i}", "patient", ["patient"], requested_by="system:test")
            body = json.dumps({"channel": "UNIONPAY", "account": CARD.format(i)}).encode()
            parts = urlsplit(stack.url)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            conn.request(
                "POST",
                "/pay/agreements",
                body=body,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )
            assert conn.getresponse().status == 201
            conn.close()
        # a channel answering after 150 ms keeps requests in flight for the restart and drain checks
        standin, serve, url = start_onprem(tmp, workers=2, threads=16, latency_ms=150, notify_delay=0.5)
        children += [standin, serve]
        yield OnPrem(stack, serve, standin, url)
    finally:
        for child in reversed(children):
            child.stop()
        stack.stop()
        restore()
        drop()


def test_replayed_and_tampered_requests_are_refused_while_a_burst_runs(onprem: OnPrem) -> None:
    from bianjie.pay import wiring
    from bianjie.pay.models import Channel

    first = onprem.charge_request("OP-FIRST", 0)
    status, answer = onprem.send(first)
    assert status == 201 and answer["status"] == "SUCCEEDED", answer
    burst = [onprem.charge_request(f"OP-B{i}", i % 4, 100 + i) for i in range(40)]
    method, path, headers, body = onprem.charge_request("OP-TAMPER", 1, 100)
    tampered = (method, path, headers, body.replace(b'"amount": 100', b'"amount": 1'))
    assert tampered[3] != body

    double = wiring.standins()[Channel.UNIONPAY]
    trade = answer["attempts"][-1]["out_trade_no"]
    resource = {"out_trade_no": trade, "trade_state": "SUCCESS", "merchant_id": double.identity.merchant_id}
    cb_headers, cb_body = double.notification("N-op-tamper", "TRANSACTION.SUCCESS", resource)
    bad_callback = ("POST", double.callback_path(), cb_headers, cb_body.replace(b'"id":"N-op-tamper"', b'"id":"N-x"'))
    assert bad_callback[3] != cb_body

    attacks = {"replay": first, "tampered": tampered, "callback": bad_callback}
    results: dict[str, tuple[int, dict[str, Any]]] = {}
    gate = threading.Barrier(len(burst) + len(attacks))

    def fire(name: str, request: Request) -> None:
        gate.wait()
        if name in attacks:
            time.sleep(0.1)  # in the middle of the burst, not before it
        results[name] = onprem.send(request)

    jobs = [(f"c{i}", r) for i, r in enumerate(burst)] + list(attacks.items())
    with ThreadPoolExecutor(len(jobs)) as pool:
        list(pool.map(lambda job: fire(*job), jobs))

    assert all(results[f"c{i}"][0] == 201 for i in range(len(burst))), [results[f"c{i}"] for i in range(40)]
    assert results["replay"][0] == 401 and results["replay"][1]["error"]["code"] == "NONCE_REPLAYED"
    assert results["tampered"][0] == 401 and results["tampered"][1]["error"]["code"] == "SIGNATURE_INVALID"
    assert results["callback"][0] == 401
    assert results["callback"][1]["error"]["code"] == "CALLBACK_SIGNATURE_INVALID"
    # nothing the refused requests carried was written: no charge for the tampered order
    from bianjie.pay.charges import charge_id_for

    assert onprem.get_charge(charge_id_for("demo-hospital", "OP-TAMPER"))[0] == 404
    status, again = onprem.get_charge(answer["charge_id"])
    assert status == 200 and len(again["history"]) == 1  # the replay changed nothing


def test_sighup_replaces_the_workers_without_refusing_a_request(onprem: OnPrem) -> None:
    before = onprem.workers()
    assert len(before) == 2
    failures: list[Any] = []
    answered = 0
    stop = threading.Event()

    def client(n: int) -> None:
        nonlocal answered
        i = 0
        while not stop.is_set():
            i += 1
            try:
                status, body = onprem.send(onprem.charge_request(f"OP-HUP-{n}-{i}", n % 4))
            except OSError as exc:
                failures.append(repr(exc))
                continue
            if status != 201:
                failures.append((status, body))
            answered += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    time.sleep(2)
    onprem.serve.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        now = onprem.workers()
        if len(now) == 2 and not set(now) & set(before):
            break
        time.sleep(0.5)
    time.sleep(3)  # the new workers serve for a while too
    stop.set()
    for t in threads:
        t.join(60)
    assert not set(onprem.workers()) & set(before), "the workers were not replaced"
    assert answered > 20 and not failures, failures[:5]


def test_sigterm_lets_requests_in_flight_finish(onprem: OnPrem) -> None:
    """Last in the module: it stops the gateway."""
    requests = [onprem.charge_request(f"OP-TERM-{i}", i % 4) for i in range(12)]

    def timed(request: Request) -> tuple[int, float]:
        status, _ = onprem.send(request)
        return status, time.monotonic()

    with ThreadPoolExecutor(len(requests)) as pool:
        futures = [pool.submit(timed, r) for r in requests]
        time.sleep(0.1)  # the requests are at the workers, waiting for the channel (150 ms)
        onprem.serve.proc.send_signal(signal.SIGTERM)
        term_at = time.monotonic()
        results = [f.result() for f in futures]
    assert onprem.serve.proc.wait(60) == 0
    assert all(status == 201 for status, _ in results), results
    assert any(done > term_at for _, done in results)  # some were answered after the signal: drained
