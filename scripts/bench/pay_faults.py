"""Payment fault injection (issues 11 and 21): PostgreSQL stopped under load, serve workers killed mid-burst.

The on-premises configuration of ``scripts/bench/pay.py --documents postgres`` (PostgreSQL documents, the
channel stand-in in its own process, ``bianjie serve --workers N``, keys on premises, outbox intents left
to the relay; the local stack runs only to mint the patients' tokens and is stopped before any fault).
Every patient has a card the stand-in charges at once, so each charge ends SUCCEEDED unless something of
ours loses it. Scenarios (``--scenario``, repeatable; default both):

- ``postgres``: open-loop charges at ``--rate`` per second for ``--seconds``; ``--fault-at`` seconds in,
  PostgreSQL is stopped (``pg_ctl stop -m fast``: every connection cut) for ``--outage`` seconds, then
  started again. The run has a cluster of its own (``scripts/postgres.sh`` with ``BIANJIE_PG_DIR`` in a
  fresh folder under ``.local/``), so no one else's database stops. Every caller must get an HTTP
  answer: 201/202, or 503 with a stable code (``STORE_UNAVAILABLE`` while the database is away); never
  a 500, never no answer.
- ``workers``: ``--charges`` charges released together, each on its own connection; ``--kill-after``
  seconds in, every serve worker is killed (SIGKILL); uvicorn's supervisor starts new ones. A request a
  killed worker held has no answer (its connection is reset: nothing can answer for a killed process);
  those are counted as ``unanswered`` and the check is that nothing they did is lost or done twice.

Afterwards, as a hospital's cashier would, every request without a final answer (503, 409 IN_PROGRESS,
no answer, 202 PENDING) is sent again under the same Idempotency-Key (freshly signed) until it answers
201, and pay's sweeper is run for charges left PENDING (a charge the channel took whose final write the
outage refused). Then every charge is read back and checked against the channel stand-in's own ledger:

- ``lost``: an order that does not end SUCCEEDED, or that the channel debited while our record says
  otherwise;
- ``duplicated``: an order debited more than once at the channel, or a charge with more than one status
  transition;
- ``unanswered``: requests of the fault phase that got no HTTP answer at all; ``bad``: answers that are
  neither success nor a documented refusal (a 500, an unknown code).

The last line is one JSON object: ``scenarios`` (per scenario: requests, answered by status, unanswered,
bad, lost, duplicated, retried, seconds), and the totals ``lost``, ``duplicated``, ``unanswered``, ``bad``.

Usage: .venv/bin/python scripts/bench/pay_faults.py [--scenario postgres] [--scenario workers]
       [--rate 20] [--seconds 60] [--fault-at 10] [--outage 30] [--charges 200] [--kill-after 0.3]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pay as paybench
from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie_dev.pay.onprem import Child, postgres_env, start_onprem, use_local_keys, use_stack_env, worker_pids
from bianjie_dev.runtime.child import StackProcess, project_root

SYNC_ACCOUNT = "6222000000{:02d}1234"  # the stand-in charges it at once
OK_STATUSES = {201, 202}
# answers a caller can act on while something is down (documented, stable codes)
RETRYABLE = {(503, "STORE_UNAVAILABLE"), (503, "UNAVAILABLE"), (503, "CHANNEL_UNAVAILABLE"), (409, "IN_PROGRESS")}


@dataclass
class Order:
    n: int
    body: bytes
    key: str
    answers: list[tuple[int, str | None]] = field(default_factory=list)  # (status, code); status 0 = none
    first_ms: float | None = None  # how long the first send took to get its answer (or its reset)
    charge_id: str | None = None
    final: bool = False


class Caller:
    """A hospital's cashier: signs each send afresh (a new nonce), one connection per request."""

    def __init__(self, url: str, partner: dict[str, Any]) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.partner = partner
        self.key = Sm2PrivateKey.from_pem(partner["private_key_pem"])

    def headers(self, method: str, path: str, body: bytes) -> dict[str, str]:
        return sign_request(self.key, method, path, "", body, "demo-hospital", str(self.partner["key_serial"]))

    def charge(self, order: Order, timeout: float = 60.0) -> tuple[int, str | None, dict[str, Any] | None]:
        headers = self.headers("POST", "/pay/charges", order.body)
        headers.update({"Content-Type": "application/json", "Idempotency-Key": order.key})
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
            conn.request("POST", "/pay/charges", body=order.body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            conn.close()
        except (OSError, http.client.HTTPException):
            return 0, None, None
        try:
            data = json.loads(payload) if payload else None
        except ValueError:
            data = None
        code = (data or {}).get("error", {}).get("code") if isinstance(data, dict) else None
        return response.status, code, data if isinstance(data, dict) else None

    def get(self, charge_id: str) -> dict[str, Any] | None:
        path = f"/pay/charges/{charge_id}"
        try:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            conn.request("GET", path, headers=self.headers("GET", path, b""))
            response = conn.getresponse()
            data = json.loads(response.read())
            conn.close()
        except (OSError, ValueError, http.client.HTTPException):
            return None
        return data if response.status == 200 else None


def orders(run: str, count: int, patients: int) -> list[Order]:
    out = []
    for i in range(count):
        body = json.dumps(
            {
                "order_no": f"F{run}-{i}",
                "patient_id": f"bench-p{i % patients}",
                "amount": 100 + i,
                "description": "门诊",
            }
        ).encode()
        out.append(Order(i, body, f"{run}-{i}"))
    return out


def record(order: Order, status: int, code: str | None, data: dict[str, Any] | None) -> None:
    order.answers.append((status, code))
    if data and data.get("charge_id"):
        order.charge_id = str(data["charge_id"])
    order.final = status == 201


def bad_answer(status: int, code: str | None) -> bool:
    return status != 0 and status not in OK_STATUSES and (status, code) not in RETRYABLE


def pg_ctl(action: str) -> None:
    script = project_root() / "scripts" / "postgres.sh"
    subprocess.run([str(script)] + (["stop"] if action == "stop" else []), check=True, capture_output=True)


def timed(caller: Caller, order: Order) -> None:
    began = time.perf_counter()
    answer = caller.charge(order)
    order.first_ms = (time.perf_counter() - began) * 1000
    record(order, *answer)


def latency(batch: list[Order], which: Callable[[Order], bool] = lambda o: True) -> dict[str, float | None]:
    values = sorted(o.first_ms for o in batch if o.first_ms is not None and which(o))
    if not values:
        return {"avg_ms": None, "max_ms": None}
    return {"avg_ms": round(sum(values) / len(values), 1), "max_ms": round(values[-1], 1)}


def run_open_loop(caller: Caller, batch: list[Order], rate: float, fault: Callable[[float], None]) -> float:
    """Orders at a steady ``rate`` (not Poisson: the outage's window should hold a known count), each in
    its own thread; ``fault(elapsed)`` is polled by the pacing loop."""
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=400) as pool:
        for i, order in enumerate(batch):
            due = start + i / rate
            while True:
                now = time.perf_counter()
                fault(now - start)
                if now >= due:
                    break
                time.sleep(min(0.01, due - now))
            pool.submit(timed, caller, order)
    return time.perf_counter() - start


