"""Accompanied visits on the local stack: N invitations made, joined with both factors and viewed.

Starts the local stack in a child process (as `make run` does). The visits come the way production's do:
demo-hospital's HIS posts signed `visit.booked` batches to guide, guide publishes guide.visit_progressed
through its outbox, the topic fans it into escort's queue; the benchmark waits until escort knows every
visit. Then C client threads run one escort each at a time:

    invite (patient token) -> phone code -> [read the code from the SMS stand-in's outbox] -> join -> room x V

Each escort comes from its own loopback address (127.0.x.y), as companions come from their own phones,
so the per-address phone-code limit (20 an hour) is not what is measured. The outbox reads are the
stand-in playing the companion's phone: they load the stack but are not counted in the latencies.

    escorts     escorts completed (joined and viewed V times)
    per_s       escorts / wall seconds of the escort phase
    p50/p99_ms  per escort: invite + code + join + views, excluding the outbox reads
    per-call    p50/p99 of each call
    errors      calls that did not answer as expected
    headroom    per_s * 30 days of 8 busy hours / 30,000 a month (the requirement)

Usage: .venv/bin/python scripts/bench/escort.py [--escorts N] [--clients C] [--views V]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import re
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie.kit.timefmt import BEIJING
from bianjie_dev.cli.tokens import issue_token, via_gateway
from bianjie_dev.runtime.child import StackProcess
from emulator_memory import EmulatorMemory

MONTHLY = 30_000  # accompanied visits a month (性能指标)
BUSY_SECONDS_A_MONTH = 30 * 8 * 3600


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


class Client:
    """HTTP/1.1 keep-alive to the gateway from one loopback address."""

    def __init__(self, base: str, source: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.source = source
        self.conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        raw = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(
                    self.host, self.port, timeout=60, source_address=(self.source, 0)
                )
            try:
                self.conn.request(method, path, body=raw, headers=hdrs)
                response = self.conn.getresponse()
                data = response.read()
                return response.status, json.loads(data) if data else None
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def post_bookings(stack: StackProcess, visits: list[tuple[str, str]]) -> None:
    partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
    key = Sm2PrivateKey.from_pem(partner["private_key_pem"])
    now = datetime.now(BEIJING).replace(microsecond=0)
    for i in range(0, len(visits), 100):
        events = [
            {
                "event_id": f"{visit}-1",
                "type": "visit.booked",
                "visit_id": visit,
                "patient_id": patient,
                "occurred_at": (now - timedelta(hours=2)).isoformat(),
                "data": {"department": "心内科", "appointment_at": now.isoformat()},
            }
            for visit, patient in visits[i : i + 100]
        ]
        raw = json.dumps({"events": events}, ensure_ascii=False).encode()
        headers = sign_request(key, "POST", "/guide/events", "", raw, "demo-hospital", partner["key_serial"])
        request = urllib.request.Request(
            stack.url + "/guide/events",
            data=raw,
            method="POST",
            headers={**headers, "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=120) as r:
            answer = json.loads(r.read())
        if answer["accepted"] + answer["duplicates"] != len(events):
            raise RuntimeError(f"bookings refused: {answer['results'][:3]}")


def wait_for_visits(
    stack: StackProcess, visits: list[tuple[str, str]], tokens: dict[str, str], timeout: float
) -> float:
    """Seconds until escort knows every visit (guide -> outbox -> topic -> escort's queue)."""
    started = time.monotonic()
    client = Client(stack.url, "127.0.0.1")
    pending = list(visits)
    while pending:
        visit, patient = pending[0]
        status, _ = client.call(
            "GET", f"/escort/visits/{visit}/companions", headers={"Authorization": f"Bearer {tokens[patient]}"}
        )
        if status == 200:
            pending.pop(0)
            continue
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{len(pending)} visits never reached escort")
        time.sleep(0.5)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--escorts", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--views", type=int, default=3, help="room views per escort")
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = StackProcess(Path(tmp), env={"BIANJIE_RETRY_DELAY": "1"})
        memory = EmulatorMemory(stack.proc.pid)
        try:
            return run(stack, args, memory)
        finally:
            stack.stop()


