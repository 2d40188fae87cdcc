"""Payment load and fault benchmark: the seed's 200 concurrent charges (无感支付: average ≤ 0.2 s,
maximum ≤ 2 s), sustained arrivals, then a storm of duplicated and reordered channel callbacks.

``--documents postgres`` (the on-premises configuration, the figure that counts): starts PostgreSQL
(scripts/postgres.sh; a throwaway database, dropped at the end), the local stack on it (to mint the
patients' tokens), the channel stand-in in its own process (``bianjie_dev.pay.standin_server``,
``--latency-ms``), and ``bianjie serve --workers N`` (``--server uvicorn|granian``) serving pay's
functions, with the channels switched to reach the stand-in over HTTP. By default keys are on premises
(``--keys local``: a master key file, no KMS) and intents are left to the relay (``--dispatch relay``), so
the local stack and its emulator are stopped once the agreements are signed: nothing measured runs on
them (``--keep-stack``, ``--keys kms --dispatch background``: as before). ``--documents dynamodb`` (the
default local stack on moto) sends everything to the stack's own gateway with in-process stand-ins.

Agreements are signed for ``--patients`` patients (half with a card the stand-in charges at once, half
with an account it answers PROCESSING for, settled only by callback), then:

1. warm-up, then ``--serial`` charges one at a time (the cost of one charge's full path);
2. burst: ``--charges`` partner-signed ``POST /pay/charges`` released together, each on a fresh
   connection, every request doing the real work (SM2 verification and nonce, idempotency record,
   audit record, charge record, the channel call signed both ways, the final write and its outbox
   intents); CPU per charge of each process is read from /proc around it;
3. sustained (``--sustained-seconds``, 0 skips): open-loop Poisson arrivals at a rate for that long, each
   on a fresh connection, latency counted from the scheduled arrival; the rate is searched (or given
   with ``--rates``) for the highest one keeping average ≤ 200 ms and maximum ≤ 2 s;
4. storm: the stand-in settles the PROCESSING trades and ``--storm`` callbacks (each charge's success
   notification several times under one notification id, freshly signed, shuffled) come from 50
   clients: the duplicates must change nothing and the first of each must change its charge once;
5. every burst charge is read back: ``lost`` = not SUCCEEDED, ``duplicated_transitions`` = status
   changes beyond the first.

The last line is one JSON object: documents, workers, avg_ms, p50_ms, p99_ms, max_ms (burst), charges,
errors (all phases), lost, duplicated_transitions, cpu_ms_per_charge (burst, all processes),
serial_p50_ms, sustained_per_s (plus emulator_rss_mb on the dynamodb stack).

Usage: .venv/bin/python scripts/bench/pay.py --documents postgres [--workers N] [--latency-ms 30]
       [--charges 200] [--storm 1000] [--sustained-seconds 60] [--rates 40,60] [--profile out.txt]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import signal
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

import proc_cpu
from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie_dev.pay.onprem import (
    Child,
    onprem_env,
    outbox_pending,
    postgres_env,
    start_onprem,
    use_local_keys,
    use_stack_env,
    worker_pids,
)
from bianjie_dev.runtime.child import StackProcess, project_root
from emulator_memory import EmulatorMemory

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


def sign_agreements(stack: StackProcess, patients: int, url: str | None = None) -> None:
    """Patients sign with tokens the stack's identity service mints, through ``url`` (default the stack)."""
    accounts = [(ASYNC_ACCOUNT if i % 2 else SYNC_ACCOUNT).format(i) for i in range(patients)]
    sign_agreements_with(stack, url or stack.url, accounts)


def sign_agreements_with(stack: StackProcess, url: str, accounts: list[str]) -> None:
    """Patient ``bench-p<i>`` signs a UNIONPAY agreement for ``accounts[i]``, through ``url``."""
    from bianjie_dev.cli.tokens import issue_token, via_gateway

    issuer = via_gateway(stack.url)
    requests = []
    for i, account in enumerate(accounts):
        token = issue_token(issuer, f"bench-p{i}", "patient", ["patient"], requested_by="system:bench")
        body = json.dumps({"channel": "UNIONPAY", "account": account}).encode()
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        requests.append(("POST", "/pay/agreements", headers, body))
    _, errors, _, _ = burst(url, requests, lambda s: s == 201, 8)
    if errors:
        raise SystemExit(f"{errors} agreements failed to sign")


