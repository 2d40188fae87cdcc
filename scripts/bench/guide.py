"""Guide fan-out on the local stack: visit events per second through planner and channel queues, and
the latency from posting an event to the stand-in recording its message.

Starts the local stack in a child process (as `make run` does). Each visit gets seven events (booked,
checked in, consulted, pending payment, paid, report ready, medicine ready) of which four call for a
message; half the patients granted WeChat subscriptions (WeChat path), half have only a phone (SMS path,
through the WeChat queue first: no openid -> fallback). Events go in signed batches of ten from a few
client threads; a tenth of the batches is posted twice, as a retrying HIS would. Then the outbox is
read until every expected message is there (or a timeout).

    events_per_s          events posted / seconds from the first post to the last recorded send
    p50/p99_event_to_send_ms   per message: its event's batch post -> the outbox's sent_at
    duplicates            recorded messages beyond one per (visit, kind)
    lost                  expected messages never recorded

Usage: .venv/bin/python scripts/bench/guide.py [--visits N] [--clients C]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bianjie.guide.model import CST
from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie_dev.guide.examples import example_day
from bianjie_dev.runtime.child import StackProcess

KINDS = ("registration_success", "pending_payment", "report_published", "medicine_pickup")
# example_day's event numbers used: booked, checked in, consulted, payment pending, exam checked in, report
# ready, medicine ready. Not "paid" or "collected": those make an earlier reminder stale, and a stale
# reminder is dropped at send time by design, which would blur what this measures.
WANTED = {1, 2, 4, 5, 7, 8, 9}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def use_stack(stack: StackProcess) -> Any:
    """The kit pointed at the stack (for setup and for reading the outbox), as the CLI does."""
    os.environ["BIANJIE_STATE_DIR"] = str(stack.state_dir)
    from bianjie.guide.wiring import guide_service, guide_store
    from bianjie_dev.cli.main import use_deployment

    use_deployment(argparse.Namespace(stack=str(stack.state_dir / "stack.json"), aws_endpoint=None, region=None))
    return guide_service(), guide_store()


def serial_latencies(
    stack: StackProcess, service: Any, store: Any, visits: list[list[dict[str, Any]]], post: Any
) -> list[float]:
    """One payment.pending at a time (WeChat patients, a fresh credit each), waiting for its send."""
    out = []
    for n, visit in enumerate(visits):
        visit_id, patient = visit[0]["visit_id"], visit[0]["patient_id"]
        service.record_subscriptions(patient, {"local-wx-pending-payment": "accept"})
        event = {
            "event_id": f"{visit_id}-serial-{n}",
            "type": "payment.pending",
            "visit_id": visit_id,
            "occurred_at": datetime.now(CST).isoformat(),
            "data": {"order_id": f"{visit_id}-S{n}", "amount_fen": 500},
        }
        t0 = time.time()
        post([event])
        deadline = time.time() + 30
        while time.time() < deadline:
            hits = [
                m
                for m in store.outbox_of_visit(visit_id, 50)
                if m["accepted"] and m["kind"] == "pending_payment" and m["sent_at"] >= _iso(t0)
            ]
            if hits:
                sent = datetime.fromisoformat(hits[0]["sent_at"].replace("Z", "+00:00")).timestamp()
                out.append((sent - t0) * 1000)
                break
            time.sleep(0.02)
    return out


def wait_for(store: Any, expected: set[tuple[str, str]], timeout: float) -> list[dict[str, Any]]:
    """Accepted outbox rows of the expected visits, once every expected (visit, kind) is there."""
    from bianjie.kit.documents.port import KeyCond

    deadline = time.time() + timeout
    visits = {v for v, _ in expected}
    while True:
        # one index query per Beijing day (not one per visit): polling must not load the stack it measures
        now = datetime.now(CST)
        days = sorted({now.date().isoformat(), (now - timedelta(minutes=10)).date().isoformat()})
        rows = [
            m
            for d in days
            for m in store._all(store.t.outbox, KeyCond.of("day", d), index="by_day")
            if m["accepted"] and m["visit_id"] in visits
        ]
        if {(m["visit_id"], m["kind"]) for m in rows} >= expected or time.time() > deadline:
            return rows
        time.sleep(1.0)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--visits", type=int, default=60)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--timeout", type=float, default=120)
    parser.add_argument("--serial", type=int, default=10, help="single events timed one at a time afterwards")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        stack = StackProcess(Path(tmp))
        try:
            return run(stack, args)
        finally:
            stack.stop()


def run(stack: StackProcess, args: argparse.Namespace) -> int:
    service, store = use_stack(stack)
    from bianjie.guide.prefs import Preferences

    run_id = datetime.now(UTC).strftime("%H%M%S")
    day = (datetime.now(CST) + timedelta(days=1)).date()
    visits = []
    for n in range(args.visits):
        patient = f"p-bench-{run_id}-{n}"
        wechat = n % 2 == 0
        service.set_preferences(patient, Preferences(quiet_hours=None))
        if wechat:
            service.record_subscriptions(patient, {f"local-wx-{k.replace('_', '-')}": "accept" for k in KINDS})
        events = example_day(
            f"VB{run_id}-{n}",
            patient,
            day,
            booked_at=datetime.now(CST),
            openid=f"oWx_bench_{n:05d}" if wechat else None,
            phone=f"139{n:08d}",
        )
        visits.append([e for e in events if int(e["event_id"].rsplit("-", 1)[1]) in WANTED])

    # bookings first (made the day before), then the visit day's events in visit order, spread over
    # batches so each batch mixes visits, as a busy HIS would send them
    bookings = [v[0] for v in visits]
    day_events = [v[i] for i in range(1, len(WANTED)) for v in visits]
    events = bookings + day_events
    phases = [
        [bookings[i : i + 10] for i in range(0, len(bookings), 10)],
        [day_events[i : i + 10] for i in range(0, len(day_events), 10)],
    ]
    batches = phases[0] + phases[1]
    partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
    key = Sm2PrivateKey.from_pem(partner["private_key_pem"])
    posted_at: dict[str, float] = {}  # event id -> wall time its batch was posted
    errors = 0
    lock = threading.Lock()

    def post(batch: list[dict[str, Any]]) -> None:
        nonlocal errors
        raw = json.dumps({"events": batch}, ensure_ascii=False).encode()
        headers = sign_request(key, "POST", "/guide/events", "", raw, "demo-hospital", partner["key_serial"])
        request = urllib.request.Request(
            f"{stack.url}/guide/events",
            data=raw,
            method="POST",
            headers={**headers, "Content-Type": "application/json"},
        )
        t0 = time.time()
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                r.read()
        except Exception:
            with lock:
                errors += 1
            return
        with lock:
            for e in batch:
                posted_at.setdefault(e["event_id"], t0)

    queue: list[tuple[int, list[dict[str, Any]]]] = []
    started = time.time()

    def client() -> None:
        while True:
            with lock:
                if not queue:
                    return
                i, batch = queue.pop(0)
            post(batch)
            if i % 10 == 3:
                post(batch)  # a retrying HIS: every event a duplicate

    ingest_s = 0.0
    for phase, phase_batches in enumerate(phases):
        queue.extend(enumerate(phase_batches, start=len(phases[0]) * phase))
        t_phase = time.time()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ingest_s += time.time() - t_phase
        if phase == 0:  # the registration messages go out before the visit day starts
            wait_for(store, {(v[0]["visit_id"], "registration_success") for v in visits}, args.timeout)

    # wait for every expected message
    expected = {(v[0]["visit_id"], k) for v in visits for k in KINDS}
    rows = wait_for(store, expected, args.timeout)
    seen: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for m in rows:
        seen.setdefault((m["visit_id"], m["kind"]), []).append(m)
    duplicates = sum(len(ms) - 1 for ms in seen.values())
    lost = len(expected - set(seen))

    trigger = {"registration_success": 1, "pending_payment": 5, "report_published": 8, "medicine_pickup": 9}
    latencies = []
    last_send = started
    for (visit_id, kind), ms in seen.items():
        sent = datetime.fromisoformat(ms[0]["sent_at"].replace("Z", "+00:00")).timestamp()
        last_send = max(last_send, sent)
        t0 = posted_at.get(f"{visit_id}-{trigger[kind]}")
        if t0 is not None:
            latencies.append((sent - t0) * 1000)
    total_s = max(last_send - started, 1e-9)
    serial = serial_latencies(stack, service, store, visits[: min(len(visits), args.serial) * 2 : 2], post)
    by_channel = {c: sum(1 for m in rows if m["channel"] == c) for c in ("wechat", "sms")}

    print(
        f"guide fan-out on the local stack, {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}, {os.cpu_count()} cores"
    )
    print(
        f"{'visits':>6} {'events':>6} {'batches':>7} {'dup posts':>9} {'errors':>6} {'ingest ev/s':>11} "
        f"{'e2e ev/s':>8} {'msgs':>5} {'wechat':>6} {'sms':>4} {'p50 ms':>8} {'p99 ms':>8} {'dups':>4} {'lost':>4}"
    )
    summary = {
        "visits": args.visits,
        "events": len(events),
        "batches": len(batches),
        "errors": errors,
        "ingest_events_per_s": round(len(events) / ingest_s, 1),
        "events_per_s": round(len(events) / total_s, 1),
        "messages": len(rows),
        "p50_event_to_send_ms": round(percentile(latencies, 0.5), 1),
        "p99_event_to_send_ms": round(percentile(latencies, 0.99), 1),
        "duplicates": duplicates,
        "lost": lost,
    }
    dup_posts = sum(1 for i in range(len(batches)) if i % 10 == 3)
    print(
        f"{args.visits:>6} {len(events):>6} {len(batches):>7} {dup_posts:>9} {errors:>6} "
        f"{summary['ingest_events_per_s']:>11} {summary['events_per_s']:>8} {len(rows):>5} {by_channel['wechat']:>6} "
        f"{by_channel['sms']:>4} {summary['p50_event_to_send_ms']:>8} {summary['p99_event_to_send_ms']:>8} "
        f"{duplicates:>4} {lost:>4}"
    )
    print(
        f"serial: {len(serial)} single events on an idle pipeline, event -> recorded WeChat send: "
        f"p50 {percentile(serial, 0.5):.1f} ms, max {max(serial, default=float('nan')):.1f} ms"
    )
    summary["serial_p50_event_to_send_ms"] = round(percentile(serial, 0.5), 1)
    print(json.dumps(summary))
    return 0 if lost == 0 and duplicates == 0 and errors == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