def run(stack: StackProcess, args: argparse.Namespace, memory: EmulatorMemory) -> int:
    run_id = datetime.now(BEIJING).strftime("%H%M%S")
    patients = [f"p-esc-{run_id}-{n}" for n in range(args.patients)]
    visits = [(f"VE{run_id}-{n}", patients[n % len(patients)]) for n in range(args.escorts)]
    issuer = via_gateway(stack.url)
    tokens = {p: issue_token(issuer, p, "patient", requested_by="system:bench.escort") for p in patients}
    operator = issue_token(issuer, "ops-bench", "staff", ["escort-operator"], requested_by="system:bench.escort")
    t0 = time.monotonic()
    post_bookings(stack, visits)
    propagate_s = wait_for_visits(stack, visits, tokens, args.timeout)
    setup_s = time.monotonic() - t0

    calls: dict[str, list[float]] = {"invite": [], "otp": [], "join": [], "room": []}
    totals: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    work = list(enumerate(visits))

    def fail(what: str) -> None:
        with lock:
            errors[what] = errors.get(what, 0) + 1

    def one(n: int, visit: str, patient: str) -> None:
        client = Client(stack.url, f"127.0.{1 + n // 250}.{2 + n % 250}")
        phone = f"139{n:08d}"
        spent = 0.0

        def timed(
            name: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
        ) -> tuple[int, Any]:
            nonlocal spent
            s = time.perf_counter()
            status, answer = client.call(method, path, body, headers)
            ms = (time.perf_counter() - s) * 1000
            spent += ms
            with lock:
                calls[name].append(ms)
            return status, answer

        status, created = timed(
            "invite",
            "POST",
            "/escort/invitations",
            {"visit_id": visit, "companion_name": "王芳", "companion_phone": phone, "relation": "child"},
            {"Authorization": f"Bearer {tokens[patient]}"},
        )
        if status != 201:
            return fail(f"invite {status}")
        handle = created["link"].split("#h=")[1]
        status, _ = timed("otp", "POST", "/escort/join/otp", {"handle": handle, "phone": phone})
        if status != 202:
            return fail(f"otp {status}")
        code = None
        deadline = time.monotonic() + 30
        while code is None and time.monotonic() < deadline:
            status, box = client.call("GET", "/escort/outbox?limit=60", headers={"Authorization": f"Bearer {operator}"})
            for m in (box or {}).get("messages", []):
                if m.get("out_id") == f"escort#otp#{created['invitation']['invitation_id']}":
                    found = re.search(r"验证码为(\d{6})", m["text"])
                    code = found.group(1) if found else None
                    break
            if code is None:
                time.sleep(0.05)
        if code is None:
            return fail("otp not delivered")
        status, joined = timed(
            "join",
            "POST",
            "/escort/join",
            {"handle": handle, "phone": phone, "otp": code, "invitation_code": created["invitation_code"]},
        )
        if status != 201:
            return fail(f"join {status}")
        for _ in range(args.views):
            status, room = timed("room", "GET", "/escort/room", headers={"X-Escort-Session": joined["session"]})
            if status != 200 or room.get("department") != "心内科":
                return fail(f"room {status}")
        with lock:
            totals.append(spent)

    def worker() -> None:
        while True:
            with lock:
                if not work:
                    return
                n, (visit, patient) = work.pop(0)
            try:
                one(n, visit, patient)
            except Exception as exc:  # a transport failure is an error, not the end of the run
                fail(type(exc).__name__)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - started

    per_s = len(totals) / wall if wall else 0.0
    load = os.getloadavg()
    rss = memory.stop()
    print(
        f"escort on the local stack, {platform.processor() or platform.machine()}, python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(
        f"setup: {len(visits)} visits booked through guide, known to escort after {propagate_s:.1f} s "
        f"(setup {setup_s:.1f} s)"
    )
    print(f"{'call':<8} {'n':>6} {'p50 ms':>8} {'p99 ms':>8}")
    for name, values in calls.items():
        print(f"{name:<8} {len(values):>6} {percentile(values, 0.5):>8.1f} {percentile(values, 0.99):>8.1f}")
    headroom = per_s * BUSY_SECONDS_A_MONTH / MONTHLY
    print(
        f"{'escorts':>8} {'clients':>7} {'views':>5} {'per_s':>7} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'headroom':>9}"
    )
    n_errors = sum(errors.values())
    print(
        f"{len(totals):>8} {args.clients:>7} {args.views:>5} {per_s:>7.2f} {percentile(totals, 0.5):>8.1f} "
        f"{percentile(totals, 0.99):>8.1f} {n_errors:>6} {headroom:>8.0f}x"
    )
    if errors:
        print(f"errors: {errors}")
    summary = {
        "escorts": len(totals),
        "per_s": round(per_s, 2),
        "p50_ms": round(percentile(totals, 0.5), 1),
        "p99_ms": round(percentile(totals, 0.99), 1),
        "errors": n_errors,
        "clients": args.clients,
        "views": args.views,
        "headroom_vs_30k_month": round(headroom, 1),
        "emulator_rss_mb": round(rss) if rss is not None else None,
        "load_avg_1m": round(load[0], 2),
    }
    print(json.dumps(summary))
    return 0 if n_errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
