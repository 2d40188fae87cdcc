"""E-prescription throughput through the local gateway: N prescriptions pre-checked, signed and uploaded,
then released, authorized (one e-credential per patient, two prescriptions each), reviewed and dispensed.

Starts the local stack in a child process (as `make run` does) and drives it over HTTP with a thread
pool, each request doing the real work: partner SM2 verification and nonce write, token check, field
decryption, the NHSA envelope round trip with the in-process stand-in center (SM4-ECB + SM2 sign and
verify both ways), the conditional write, the audit chain append and the event publish. Client, stack
and moto share the machine's cores, so the figures are conservative. Each phase is timed on its own;
``uploads_per_s`` is the upload call alone, ``prescribe_per_s`` the whole pre-check+sign+upload chain.

Usage: .venv/bin/python scripts/bench/rx.py [--count 2000] [--workers 16]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bianjie_dev.runtime.child import StackProcess
from bianjie_dev.rx.client import Answer, Demo, RxHttp, demo_prescription, settlement
from bianjie_dev.rx.demo import with_check_digit
from emulator_memory import EmulatorMemory

SEED_MONTHLY = 16_700  # prescriptions a month the seed sizes the center for


def run_phase(
    name: str, items: list[Any], fn: Callable[[Any], Answer], workers: int, memory: EmulatorMemory
) -> dict[str, Any]:
    errors = 0
    latencies: list[float] = []
    reasons: dict[str, int] = {}

    def one(item: Any) -> tuple[str | None, float]:
        t0 = time.perf_counter()
        try:
            answer = fn(item)
            reason = None if answer.status == 200 else f"{answer.status} {answer.code}"
        except OSError as exc:  # a timeout counts as an error, not the end of the run
            reason = type(exc).__name__
        return reason, time.perf_counter() - t0

    started = time.perf_counter()
    cpu_before = memory.current_cpu_s()
    with ThreadPoolExecutor(workers) as pool:
        for reason, latency in pool.map(one, items):
            if reason is not None:
                errors += 1
                reasons[reason] = reasons.get(reason, 0) + 1
            latencies.append(latency)
    elapsed = time.perf_counter() - started
    cpu_after = memory.current_cpu_s()
    latencies.sort()
    result = {
        "phase": name,
        "calls": len(items),
        "seconds": round(elapsed, 2),
        "per_s": round(len(items) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
        "errors": errors,
        "error_reasons": reasons,
        "emulator_rss_mb": memory.current_mb(),
        # moto's CPU per call: the machine's load changes it far less than the wall-clock figures
        "moto_cpu_ms": (
            round((cpu_after - cpu_before) * 1000 / len(items), 1)
            if cpu_before is not None and cpu_after is not None and items
            else None
        ),
    }
    # progress as each phase ends, so a run that is stopped still tells how far it got
    print(
        f"  {name}: {len(items)} calls in {elapsed:.1f} s, {errors} errors, moto {result['emulator_rss_mb']} MB, "
        f"{result['moto_cpu_ms']} moto CPU ms a call",
        file=sys.stderr,
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--per-patient", type=int, default=2)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        stack = StackProcess(Path(tmp))
        memory = EmulatorMemory(stack.proc.pid)
        started = time.perf_counter()
        try:
            results = bench(stack, args, memory)
        finally:
            results_rss = memory.stop()
            stack.stop()
        results["seconds"] = round(time.perf_counter() - started, 1)
        results["emulator_rss_mb"] = results_rss
        results["emulator_cpu_s"] = memory.cpu_s
        # writes whose answer was lost and retried by the SDK, recognised as done (kit.documents.dynamodb)
        results["lost_answers_recovered"] = stack.log_path.read_text(errors="replace").count("lost answer recovered")
    print(
        f"rx throughput, {args.count} prescriptions, {args.workers} client threads, "
        f"{platform.processor() or platform.machine()}, {datetime.now(UTC):%Y-%m-%d}"
    )
    print(
        f"{'phase':<12}{'calls':>8}{'seconds':>10}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'errors':>8}{'moto MB':>9}"
        f"{'moto CPU ms':>13}"
    )
    for r in results["phases"]:
        print(
            f"{r['phase']:<12}{r['calls']:>8}{r['seconds']:>10}{r['per_s']:>9}{r['p50_ms']:>9}{r['p95_ms']:>9}"
            f"{r['errors']:>8}{r['emulator_rss_mb']!s:>9}{r['moto_cpu_ms']!s:>13}"
        )
    print(
        f"whole run {results['seconds']} s; moto server peak resident memory {results['emulator_rss_mb']} MB, "
        f"CPU {results['emulator_cpu_s']} s"
    )
    for r in results["phases"]:
        if r["error_reasons"]:
            print(f"  {r['phase']} errors: {r['error_reasons']}")
    print(
        f"seed load {SEED_MONTHLY}/month = {SEED_MONTHLY / 30 / 86400:.4f}/s average; "
        f"headroom at the measured upload rate: {results['uploads_per_s'] / (SEED_MONTHLY / 30 / 86400):,.0f}x"
    )
    print(
        f"conditional writes retried by the SDK after a lost answer, recognised as done: "
        f"{results['lost_answers_recovered']}"
    )
    print(json.dumps({k: v for k, v in results.items() if k != "phases"}))


def bench(stack: StackProcess, args: argparse.Namespace, memory: EmulatorMemory) -> dict[str, Any]:
    import argparse as _argparse

    from bianjie_dev.cli.main import use_deployment

    use_deployment(_argparse.Namespace(stack=str(stack.state_dir / "stack.json")))
    from bianjie.rx import wiring
    from bianjie.rx.ecredential import Person

    demo = Demo.load(stack.state_dir)
    http = RxHttp(stack.url)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    patients = [
        with_check_digit(f"310101{y}{m:02d}{d:02d}{n:03d}")
        for y in (1950, 1960, 1970, 1980)
        for m in range(1, 13)
        for d in range(1, 28)
        for n in (1, 2)
    ]
    n_patients = max(1, args.count // args.per_patient)
    bodies = []
    for i in range(args.count):
        body = demo_prescription(demo, f"BENCH-{i:05d}", now)
        body["insured"] = {"cert_type": "01", "cert_no": patients[i % n_patients], "name": "测试"}
        bodies.append(body)
    phases = []
    pre: dict[int, Any] = {}

    def precheck(i: int) -> Answer:
        answer = http.send("POST", "/rx/precheck", bodies[i], partner=demo.hospital)
        pre[i] = answer.body
        return answer

    ids = list(range(args.count))
    phases.append(run_phase("precheck", ids, precheck, args.workers, memory))
    phases.append(
        run_phase(
            "sign",
            ids,
            lambda i: http.sign(pre[i]["rx_id"], demo.doctor["token"], demo.doctor_key),
            args.workers,
            memory,
        )
    )
    phases.append(
        run_phase(
            "upload",
            ids,
            lambda i: http.send(
                "POST",
                "/rx/prescriptions",
                {"trace_code": pre[i]["trace_code"], "hi_rxno": pre[i]["hi_rxno"]},
                partner=demo.hospital,
            ),
            args.workers,
            memory,
        )
    )
    phases.append(
        run_phase(
            "release",
            ids,
            lambda i: http.send(
                "POST", f"/rx/prescriptions/{pre[i]['rx_id']}/confirmation", {"mode": "external"}, partner=demo.hospital
            ),
            args.workers,
            memory,
        )
    )
    ec = wiring.rx_ecredentials()
    auth_of: dict[str, str] = {}

    def authorize(p: str) -> Answer:
        answer = http.send(
            "POST", "/rx/authorizations", {"ec_token": ec.issue(Person("01", p, "测试"))}, partner=demo.pharmacy
        )
        if answer.status == 200:
            for rx in answer.body["prescriptions"]:
                auth_of[rx["rx_id"]] = answer.body["authorization_id"]
        return answer

    phases.append(run_phase("authorize", patients[:n_patients], authorize, args.workers, memory))
    phases.append(
        run_phase(
            "review",
            ids,
            lambda i: http.send(
                "POST",
                f"/rx/prescriptions/{pre[i]['rx_id']}/review",
                {"authorization_id": auth_of.get(pre[i]["rx_id"], "missing-authorization"), "result": "pass"},
                token=demo.pharmacist["token"],
            ),
            args.workers,
            memory,
        )
    )
    phases.append(
        run_phase(
            "dispense",
            ids,
            lambda i: http.send(
                "POST",
                f"/rx/prescriptions/{pre[i]['rx_id']}/dispense",
                {
                    "authorization_id": auth_of.get(pre[i]["rx_id"], "missing-authorization"),
                    **settlement(f"BENCH-SETL-{i}", now),
                },
                partner=demo.pharmacy,
            ),
            args.workers,
            memory,
        )
    )
    by = {p["phase"]: p for p in phases}
    chain_s = by["precheck"]["seconds"] + by["sign"]["seconds"] + by["upload"]["seconds"]
    return {
        "phases": phases,
        "count": args.count,
        "uploads_per_s": by["upload"]["per_s"],
        "prescribe_per_s": round(args.count / chain_s, 1),
        "dispenses_per_s": by["dispense"]["per_s"],
        "errors": sum(p["errors"] for p in phases),
    }


if __name__ == "__main__":
    main()