def run_burst(caller: Caller, batch: list[Order], fault: Callable[[], None], after: float) -> float:
    gate = threading.Barrier(len(batch) + 1)

    def one(order: Order) -> None:
        gate.wait()
        record(order, *caller.charge(order))

    threads = [threading.Thread(target=one, args=(o,)) for o in batch]
    for t in threads:
        t.start()
    gate.wait()
    start = time.perf_counter()
    time.sleep(after)
    fault()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def settle(caller: Caller, batch: list[Order], deadline_s: float) -> int:
    """Resend what has no final answer (same key, fresh signature) and sweep PENDING charges, until every
    order answered 201 or the deadline passes. Returns how many resends were made."""
    from bianjie.pay import wiring

    resent = 0
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        todo = [o for o in batch if not o.final]
        if not todo:
            break
        with ThreadPoolExecutor(16) as pool:
            for order, answer in zip(todo, pool.map(caller.charge, todo), strict=True):
                record(order, *answer)
        resent += len(todo)
        if any(not o.final for o in batch):
            wiring.reset()
            try:
                wiring.charges().sweep()  # a PENDING charge whose channel trade succeeded is settled here
            except Exception as exc:  # the database may still be starting
                print(f"  sweep: {exc}", file=sys.stderr)
            time.sleep(3)
    return resent


def _get(store: Any, table: str, key: dict[str, str]) -> dict[str, Any] | None:
    """A read that outlives this process's pool meeting connections the restart cut (each such
    connection is one StoreUnavailable, then replaced: tests/contract/test_postgres_pool.py)."""
    from bianjie.kit.documents.port import StoreUnavailable

    for _ in range(20):
        try:
            return store.get(table, key)  # type: ignore[no-any-return]
        except StoreUnavailable:
            time.sleep(0.5)
    return store.get(table, key)  # type: ignore[no-any-return]


