"""MDT consultations through the whole lifecycle on the local stack: N cases by a doctor of demo-hospital
with two doctors of partner hospital B, each applied, consented, submitted, accepted by both, joined,
ended, and both reports saved and SM2-signed (11 calls a case), phase by phase over HTTP with a thread
pool.

Starts the local stack in a child process (as `make run` does); each request does the real work: token
check, credential and agreement lookups, SM4 field encryption and decryption, the conditional
transaction (case + record rows + outbox), the audit chain append, the event publish, LiveKit token
minting, SM2 signing. Client, stack and moto share the machine's cores, so the figures are conservative.

Prints a table (per call type: calls, seconds, per s, p50, p99, errors), the headroom against the seed's
100,000 MDT services a month, and a last line with one JSON object: ``consultations``, ``per_s``
(consultations through the whole lifecycle per second), ``p99_ms`` (worst call type), ``errors``.

Usage: .venv/bin/python scripts/bench/consult.py [--count 2000] [--workers 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bianjie.kit.timefmt import utc_iso
from bianjie_dev.runtime.child import StackProcess
from emulator_memory import EmulatorMemory

SEED_MONTHLY = 100_000  # MDT services a month the seed asks for (性能指标)


def http(base: str, method: str, path: str, token: str, body: Any = None, **headers: str) -> tuple[int, Any]:
    raw = None if body is None else json.dumps(body).encode()
    h = {"Content-Type": "application/json", "Authorization": f"Bearer {token}", **headers}
    request = urllib.request.Request(base + path, data=raw, method=method, headers=h)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"null")
        except ValueError:
            return exc.code, None


def run_phase(name: str, items: list[Any], fn: Callable[[Any], tuple[int, Any]], workers: int) -> dict[str, Any]:
    errors: dict[str, int] = {}
    latencies: list[float] = []

    def one(item: Any) -> tuple[str | None, float]:
        t0 = time.perf_counter()
        try:
            status, body = fn(item)
            reason = None if status in (200, 201) else f"{status} {(body or {}).get('error', {}).get('code')}"
        except OSError as exc:
            reason = type(exc).__name__
        return reason, time.perf_counter() - t0

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        for reason, latency in pool.map(one, items):
            latencies.append(latency)
            if reason:
                errors[reason] = errors.get(reason, 0) + 1
    elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    result = {
        "phase": name,
        "calls": n,
        "seconds": round(elapsed, 2),
        "per_s": round(n / elapsed, 1),
        "p50_ms": round(latencies[n // 2] * 1000, 1),
        "p99_ms": round(latencies[max(0, int(n * 0.99) - 1)] * 1000, 1),
        "errors": sum(errors.values()),
        "error_reasons": errors,
    }
    print(f"  {name}: {n} calls in {elapsed:.1f} s, {result['errors']} errors", file=sys.stderr, flush=True)
    return result


def bench(stack: StackProcess, count: int, workers: int) -> dict[str, Any]:
    demo = json.loads((stack.state_dir / "consult" / "demo.json").read_text())
    t = demo["tokens"]
    base = stack.url
    run = f"{int(time.time())}-{os.getpid()}"
    ids: list[str] = []

    def apply(i: int) -> tuple[int, Any]:
        body = {
            "invitees": [
                {"org": "partner-hospital-b", "doctor_code": "B001"},
                {"org": "partner-hospital-b", "doctor_code": "B002"},
            ],
            "start": utc_iso(time.time() + 20 * 60, "seconds"),
            "duration_min": 60,
            "patient": {"name": f"患者{i}", "id_number": f"3101011980{i % 10000:04d}0011"[:17] + "X", "sex": "male"},
            "visits": [
                {"visit_id": f"V{i}", "visit_date": "2026-11-30", "department": "肿瘤科", "summary": "CT示肺结节"}
            ],
            "purpose": "肺结节诊疗方案",
            "location": {"kind": "video"},
            "symptoms": "咳嗽",
            "difficulties": "良恶性判断",
            "diagnosis": "肺结节，性质待定",
        }
        status, answer = http(
            base, "POST", "/consult/consultations", t["A001"], body, **{"Idempotency-Key": f"b-{run}-{i}"}
        )
        if status == 201:
            ids.append(answer["consultation_id"])
        return status, answer

    path = "/consult/consultations/"
    pairs = lambda: [(cid, d) for cid in ids for d in ("B001", "B002")]  # noqa: E731
    phases = [run_phase("apply", list(range(count)), apply, workers)]
    steps: list[tuple[str, Callable[[], list[Any]], Callable[[Any], tuple[int, Any]]]] = [
        (
            "consent",
            lambda: list(ids),
            lambda c: http(base, "POST", f"{path}{c}/consent", t["A001"], {"method": "written", "reference": "B"}),
        ),
        ("submit", lambda: list(ids), lambda c: http(base, "POST", f"{path}{c}/submit", t["A001"])),
        ("accept", pairs, lambda p: http(base, "POST", f"{path}{p[0]}/response", t[p[1]], {"answer": "accept"})),
        ("join", lambda: list(ids), lambda c: http(base, "POST", f"{path}{c}/join", t["A001"])),
        ("end", lambda: list(ids), lambda c: http(base, "POST", f"{path}{c}/end", t["A001"])),
        (
            "report",
            pairs,
            lambda p: http(base, "PUT", f"{path}{p[0]}/reports/mine", t[p[1]], {"opinion": f"{p[1]} 意见"}),
        ),
        ("sign", pairs, lambda p: http(base, "POST", f"{path}{p[0]}/reports/mine/signature", t[p[1]])),
    ]
    for name, items, fn in steps:
        phases.append(run_phase(name, items(), fn, workers))
    completed = sum(
        1 for cid in ids[:50] if http(base, "GET", f"{path}{cid}", t["A001"])[1].get("status") == "completed"
    )
    total = sum(p["seconds"] for p in phases)
    return {
        "consultations": count,
        "per_s": round(count / total, 2),
        "p99_ms": max(p["p99_ms"] for p in phases),
        "errors": sum(p["errors"] for p in phases),
        "calls": sum(p["calls"] for p in phases),
        "lifecycle_seconds": round(total, 1),
        "sampled_completed": f"{completed}/{min(50, len(ids))}",
        "phases": phases,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = StackProcess(Path(tmp))
        memory = EmulatorMemory(stack.proc.pid)
        try:
            results = bench(stack, args.count, args.workers)
        finally:
            rss = memory.stop()
            stack.stop()
        results["emulator_rss_mb"] = rss
    load = os.getloadavg()
    results["load_avg"] = [round(x, 2) for x in load]
    print(
        f"consult lifecycle, {args.count} consultations x 11 calls, {args.workers} client threads, "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"{'call':<10}{'calls':>8}{'seconds':>10}{'per s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for r in results["phases"]:
        print(
            f"{r['phase']:<10}{r['calls']:>8}{r['seconds']:>10}{r['per_s']:>9}{r['p50_ms']:>9}{r['p99_ms']:>9}{r['errors']:>8}"
        )
        if r["error_reasons"]:
            print(f"  errors: {r['error_reasons']}")
    average = SEED_MONTHLY / 30 / 86400
    print(
        f"whole lifecycle: {results['per_s']} consultations/s ({results['lifecycle_seconds']} s); "
        f"seed {SEED_MONTHLY:,}/month = {average:.4f}/s average; headroom {results['per_s'] / average:,.0f}x; "
        f"moto peak {results['emulator_rss_mb']} MB; completed (sampled) {results['sampled_completed']}"
    )
    print(json.dumps({k: v for k, v in results.items() if k != "phases"}))


if __name__ == "__main__":
    main()