Request = tuple[str, str, dict[str, str], bytes]


def charge_requests(stack: StackProcess, count: int, patients: int, run: str) -> list[Request]:
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


class _Discard:
    """The stand-ins' notify outbox when no emulator runs: the storm itself delivers each settled trade's
    success notification (many times), so the channel's own copy is not needed."""

    def send(self, message: dict[str, Any]) -> None:
        del message


def storm_requests(
    charges: list[dict[str, Any]], total: int, seed: int, *, stackless: bool = False
) -> tuple[list[tuple[str, str, dict[str, str], bytes]], int]:
    """Each charge's success notification, ``total / len(charges)`` times under one id, shuffled."""
    from bianjie.pay import wiring
    from bianjie.pay.models import CALLBACK_SLUGS, Channel

    wiring.channel_configs()
    if stackless:
        from bianjie_dev.pay.standin_server import load_standins

        doubles = load_standins(_Discard())
    else:
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


def read_back(stack: StackProcess, url: str, charge_ids: list[str]) -> list[dict[str, Any]]:
    partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
    key = Sm2PrivateKey.from_pem(partner["private_key_pem"])

    def one(charge_id: str) -> dict[str, Any]:
        path = f"/pay/charges/{charge_id}"
        headers = sign_request(key, "GET", path, "", b"", "demo-hospital", str(partner["key_serial"]))
        parts = urlsplit(url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
        conn.request("GET", path, headers=headers)
        response = conn.getresponse()
        body = json.loads(response.read())
        conn.close()
        return body

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, charge_ids))


# ---------------------------------------------------------------- profile (CPU, one charge at a time)


def profile_charges(stack: StackProcess, count: int, patients: int, out: str, clock: str = "cpu") -> None:
    """``count`` charges through ``PayChargeCreateFunction`` in this process, one at a time, under
    cProfile timed by CPU (``time.process_time``: where a charge's CPU goes, waits excluded) or by the
    wall clock (``--profile-clock wall``: where a serial charge's time goes, waits included). The
    channel is the stand-in process over HTTP, the documents PostgreSQL, as the workers have them."""
    import cProfile
    import pstats
    import uuid

    from bianjie.runtime.apigw import Route, build_event, response_parts
    from bianjie.runtime.serve import build_gateway

    os.environ.update({k: v for k, v in onprem_env(1, 4).items() if k.startswith("BIANJIE_POSTGRES_POOL")})
    gateway = build_gateway(
        {"template": str(project_root() / "template.yaml"), "functions": ["PayChargeCreateFunction"], "threads": 1}
    )
    fn = gateway.functions["PayChargeCreateFunction"]
    route = Route.compile("POST", "/pay/charges", "PayChargeCreateFunction")

    def invoke(request: Request) -> None:
        method, path, headers, body = request
        event = build_event(
            method=method,
            path=path,
            raw_query="",
            headers=list(headers.items()),
            body=body,
            source_ip="127.0.0.1",
            route=route,
            path_params={},
            stage="onprem",
            request_id=str(uuid.uuid4()),
        )
        status, _, raw = response_parts(fn.invoke(event))
        if status not in (201, 202):
            raise RuntimeError(f"profile charge answered {status}: {raw[:200]!r}")

    for request in charge_requests(stack, 5, patients, "prof-warm"):
        invoke(request)
    timer = time.process_time if clock == "cpu" else time.perf_counter
    profiler = cProfile.Profile(timer)
    requests = charge_requests(stack, count, patients, "prof")
    began = timer()
    profiler.enable()
    for request in requests:
        invoke(request)
    profiler.disable()
    spent = (timer() - began) * 1000 / count
    profiler.dump_stats(out)
    print(f"profile: {count} charges one at a time in this process, {spent:.2f} {clock} ms each; {out}")
    stats_ = pstats.Stats(out)
    stats_.sort_stats("tottime").print_stats(30)
    stats_.sort_stats("cumulative").print_stats(60)


# ---------------------------------------------------------------- sustained arrivals


