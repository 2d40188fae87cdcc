"""Payment load and fault benchmark: 200 concurrent charges through the local gateway, then a storm of
1,000 duplicated and reordered channel callbacks.

Starts the local stack as `make run` does (stand-in channels in-process), signs agreements for a set
of patients (half with a card the stand-in charges at once, half with an account it answers PROCESSING
for, settled only by callback), then:

1. fires ``--charges`` partner-signed ``POST /pay/charges`` at once (one thread and connection each,
   released together), every request doing the real work: SM2 verification and nonce write, the
   idempotency record, the audit record, the charge record, the channel call (signed both ways), the
   final write and, for PENDING ones, nothing more;
2. settles the stand-in's PROCESSING trades and fires ``--storm`` callbacks (each charge's success
   notification several times, under the same notification id, shuffled across charges) from 50
   clients: the duplicates must change nothing and the first of each must change its charge once;
3. reads every charge back: ``lost`` = not SUCCEEDED, ``duplicated_transitions`` = status changes
   beyond the first.

``--documents postgres`` runs the same stack with the PostgreSQL documents adapter (scripts/postgres.sh
starts the server; a throwaway database is created and dropped).

Usage: .venv/bin/python scripts/bench/pay.py [--charges 200] [--storm 1000] [--documents dynamodb|postgres]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie_dev.runtime.child import StackProcess, project_root

ASYNC_ACCOUNT = "6222000000{:02d}0070"  # stand-in: PROCESSING, settled later
SYNC_ACCOUNT = "6222000000{:02d}1234"  # stand-in: charged at once


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def stats(latencies: list[float], errors: int, elapsed: float) -> dict[str, float]:
    return {
        "n": len(latencies),
        "errors": errors,
        "avg_ms": statistics.fmean(latencies),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "per_s": len(latencies) / elapsed,
    }


def burst(
    url: str, requests: list[tuple[str, str, dict[str, str], bytes]], ok: Callable[[int], bool], clients: int
) -> tuple[list[float], int, float, list[Any]]:
    """Send ``requests`` from ``clients`` threads (each its own keep-alive connection), all released together."""
    parts = urlsplit(url)
    shares = [requests[i::clients] for i in range(clients)]
    latencies: list[float] = []
    bodies: list[Any] = []
    errors = 0
    lock = threading.Lock()

    def client(share: list[tuple[str, str, dict[str, str], bytes]]) -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        mine, got, bad = [], [], 0
        gate.wait()
        for method, path, headers, body in share:
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body=body or None, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                if not ok(response.status):
                    bad += 1
                    print(f"  unexpected {response.status}: {payload[:200]!r}", file=sys.stderr)
                got.append(json.loads(payload) if payload else None)
            except OSError as exc:
                bad += 1
                print(f"  connection error: {exc}", file=sys.stderr)
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            mine.append((time.perf_counter() - t0) * 1000)
        conn.close()
        with lock:
            latencies.extend(mine)
            bodies.extend(got)
            errors += bad

    threads = [threading.Thread(target=client, args=(s,)) for s in shares if s]
    gate = threading.Barrier(len(threads) + 1)
    for t in threads:
        t.start()
    gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - t0, bodies


def use_stack_env(stack: StackProcess) -> None:
    """This process talks to the stack's moto and tables directly (to mint tokens and play the channels)."""
    from bianjie.kit import aws, deps
    from bianjie.kit.config import reset_settings
    from bianjie.pay import wiring
    from bianjie.runtime.deployment import Deployment
    from bianjie.runtime.template import load_template

    deployment = Deployment.load(stack.state_dir / "stack.json")
    os.environ.update(deployment.function_environment(load_template(project_root() / "template.yaml")))
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith(("BIANJIE_DOCUMENTS", "BIANJIE_POSTGRES"))})
    os.environ["AWS_REGION"] = deployment.region
    os.environ["BIANJIE_AWS_ENDPOINT_URL"] = str(deployment.aws_endpoint_url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "local")
    reset_settings()
    aws.reset_clients()
    deps.reset()
    wiring.reset()