def verify(caller: Caller, batch: list[Order]) -> tuple[int, int, int, list[str]]:
    """(lost, duplicated, failed, notes) from our records and the stand-in's ledger.

    ``failed``: charges that ended FAILED with no debit at the channel, the caller told so (201 FAILED).
    Not lost: nothing moved, and our record says so. In this configuration they come from the stand-in,
    whose ledger is in the same PostgreSQL: the outage is the "bank's" too, a trade it never took is
    found NOTFOUND afterwards and closed (docs/pay.md, the algorithm), and the charge fails cleanly."""
    from bianjie.kit import deps

    store = deps.documents()
    standin_table = deps.table("PAY_STANDIN_TABLE")
    lost = duplicated = failed = 0
    notes: list[str] = []
    for order in batch:
        charge = caller.get(order.charge_id) if order.charge_id else None
        if charge is None:
            lost += 1
            notes.append(f"order {order.n}: no charge readable ({order.answers})")
            continue
        debits = 0
        for attempt in charge.get("attempts") or []:
            trade = _get(
                store, standin_table, {"pk": f"TRADE#{attempt['channel']}#{attempt['out_trade_no']}", "sk": "TRADE"}
            )
            if trade and trade.get("trade_state") == "SUCCESS":
                debits += 1
        history = charge.get("history") or []
        status = charge.get("status")
        if status == "FAILED" and debits == 0 and order.final:
            failed += 1
            codes = [a.get("decline_code") or a.get("state") for a in charge.get("attempts") or []]
            notes.append(f"order {order.n}: FAILED, no debit, caller told ({charge.get('failure_code')}, {codes})")
        elif status != "SUCCEEDED" or debits == 0:
            lost += 1
            notes.append(f"order {order.n}: {status} with {debits} debit(s); answers {order.answers}")
        if debits > 1 or len(history) > 1:
            duplicated += 1
            notes.append(f"order {order.n}: {debits} debits, {len(history)} transitions")
    return lost, duplicated, failed, notes


