"""Identity benchmark: full logins and token-endpoint calls against the local stack (`make run`'s code path).

1. ``--logins`` complete logins from ``--workers`` threads, each as a new browser: authorize, login
   page, the 随申办 stand-in, callback (server-to-server code exchange with the stand-in, the archive
   lookup), the code redeemed by Authlib's client with PKCE, the ES256 ID token verified against the JWKS
   (consent was given in the warm-up);
2. ``--refreshes`` refresh-token rotations (the token endpoint alone: KMS Sign for the access token and
   the ID token, the family and token records, the audit record);
3. the same number of RFC 8693 token exchanges;
4. the same number of launches into 第二医院 (a ticket hospital) over WeChat: ``GET /identity/launch`` (signs
   nothing) and the launch-ticket exchange at the token endpoint (TokenIssueFunction signs the ticket).

``token_p99_ms`` is the p99 of phases 2 and 3 together (token-endpoint calls); ``logins_per_s`` is phase 1's
rate. CPU milliseconds per operation are read from /proc for the stack's process tree (the gateway, its
functions and the moto server), far less sensitive to the machine's load than wall time.

Usage: .venv/bin/python scripts/bench/identity.py [--logins 40] [--refreshes 200] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from bianjie_dev.identity.client import login
from bianjie_dev.runtime.child import StackProcess
from emulator_memory import EmulatorMemory

TICKS = os.sysconf("SC_CLK_TCK")
EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"
LAUNCH_TICKET = "urn:bianjie:params:oauth:token-type:launch-ticket"


def tree_cpu_ms(root: int) -> float:
    """utime + stime of ``root`` and its descendants, in ms."""
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        times[int(entry)] = int(fields[11]) + int(fields[12])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += times.get(pid, 0)
        todo.extend(p for p, parent in parents.items() if parent == pid)
    return total * 1000 / TICKS


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else 0.0


def run(n: int, workers: int, op: Callable[[int], None]) -> tuple[list[float], int, float]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def one(i: int) -> None:
        nonlocal errors
        started = time.perf_counter()
        try:
            op(i)
        except Exception as exc:  # counted, not fatal: the benchmark reports errors
            with lock:
                errors += 1
            print(f"error: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
            return
        with lock:
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, range(n)))
    return latencies, errors, time.perf_counter() - started


def phase(stack: StackProcess, n: int, workers: int, op: Callable[[int], None]) -> dict[str, Any]:
    cpu0 = tree_cpu_ms(stack.proc.pid)
    lat, errors, elapsed = run(n, workers, op)
    return {
        "n": n,
        "errors": errors,
        "lat": lat,
        "elapsed": elapsed,
        "cpu_ms": (tree_cpu_ms(stack.proc.pid) - cpu0) / max(1, n),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logins", type=int, default=40)
    parser.add_argument("--refreshes", type=int, default=200)
    parser.add_argument("--workers", type=int, default=4)
    args = parser.parse_args()
    env = {"BIANJIE_LOG_LEVEL": os.environ.get("BIANJIE_LOG_LEVEL", "WARNING")}
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        stack = StackProcess(Path(tmp), env=env)
        memory = EmulatorMemory(stack.proc.pid)
        try:
            web = json.loads((Path(tmp) / "identity" / "clients.json").read_text())["demo-hospital-web"]
            token_url = f"{stack.url}/identity/oidc/token"
            auth = ("demo-hospital-web", web["secret"])

            def one_login(i: int) -> dict[str, Any]:
                who = "zhangsan" if i % 2 == 0 else "lisi"
                result = login(
                    stack.url, "demo-hospital-web", web["redirect_uri"], client_secret=web["secret"], who=who
                )
                return result.token

            one_login(0)  # warm-up: imports, KMS clients, the stand-ins, both persons' consent
            one_login(1)
            tokens: list[dict[str, Any]] = []
            rows["login"] = phase(stack, args.logins, args.workers, lambda i: tokens.append(one_login(i)))

            chains = [t["refresh_token"] for t in tokens] or ["none"]
            locks = [threading.Lock() for _ in chains]

            def refresh(i: int) -> None:
                slot = i % len(chains)
                with locks[slot]:  # one rotation at a time per family: a rightful holder never reuses
                    r = requests.post(
                        token_url,
                        data={"grant_type": "refresh_token", "refresh_token": chains[slot]},
                        auth=auth,
                        timeout=60,
                    )
                    if r.status_code != 200:
                        raise RuntimeError(f"refresh answered {r.status_code}: {r.text[:200]}")
                    chains[slot] = r.json()["refresh_token"]

            rows["refresh"] = phase(stack, args.refreshes, args.workers, refresh)
            access = [t["access_token"] for t in tokens] or ["none"]

            def exchange(i: int) -> None:
                form = {
                    "grant_type": EXCHANGE,
                    "subject_token": access[i % len(access)],
                    "subject_token_type": ACCESS,
                    "audience": "demo-hospital-web",
                }
                r = requests.post(token_url, data=form, auth=auth, timeout=60)
                if r.status_code != 200:
                    raise RuntimeError(f"exchange answered {r.status_code}: {r.text[:200]}")

            rows["exchange"] = phase(stack, args.refreshes, args.workers, exchange)
            for t in tokens[:2]:  # zhangsan and lisi agree once to share with 第二医院
                bearer = {"Authorization": f"Bearer {t['access_token']}"}
                r = requests.post(f"{stack.url}/identity/consents", json={"hospital": "hospital-b"}, headers=bearer)
                if r.status_code != 201:
                    raise RuntimeError(f"consent answered {r.status_code}: {r.text[:200]}")

            def launch(i: int) -> None:
                subject = access[i % len(access)]
                r = requests.get(
                    f"{stack.url}/identity/launch/hospital-b?channel=wechat",
                    headers={"Authorization": f"Bearer {subject}"},
                    timeout=60,
                )
                if r.status_code != 200 or not r.json().get("exchange"):
                    raise RuntimeError(f"launch answered {r.status_code}: {r.text[:200]}")
                x = r.json()["exchange"]
                fields = ("grant_type", "subject_token_type", "requested_token_type", "audience", "channel")
                t = requests.post(
                    x["token_endpoint"],
                    data={k: x[k] for k in fields} | {"subject_token": subject},
                    auth=auth,
                    timeout=60,
                )
                if t.status_code != 200 or t.json().get("issued_token_type") != LAUNCH_TICKET:
                    raise RuntimeError(f"ticket exchange answered {t.status_code}: {t.text[:200]}")

            rows["launch"] = phase(stack, args.refreshes, args.workers, launch)
        finally:
            emulator_rss_mb = memory.stop()
            stack.stop()

    load = os.getloadavg()
    print(
        f"identity benchmark, {platform.processor() or platform.machine()}, {os.cpu_count()} cpu, python "
        f"{platform.python_version()}, {args.workers} workers; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"{'phase':<9} {'n':>5} {'err':>4} {'avg ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'per s':>7} {'cpu ms/op':>10}")
    for name, r in rows.items():
        lat = r["lat"] or [0.0]
        print(
            f"{name:<9} {r['n']:>5} {r['errors']:>4} {statistics.fmean(lat):>8.1f} {percentile(lat, 0.5):>8.1f} "
            f"{percentile(lat, 0.99):>8.1f} {len(r['lat']) / r['elapsed']:>7.1f} {r['cpu_ms']:>10.1f}"
        )
    print(f"moto server peak resident memory {emulator_rss_mb} MB")
    token_lat = rows["refresh"]["lat"] + rows["exchange"]["lat"]
    result = {
        "logins_per_s": round(len(rows["login"]["lat"]) / rows["login"]["elapsed"], 2),
        "token_p99_ms": round(percentile(token_lat, 0.99), 1),
        "errors": int(sum(r["errors"] for r in rows.values())),
        "login_cpu_ms": round(rows["login"]["cpu_ms"], 1),
        "token_cpu_ms": round((rows["refresh"]["cpu_ms"] + rows["exchange"]["cpu_ms"]) / 2, 1),
        "launch_p99_ms": round(percentile(rows["launch"]["lat"], 0.99), 1),
        "launch_cpu_ms": round(rows["launch"]["cpu_ms"], 1),
        "emulator_rss_mb": emulator_rss_mb,
        "load_avg_1m": round(load[0], 2),
    }
    print(json.dumps(result))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