def sign_agreements(stack: StackProcess, patients: int) -> None:
    from bianjie_dev.cli.tokens import issue_token, via_gateway

    issuer = via_gateway(stack.url)
    requests = []
    for i in range(patients):
        token = issue_token(issuer, f"bench-p{i}", "patient", ["patient"], requested_by="system:bench")
        account = (ASYNC_ACCOUNT if i % 2 else SYNC_ACCOUNT).format(i)
        body = json.dumps({"channel": "UNIONPAY", "account": account}).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        requests.append(("POST", "/pay/agreements", headers, body))
    _, errors, _, _ = burst(stack.url, requests, lambda s: s == 201, 8)
    if errors:
        raise SystemExit(f"{errors} agreements failed to sign")


def charge_requests(
    stack: StackProcess, count: int, patients: int, run: str
) -> list[tuple[str, str, dict[str, str], bytes]]:
    partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
    key = Sm2PrivateKey.from_pem(partner["private_key_pem"])
    out = []
    for i in range(count):
        body = json.dumps(
            {
                "order_no": f"B{run}-{i}",
                "patient_id": f"bench-p{i % patients}",
                "amount": 100 + i,
                "description": "门诊",
            }
        ).encode()
        headers = sign_request(key, "POST", "/pay/charges", "", body, "demo-hospital", str(partner["key_serial"]))
        headers.update({"Content-Type": "application/json", "Idempotency-Key": f"{run}-{i}"})
        out.append(("POST", "/pay/charges", headers, body))
    return out


def storm_requests(
    charges: list[dict[str, Any]], total: int, seed: int
) -> tuple[list[tuple[str, str, dict[str, str], bytes]], int]:
    """Each charge's success notification, ``total / len(charges)`` times under one id, shuffled."""
    from bianjie.pay import wiring
    from bianjie.pay.models import CALLBACK_SLUGS, Channel

    wiring.channel_configs()
    doubles = wiring.standins()
    copies = max(1, total // len(charges))
    storm = []
    for charge in charges:
        attempt = charge["attempts"][-1]
        double = doubles[Channel(attempt["channel"])]
        trade_no = attempt["out_trade_no"]
        double.settle(trade_no)  # a PROCESSING trade succeeds now (its own callback is queued too)
        trade = double._query({"out_trade_no": trade_no})
        resource = {k: v for k, v in trade.items() if v is not None}
        resource["merchant_id"] = double.identity.merchant_id
        notify_id = f"N-storm-{trade_no}"
        for _ in range(copies):  # every copy freshly signed, as a channel's retry would be
            headers, body = double.notification(notify_id, "TRANSACTION.SUCCESS", resource)
            storm.append(("POST", f"/pay/callbacks/{CALLBACK_SLUGS[Channel(attempt['channel'])]}", headers, body))
    random.Random(seed).shuffle(storm)
    return storm, copies


def read_back(stack: StackProcess, charge_ids: list[str]) -> list[dict[str, Any]]:
    partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
    key = Sm2PrivateKey.from_pem(partner["private_key_pem"])

    def one(charge_id: str) -> dict[str, Any]:
        path = f"/pay/charges/{charge_id}"
        headers = sign_request(key, "GET", path, "", b"", "demo-hospital", str(partner["key_serial"]))
        parts = urlsplit(stack.url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = json.loads(response.read())
        conn.close()
        return body

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, charge_ids))


# ---------------------------------------------------------------- PostgreSQL