def sustained(url: str, requests: list[Request], rate: float, seed: int) -> tuple[list[float], int, float]:
    """Open loop: request i is due at the i-th Poisson arrival at ``rate`` per second, whatever the
    answers so far; each on a fresh connection from a large pool; latency from the due time."""
    parts = urlsplit(url)
    rng = random.Random(seed)
    due, t = [], 0.0
    for _ in requests:
        t += rng.expovariate(rate)
        due.append(t)
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(request: Request, at: float) -> None:
        nonlocal errors
        method, path, headers, body = request
        bad = 0
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            conn.close()
            if response.status not in (201, 202):
                bad = 1
                print(f"  unexpected {response.status}: {payload[:200]!r}", file=sys.stderr)
        except OSError as exc:
            bad = 1
            print(f"  connection error: {exc}", file=sys.stderr)
        took = (time.perf_counter() - at) * 1000
        with lock:
            latencies.append(took)
            errors += bad

    start = time.perf_counter() + 0.2
    with ThreadPoolExecutor(max_workers=400) as pool:
        for request, offset in zip(requests, due, strict=True):
            at = start + offset
            wait = at - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            pool.submit(one, request, at)
    return latencies, errors, time.perf_counter() - start


def transactions(dsn: str | None) -> tuple[int, int]:
    """(committed, rolled back) transactions of the benchmark's database so far. A rolled-back one is a
    conditional write that lost: in the burst, that is an audit append meeting another on its chain's head
    (every other write of a charge is to its own keys), so the count shows whether the head is a hot spot."""
    if not dsn:
        return 0, 0
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        # PostgreSQL 15 backends publish their counts at most once a second while busy and within 10 s
        # once idle: wait that out so every transaction so far is counted
        time.sleep(10.5)
        row = conn.execute(
            "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


def meets(row: dict[str, float]) -> bool:
    return row["errors"] == 0 and row["avg_ms"] <= 200 and row["max_ms"] <= 2000


# ---------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--charges", type=int, default=200)
    parser.add_argument("--storm", type=int, default=1000)
    parser.add_argument("--patients", type=int, default=40)
    parser.add_argument("--serial", type=int, default=20, help="charges sent one at a time first")
    parser.add_argument("--documents", choices=("dynamodb", "postgres"), default="dynamodb")
    parser.add_argument(
        "--gateway",
        choices=("serve", "stack"),
        default="serve",
        help="postgres: bianjie serve workers + stand-in process (default), or the stack's one process as before",
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="postgres: serve worker processes")
    parser.add_argument("--threads", type=int, default=8, help="postgres: handler threads (and pool) per worker")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="postgres: the channel stand-in's answer delay")
    parser.add_argument("--sustained-seconds", type=float, default=60.0, help="each sustained run (0: none)")
    parser.add_argument("--rates", help="sustained rates to try, e.g. 40,60 (default: searched from the burst)")
    parser.add_argument("--search-steps", type=int, default=4)
    parser.add_argument("--profile", help="postgres: cProfile (CPU time) of serial charges in-process, into this file")
    parser.add_argument("--profile-clock", choices=("cpu", "wall"), default="cpu", help="what --profile times")
    parser.add_argument("--spy", help="postgres: py-spy --gil one serve worker during the burst into this file")
    parser.add_argument(
        "--keys",
        choices=("local", "kms"),
        default="local",
        help="postgres serve: the key port of the workers, stand-in and this process (local: a master key file; "
        "kms: the stack's emulated KMS, as before)",
    )
    parser.add_argument(
        "--dispatch",
        choices=("relay", "background"),
        default="relay",
        help="postgres serve: PAY_DISPATCH of the workers (relay: intents committed and left to the relay, "
        "nothing sent from the workers; background: sent to the stack's topic/queues after the answer)",
    )
    parser.add_argument(
        "--keep-stack",
        action="store_true",
        help="postgres serve: keep the local stack running through the measured phases (by default it is "
        "stopped once agreements are signed when --keys local --dispatch relay: nothing then needs the emulator)",
    )
    parser.add_argument(
        "--server", choices=("uvicorn", "granian"), default="uvicorn", help="postgres serve: the HTTP server"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    env = {
        "PAY_STANDIN_ASYNC_SECONDS": "900",  # PROCESSING trades wait for the storm, not for the notifier
        "PAY_STANDIN_DUPLICATE_RATE": "0",
        "BIANJIE_LOG_LEVEL": os.environ.get("BIANJIE_LOG_LEVEL", "WARNING"),
    }
    onprem = args.documents == "postgres" and args.gateway == "serve"
    stackless = onprem and args.keys == "local" and args.dispatch == "relay" and not args.keep_stack
    if onprem:
        env["PAY_DISPATCH"] = args.dispatch
    cleanup: Callable[[], None] = lambda: None  # noqa: E731
    database = None
    if args.documents == "postgres":
        pg_env, cleanup = postgres_env()
        database = pg_env.pop("BENCH_DATABASE")
        env.update(pg_env)
    rows: dict[str, dict[str, Any]] = {}
    sustained_rows: list[dict[str, Any]] = []
    cpu: dict[str, float] = {}
    cpu_net: dict[str, float] = {}
    serial_cpu: dict[str, float] = {}
    txn_before = txn_after = (0, 0)
    emulator_rss_mb: float | None = None
    left_for_relay: int | None = None
    load = {"before": os.getloadavg()}
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            stack = StackProcess(tmp / "stack", env=env)
            memory = EmulatorMemory(stack.proc.pid)
            children: list[Child] = []
            try:
                use_stack_env(stack)
                url = stack.url
                groups: dict[str, Callable[[], list[int]]] = {"load generator": proc_cpu.tree(os.getpid())}
                if onprem:
                    os.environ["PAY_DISPATCH"] = args.dispatch  # the workers inherit it
                    if args.keys == "local":
                        use_local_keys(tmp)  # before anything is encrypted for the workers
                    standin, serve, url = start_onprem(
                        tmp, args.workers, args.threads, args.latency_ms, server=args.server
                    )
                    children += [standin, serve]
                    sign_agreements(stack, args.patients, url)
                    groups = {
                        "gateway workers": proc_cpu.tree(serve.proc.pid),
                        "postgresql": proc_cpu.postgres_backends(str(database)),
                        "channel stand-in": proc_cpu.tree(standin.proc.pid),
                        "local stack + moto": proc_cpu.tree(stack.proc.pid),
                        "load generator": lambda: [os.getpid()],
                    }
                    if stackless:
                        # nothing on the measured path needs the emulator any more: stop it, so a call
                        # to it would be an error in the figures rather than hidden CPU
                        memory.stop()
                        stack.stop()
                        del groups["local stack + moto"]
                else:
                    sign_agreements(stack, args.patients)
                if onprem:
                    pass  # the groups above
                elif args.documents == "postgres":  # everything in the stack's one process (before issue 11)
                    groups = {
                        "local stack (gateway, stand-ins)": lambda: [stack.proc.pid],
                        "postgresql": proc_cpu.postgres_backends(str(database)),
                        "moto": lambda: [p for p in proc_cpu.tree(stack.proc.pid)() if p != stack.proc.pid],
                        "load generator": lambda: [os.getpid()],
                    }
                else:
                    groups = {
                        "local stack (gateway, stand-ins)": lambda: [stack.proc.pid],
                        "moto": lambda: [p for p in proc_cpu.tree(stack.proc.pid)() if p != stack.proc.pid],
                        "load generator": lambda: [os.getpid()],
                    }
                meter = proc_cpu.CpuMeter(groups)
                # warm-up: imports, connections, caches, the channel configs of every worker
                warm = max(8, 4 * args.workers)
                burst(url, charge_requests(stack, warm, args.patients, "warm"), lambda s: s in (201, 202), warm)
                burst(url, charge_requests(stack, warm, args.patients, "warm2"), lambda s: s in (201, 202), warm)

                # one at a time: the work of one charge, which is what one Lambda instance does per request
                serial = charge_requests(stack, args.serial, args.patients, "serial")
                serial_from = meter.snapshot()
                lat, errors, elapsed, _ = burst(url, serial, lambda s: s in (201, 202), 1)
                time.sleep(1.5)  # the callbacks the serial charges caused
                serial_cpu = proc_cpu.CpuMeter.spent(serial_from, meter.snapshot())
                rows["serial"] = stats(lat, errors, elapsed) | {"emulator_rss_mb": memory.current_mb()}
                if args.profile and onprem:
                    profile_charges(stack, 50, args.patients, args.profile, args.profile_clock)

                requests = charge_requests(stack, args.charges, args.patients, "run")
                idle_from, idle_began = meter.snapshot(), time.perf_counter()
                time.sleep(3.0)  # what each process burns doing nothing (pollers, schedules), to subtract
                idle = proc_cpu.CpuMeter.spent(idle_from, meter.snapshot())
                idle_rate = {k: v / (time.perf_counter() - idle_began) for k, v in idle.items()}
                spy = None
                if args.spy and onprem:
                    # py-spy --gil: samples only the thread holding the GIL, i.e. where the worker's Python CPU goes
                    worker = worker_pids(children[1].proc.pid)[0]
                    spy_args = [
                        "record",
                        "--gil",
                        "-p",
                        str(worker),
                        "-r",
                        "250",
                        "-f",
                        "raw",
                        "-o",
                        args.spy,
                        "-d",
                        "60",
                    ]
                    spy = subprocess.Popen(
                        [str(Path(sys.executable).parent / "py-spy"), *spy_args],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                    time.sleep(1.0)
                load["burst"] = os.getloadavg()
                txn_before = transactions(env.get("BIANJIE_POSTGRES_DSN"))
                before, began = meter.snapshot(), time.perf_counter()
                lat, errors, elapsed, bodies = burst(url, requests, lambda s: s in (201, 202), args.charges)
                time.sleep(1.5)  # callbacks the burst caused (the stand-in notifies after ~1 s) count too
                txn_after = transactions(env.get("BIANJIE_POSTGRES_DSN"))
                cpu = proc_cpu.CpuMeter.spent(before, meter.snapshot())
                window = time.perf_counter() - began
                cpu_net = {k: max(0.0, v - idle_rate.get(k, 0.0) * window) for k, v in cpu.items()}
                if spy is not None:
                    spy.send_signal(signal.SIGINT)
                    spy.wait(30)
                rows["charges"] = stats(lat, errors, elapsed) | {"emulator_rss_mb": memory.current_mb()}
                charges = [b for b in bodies if b and "charge_id" in b]
                pending = sum(1 for b in charges if b["status"] == "PENDING")
                rows["charges"]["pending"] = pending

                if args.sustained_seconds > 0:
                    load["sustained"] = os.getloadavg()
                    if args.rates:
                        plan = [float(r) for r in args.rates.split(",")]
                    else:
                        plan = [max(2.0, round(rows["charges"]["per_s"] * 0.5, 1))]
                    best: float | None = None
                    worst: float | None = None
                    step = 0
                    while plan and step < (len(plan) if args.rates else args.search_steps):
                        rate = plan.pop(0)
                        count = max(1, int(rate * args.sustained_seconds))
                        reqs = charge_requests(stack, count, args.patients, f"sus{step}")
                        lat, errors, elapsed = sustained(url, reqs, rate, args.seed + step)
                        row = stats(lat, errors, elapsed) | {"rate": rate, "emulator_rss_mb": memory.current_mb()}
                        row["ok"] = meets(row)
                        sustained_rows.append(row)
                        step += 1
                        if row["ok"]:
                            best = max(best or 0.0, rate)
                        else:
                            worst = rate if worst is None else min(worst, rate)
                        if not args.rates:  # search: up by half until a rate fails, then bisect
                            nxt = rate * 1.5 if worst is None else ((best or rate / 2) + worst) / 2
                            if best is not None and worst is not None and worst - best < max(1.0, 0.1 * best):
                                break
                            plan = [round(nxt, 1)]
                    rows["sustained"] = {"best": best}

                storm, copies = storm_requests(charges, args.storm, args.seed, stackless=stackless)
                lat, errors, elapsed, acks = burst(url, storm, lambda s: s == 200, 50)
                rows["storm"] = stats(lat, errors, elapsed) | {"emulator_rss_mb": memory.current_mb()}
                rows["storm"]["duplicates_acked"] = sum(1 for a in acks if a and a.get("duplicate"))

                final = read_back(stack, url, [c["charge_id"] for c in charges])
                if onprem:
                    left_for_relay = outbox_pending()
            finally:
                emulator_rss_mb = memory.stop()
                for child in reversed(children):
                    child.stop()
                stack.stop()
    finally:
        cleanup()

    lost = args.charges - sum(1 for c in final if c.get("status") == "SUCCEEDED")
    duplicated = sum(max(0, len(c.get("history") or []) - 1) for c in final)
    errors = int(sum(r["errors"] for name, r in rows.items() if "errors" in r))
    errors += int(sum(r["errors"] for r in sustained_rows))
    per_charge = {name: seconds * 1000 / args.charges for name, seconds in cpu.items()}
    per_charge_net = {name: seconds * 1000 / args.charges for name, seconds in cpu_net.items()}
    print(
        f"pay benchmark ({args.documents}{'' if onprem or args.documents == 'dynamodb' else ', stack gateway'}"
        f"{f', {args.server} {args.workers} workers x {args.threads} threads' if onprem else ''}"
        f"{f', channel latency {args.latency_ms:g} ms' if onprem else ''}), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpu, python {platform.python_version()}; "
        f"{args.charges} concurrent charges ({pending} PENDING until callback), then {len(storm)} callbacks "
        f"({copies} copies each, shuffled) from 50 clients"
    )
    print("load average (1, 5, 15 min): " + "; ".join(f"{k} {v[0]:.2f} {v[1]:.2f} {v[2]:.2f}" for k, v in load.items()))
    print(
        f"{'phase':<10} {'n':>5} {'err':>4} {'avg ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'per s':>7}"
        f" {'moto MB':>8}"
    )
    table = [(name, r) for name, r in rows.items() if "n" in r]
    table[2:2] = [(f"at {r['rate']:g}/s" + (" ok" if r["ok"] else ""), r) for r in sustained_rows]
    for name, r in table:
        print(
            f"{name:<10} {r['n']:>5} {r['errors']:>4} {r['avg_ms']:>8.1f} {r['p50_ms']:>8.1f} {r['p99_ms']:>8.1f} "
            f"{r['max_ms']:>8.1f} {r['per_s']:>7.1f} {r['emulator_rss_mb']!s:>8}"
        )
    print(
        "CPU ms per charge in the burst, by process (/proc): "
        + ", ".join(f"{k} {v:.2f}" for k, v in per_charge.items())
    )
    print(
        "CPU ms per charge one at a time (serial phase, idle included): "
        + ", ".join(f"{k} {v * 1000 / max(1, args.serial):.2f}" for k, v in serial_cpu.items())
    )
    print(
        "  the burst's, less each process's idle CPU over the burst's window: "
        + ", ".join(f"{k} {v:.2f}" for k, v in per_charge_net.items())
    )
    if txn_after != (0, 0):
        print(
            f"PostgreSQL transactions in the burst: {txn_after[0] - txn_before[0]} committed, "
            f"{txn_after[1] - txn_before[1]} rolled back (lost conditional writes: the audit chains' heads)"
        )
    print(f"moto server peak resident memory {emulator_rss_mb} MB")
    if onprem:
        print(
            f"on-premises path: keys {args.keys}, PAY_DISPATCH={args.dispatch}, "
            + (
                "the local stack and its emulator stopped before the measured phases"
                if stackless
                else "the local stack running beside it"
            )
            + f"; outbox intents left PENDING for the relay at the end: {left_for_relay}"
        )
    acked = rows["storm"]["duplicates_acked"]
    print(f"storm: {acked} duplicates acknowledged without effect; lost {lost}; duplicated transitions {duplicated}")
    summary: dict[str, Any] = {
        "documents": args.documents,
        "server": args.server if onprem else "stack",
        "workers": args.workers if onprem else 1,
        "avg_ms": round(rows["charges"]["avg_ms"], 1),
        "p50_ms": round(rows["charges"]["p50_ms"], 1),
        "p99_ms": round(rows["charges"]["p99_ms"], 1),
        "max_ms": round(rows["charges"]["max_ms"], 1),
        "charges": args.charges,
        "errors": errors,
        "lost": lost,
        "duplicated_transitions": duplicated,
        "cpu_ms_per_charge": round(sum(per_charge.values()), 2),
        "serial_p50_ms": round(rows["serial"]["p50_ms"], 1),
        "sustained_per_s": (rows.get("sustained") or {}).get("best"),
    }
    if not onprem:
        summary["emulator_rss_mb"] = emulator_rss_mb
    print(json.dumps(summary))
    return 0 if errors == 0 and lost == 0 and duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
