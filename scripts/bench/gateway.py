"""Gateway latency and throughput for a partner-signed GET /partners/me at concurrency 1, 50 and 200.

Starts the local stack in a child process (as `make run` does), pre-signs every request (each with its
own nonce, as a partner would), then drives it with keep-alive connections from a thread per client.
Every request does the real work: partner lookup, SM2 verification, a conditional nonce write to
DynamoDB on moto. Client and server share the machine's cores, so figures are conservative.

Usage: .venv/bin/python scripts/bench/gateway.py [--requests N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie_dev.runtime.child import StackProcess


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_level(url: str, key: Sm2PrivateKey, serial: str, concurrency: int, total: int) -> dict[str, float]:
    per_client = max(1, total // concurrency)
    plans = [
        [sign_request(key, "GET", "/partners/me", "", b"", "demo-hospital", serial) for _ in range(per_client)]
        for _ in range(concurrency)
    ]
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    start_gate = threading.Barrier(concurrency + 1)
    parts = urlsplit(url)

    def client(headers_list: list[dict[str, str]]) -> None:
        nonlocal errors
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine: list[float] = []
        bad = 0
        start_gate.wait()
        for headers in headers_list:
            t0 = time.perf_counter()
            try:
                conn.request("GET", "/partners/me", headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    bad += 1
            except OSError:
                bad += 1
                conn.close()
                conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
            mine.append((time.perf_counter() - t0) * 1000)
        conn.close()
        with lock:
            latencies.extend(mine)
            errors += bad

    threads = [threading.Thread(target=client, args=(plan,)) for plan in plans]
    for t in threads:
        t.start()
    start_gate.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": errors,
        "mean_ms": statistics.fmean(latencies),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "max_ms": max(latencies),
        "rps": len(latencies) / elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1200, help="requests per concurrency level")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = StackProcess(Path(tmp))
        try:
            partner = json.loads((Path(tmp) / "partners" / "demo-hospital.json").read_text())
            key = Sm2PrivateKey.from_pem(partner["private_key_pem"])
            run_level(stack.url, key, partner["key_serial"], 4, 100)  # warm-up: imports, connections, caches
            rows = [run_level(stack.url, key, partner["key_serial"], c, max(args.requests, c)) for c in (1, 50, 200)]
        finally:
            stack.stop()
    print(
        f"gateway GET /partners/me (signed), {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}"
    )
    print(f"{'conc':>5} {'reqs':>6} {'err':>4} {'mean ms':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'req/s':>8}")
    for r in rows:
        print(
            f"{r['concurrency']:>5} {r['requests']:>6} {r['errors']:>4} {r['mean_ms']:>8.2f} {r['p50_ms']:>8.2f} "
            f"{r['p99_ms']:>8.2f} {r['max_ms']:>8.2f} {r['rps']:>8.1f}"
        )
    summary = {
        f"c{r['concurrency']}_{k}": round(v, 2)
        for r in rows
        for k, v in r.items()
        if k in ("p50_ms", "p99_ms", "rps", "errors")
    }
    print(json.dumps(summary))
    return 0 if all(r["errors"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