def postgres_env() -> tuple[dict[str, str], Callable[[], None]]:
    import psycopg

    root = project_root()
    was_running = (
        subprocess.run(
            ["bash", "-c", "pg_isready -h 127.0.0.1 -p ${BIANJIE_PG_PORT:-54329}"], capture_output=True
        ).returncode
        == 0
    )
    out = subprocess.run([str(root / "scripts" / "postgres.sh")], capture_output=True, text=True, check=True)
    admin_dsn = out.stdout.strip().splitlines()[-1]
    db = f"paybench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{db}"
    subprocess.run(
        [str(Path(sys.executable).parent / "bianjie"), "db", "migrate", "--dsn", dsn],
        capture_output=True,
        check=True,
        cwd=root,
    )

    def cleanup() -> None:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if not was_running:
            subprocess.run([str(root / "scripts" / "postgres.sh"), "stop"], capture_output=True)

    return {"BIANJIE_DOCUMENTS": "postgres", "BIANJIE_POSTGRES_DSN": dsn}, cleanup


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--charges", type=int, default=200)
    parser.add_argument("--storm", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--serial", type=int, default=20, help="charges sent one at a time first")
    parser.add_argument("--documents", choices=("dynamodb", "postgres"), default="dynamodb")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    env = {
        "PAY_STANDIN_ASYNC_SECONDS": "900",  # PROCESSING trades wait for the storm, not for the notifier
        "PAY_STANDIN_DUPLICATE_RATE": "0",
        "BIANJIE_LOG_LEVEL": os.environ.get("BIANJIE_LOG_LEVEL", "WARNING"),
    }
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    if args.documents == "postgres":
        pg_env, cleanup = postgres_env()
        env.update(pg_env)
    rows: dict[str, dict[str, float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stack = StackProcess(Path(tmp), env=env)
            try:
                use_stack_env(stack)
                sign_agreements(stack, args.patients)
                # warm-up: imports, connections, caches, the channel configs of the process
                burst(stack.url, charge_requests(stack, 8, args.patients, "warm"), lambda s: s in (201, 202), 4)

                # one at a time: the work of one charge, which is what one Lambda instance does per request
                serial = charge_requests(stack, args.serial, args.patients, "serial")
                lat, errors, elapsed, _ = burst(stack.url, serial, lambda s: s in (201, 202), 1)
                rows["serial"] = stats(lat, errors, elapsed)

                lat, errors, elapsed, bodies = burst(
                    stack.url,
                    charge_requests(stack, args.charges, args.patients, "run"),
                    lambda s: s in (201, 202),
                    args.charges,
                )
                rows["charges"] = stats(lat, errors, elapsed)
                charges = [b for b in bodies if b and "charge_id" in b]
                pending = sum(1 for b in charges if b["status"] == "PENDING")
                rows["charges"]["pending"] = pending

                storm, copies = storm_requests(charges, args.storm, args.seed)
                lat, errors, elapsed, acks = burst(stack.url, storm, lambda s: s == 200, 50)
                rows["storm"] = stats(lat, errors, elapsed)
                rows["storm"]["duplicates_acked"] = sum(1 for a in acks if a and a.get("duplicate"))

                final = read_back(stack, [c["charge_id"] for c in charges])
            finally:
                stack.stop()
    finally:
        cleanup()

    lost = args.charges - sum(1 for c in final if c.get("status") == "SUCCEEDED")
    duplicated = sum(max(0, len(c.get("history") or []) - 1) for c in final)
    errors = int(sum(r["errors"] for r in rows.values()))
    print(
        f"pay benchmark ({args.documents}), {platform.processor() or platform.machine()}, {os.cpu_count()} cpu, "
        f"python {platform.python_version()}; {args.charges} concurrent charges ({pending} PENDING until callback), "
        f"then {len(storm)} callbacks ({copies} copies each, shuffled) from 50 clients"
    )
    print(f"{'phase':<8} {'n':>5} {'err':>4} {'avg ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'per s':>7}")
    for name, r in rows.items():
        print(
            f"{name:<8} {r['n']:>5} {r['errors']:>4} {r['avg_ms']:>8.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{r['max_ms']:>8.1f} {r['per_s']:>7.1f}"
        )
    acked = rows["storm"]["duplicates_acked"]
    print(f"storm: {acked} duplicates acknowledged without effect; lost {lost}; duplicated transitions {duplicated}")
    summary = {
        "documents": args.documents,
        "avg_ms": round(rows["charges"]["avg_ms"], 1),
        "p50_ms": round(rows["charges"]["p50_ms"], 1),
        "p99_ms": round(rows["charges"]["p99_ms"], 1),
        "max_ms": round(rows["charges"]["max_ms"], 1),
        "charges_per_s": round(rows["charges"]["per_s"], 1),
        "serial_avg_ms": round(rows["serial"]["avg_ms"], 1),
        "storm_avg_ms": round(rows["storm"]["avg_ms"], 1),
        "storm_max_ms": round(rows["storm"]["max_ms"], 1),
        "storm_per_s": round(rows["storm"]["per_s"], 1),
        "errors": errors,
        "charges": args.charges,
        "lost": lost,
        "duplicated_transitions": duplicated,
    }
    print(json.dumps(summary))
    return 0 if errors == 0 and lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