def summarise(name: str, batch: list[Order], first: list[tuple[int, str | None]], **extra: Any) -> dict[str, Any]:
    statuses = Counter(f"{s} {c}" if c else str(s) for s, c in first)
    return {
        "scenario": name,
        "requests": len(batch),
        "answers": dict(sorted(statuses.items())),
        "unanswered": sum(1 for s, _ in first if s == 0),
        "bad": sum(1 for s, c in first if bad_answer(s, c)),
        **extra,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", action="append", choices=("postgres", "workers"))
    parser.add_argument("--rate", type=float, default=20.0, help="postgres: charges per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="postgres: how long the load runs")
    parser.add_argument("--fault-at", type=float, default=10.0, help="postgres: seconds into the load")
    parser.add_argument("--outage", type=float, default=30.0, help="postgres: seconds PostgreSQL stays down")
    parser.add_argument("--charges", type=int, default=200, help="workers: the burst")
    parser.add_argument("--kill-after", type=float, default=0.3, help="workers: seconds into the burst")
    parser.add_argument("--patients", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--settle-seconds", type=float, default=120.0)
    args = parser.parse_args()
    scenarios = args.scenario or ["postgres", "workers"]

    os.environ["PAY_DISPATCH"] = "relay"
    # a PostgreSQL cluster of this run's own (scripts/postgres.sh in a fresh folder, a free port), so
    # stopping it stops nobody else's tests; removed at the end
    import secrets
    import shutil

    from bianjie_dev.runtime.child import free_port

    own_cluster = project_root() / ".local" / f"pg-faults-{secrets.token_hex(4)}"
    os.environ["BIANJIE_PG_DIR"] = str(own_cluster)
    os.environ["BIANJIE_PG_PORT"] = str(free_port())
    try:
        pg_env, stop_pg = postgres_env()
    except BaseException:
        shutil.rmtree(own_cluster, ignore_errors=True)
        raise

    def cleanup() -> None:
        try:
            stop_pg()
        finally:
            shutil.rmtree(own_cluster, ignore_errors=True)

    pg_env.pop("BENCH_DATABASE")
    env = {
        "PAY_STANDIN_DUPLICATE_RATE": "0",
        "BIANJIE_LOG_LEVEL": os.environ.get("BIANJIE_LOG_LEVEL", "WARNING"),
        **pg_env,
    }
    results: list[dict[str, Any]] = []
    load = {"before": os.getloadavg()}
    try:
        with tempfile.TemporaryDirectory() as tmp_name:
            tmp = Path(tmp_name)
            stack = StackProcess(tmp / "stack", env=env)
            children: list[Child] = []
            try:
                use_stack_env(stack)
                use_local_keys(tmp)
                standin, serve, url = start_onprem(tmp, args.workers, args.threads, 0.0, notify_delay=1.0)
                children += [standin, serve]
                paybench.sign_agreements_with(stack, url, [SYNC_ACCOUNT.format(i) for i in range(args.patients)])
                partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
                stack.stop()  # nothing below needs the emulator
                caller = Caller(url, partner)
                warm = orders("warm", 8, args.patients)
                for order in warm:
                    record(order, *caller.charge(order))

                if "postgres" in scenarios:
                    batch = orders("pg", int(args.rate * args.seconds), args.patients)
                    state = {"down": False, "up": False, "down_at": 0.0}
                    restarter: list[threading.Thread] = []

                    def fault(elapsed: float) -> None:
                        if not state["down"] and elapsed >= args.fault_at:
                            state["down"] = True
                            pg_ctl("stop")
                            print(f"  PostgreSQL stopped at {elapsed:.1f} s", file=sys.stderr)

                            def back() -> None:
                                time.sleep(args.outage)
                                pg_ctl("start")
                                print(f"  PostgreSQL started after {args.outage:g} s", file=sys.stderr)
                                state["up"] = True

                            t = threading.Thread(target=back)
                            t.start()
                            restarter.append(t)

                    load["postgres"] = os.getloadavg()
                    took = run_open_loop(caller, batch, args.rate, fault)
                    for t in restarter:
                        t.join()
                    first = [o.answers[0] for o in batch]
                    resent = settle(caller, batch, args.settle_seconds)
                    lost, duplicated, failed, notes = verify(caller, batch)
                    results.append(
                        summarise(
                            "postgres",
                            batch,
                            first,
                            lost=lost,
                            duplicated=duplicated,
                            failed=failed,
                            resent=resent,
                            seconds=round(took, 1),
                            outage_s=args.outage,
                            first_answer=latency(batch),
                            first_503=latency(batch, lambda o: o.answers[0][0] == 503),
                            notes=notes[:10],
                        )
                    )

                if "workers" in scenarios:
                    batch = orders("kill", args.charges, args.patients)
                    killed: list[int] = []

                    def kill() -> None:
                        for pid in worker_pids(serve.proc.pid):
                            os.kill(pid, signal.SIGKILL)
                            killed.append(pid)

                    load["workers"] = os.getloadavg()
                    took = run_burst(caller, batch, kill, args.kill_after)
                    first = [o.answers[0] for o in batch]
                    deadline = time.monotonic() + 120
                    while len(worker_pids(serve.proc.pid)) < args.workers and time.monotonic() < deadline:
                        time.sleep(0.5)
                    resent = settle(caller, batch, args.settle_seconds)
                    lost, duplicated, failed, notes = verify(caller, batch)
                    results.append(
                        summarise(
                            "workers",
                            batch,
                            first,
                            lost=lost,
                            duplicated=duplicated,
                            failed=failed,
                            resent=resent,
                            seconds=round(took, 1),
                            killed=len(killed),
                            respawned=len(worker_pids(serve.proc.pid)),
                            notes=notes[:10],
                        )
                    )
            finally:
                for child in reversed(children):
                    child.stop()
                stack.stop()
    finally:
        cleanup()

    print(
        f"pay fault injection: bianjie serve {args.workers} x {args.threads}, PostgreSQL documents, keys local, "
        f"PAY_DISPATCH=relay, the emulator stopped; {os.cpu_count()} cpu"
    )
    print("load average (1, 5, 15 min): " + "; ".join(f"{k} {v[0]:.2f} {v[1]:.2f} {v[2]:.2f}" for k, v in load.items()))
    print(
        f"{'scenario':<10} {'requests':>8} {'unanswered':>10} {'bad':>4} {'resent':>6} {'lost':>5} {'dup.':>5} "
        f"{'failed':>6}  first answers"
    )
    for r in results:
        print(
            f"{r['scenario']:<10} {r['requests']:>8} {r['unanswered']:>10} {r['bad']:>4} {r['resent']:>6} "
            f"{r['lost']:>5} {r['duplicated']:>5} {r['failed']:>6}  {r['answers']}"
        )
        if "first_answer" in r:
            print(f"  first answers' latency {r['first_answer']}, of the 503s {r['first_503']}")
        for note in r["notes"]:
            print(f"  {note}")
    summary = {
        "scenarios": {r["scenario"]: {k: v for k, v in r.items() if k not in ("scenario", "notes")} for r in results},
        "lost": sum(r["lost"] for r in results),
        "duplicated": sum(r["duplicated"] for r in results),
        "unanswered": sum(r["unanswered"] for r in results),
        "bad": sum(r["bad"] for r in results),
    }
    print(json.dumps(summary))
    return 0 if summary["lost"] == 0 and summary["duplicated"] == 0 and summary["bad"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
