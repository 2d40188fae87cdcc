"""A soak of the local stack: mixed traffic from every service for a while, memory and open files watched.

Starts the local stack in a child process (as `make run` does, demo data seeded) and drives it from
``--clients`` threads, each looping over one request of every kind, as partners and patients would mix
them: a signed ``GET /partners/me``; a cloud-film viewing link for the demo study, its manifest and
one presigned frame; a pay-later charge (partner-signed, an Idempotency-Key of its own); a batch of
guidance events for a fresh visit; an e-prescription pre-check. Every ``--sample`` seconds it reads,
from /proc, the resident memory and open file descriptors of the stack's process and of its emulator.

Bounded means: after the first sample (warm caches), memory grows by less than ``--rss-growth-mb`` and
open files by less than ``--fd-growth`` over the run; the benchmark prints whether each held. A missed
bound is work to do (docs/performance.md), not a test failure.

Usage: .venv/bin/python scripts/bench/soak.py [--minutes 10] [--clients 4] [--sample 10]

Prints a table of samples and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.signing import sign_request
from bianjie_dev.runtime.child import StackProcess
from emulator_memory import moto_pid

PROC = Path("/proc")


def rss_mb(pid: int | None) -> float:
    if pid is None:
        return 0.0
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def open_files(pid: int | None) -> int:
    try:
        return len(os.listdir(PROC / str(pid) / "fd")) if pid is not None else 0
    except OSError:
        return 0


class Traffic:
    """One request of each kind, as the demo hospital (partner-signed) and a demo patient would send it."""

    def __init__(self, stack: StackProcess) -> None:
        self.url = stack.url
        partner = json.loads((stack.state_dir / "partners" / "demo-hospital.json").read_text())
        self.key = Sm2PrivateKey.from_pem(partner["private_key_pem"])
        self.serial = str(partner["key_serial"])
        self.study = self._demo_study(stack)
        self.run = f"{int(time.time())}"
        self.counter = iter(range(10**9))
        self.lock = threading.Lock()
        self._agreements(stack)
        from bianjie_dev.rx.client import Demo, demo_prescription

        self.rx_demo = Demo.load(stack.state_dir)
        self.rx_body = demo_prescription
        self.kinds: dict[str, Callable[[], int]] = {
            "gateway": self.partners_me,
            "film": self.film_view,
            "pay": self.charge,
            "guide": self.guide_events,
            "rx": self.rx_precheck,
        }

    def _next(self) -> int:
        with self.lock:
            return next(self.counter)

    @staticmethod
    def _demo_study(stack: StackProcess) -> str:
        # the study `make run` seeds (bianjie_dev.film.demo writes what it made)
        return str(json.loads((stack.state_dir / "film-demo.json").read_text())["study_uid"])

    def _agreements(self, stack: StackProcess) -> None:
        from bianjie_dev.cli.tokens import issue_token, via_gateway

        issuer = via_gateway(stack.url)
        for i in range(8):
            token = issue_token(issuer, f"soak-p{i}", "patient", ["patient"], requested_by="system:bench")
            body = json.dumps({"channel": "UNIONPAY", "account": f"62220200000{i:05d}"}).encode()
            self._send("POST", "/pay/agreements", body, {"Authorization": f"Bearer {token}"}, signed=False)

    def _send(
        self, method: str, path: str, body: bytes = b"", extra: dict[str, str] | None = None, *, signed: bool = True
    ) -> tuple[int, bytes]:
        headers = sign_request(self.key, method, path, "", body, "demo-hospital", self.serial) if signed else {}
        headers.update(extra or {})
        if body:
            headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(f"{self.url}{path}", data=body or None, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def partners_me(self) -> int:
        return self._send("GET", "/partners/me")[0]

    def film_view(self) -> int:
        status, raw = self._send("POST", "/film/links", json.dumps({"study_uid": self.study}).encode())
        if status != 201:
            return status
        link = json.loads(raw)["url"]
        with urllib.request.urlopen(f"{link}/manifest", timeout=60) as r:
            manifest = json.loads(r.read())
        frames = manifest["study"]["series"][0]["frames"]
        with urllib.request.urlopen(frames[len(frames) // 2], timeout=60) as r:  # a presigned frame
            r.read()
        return 200

    def charge(self) -> int:
        n = self._next()
        body = json.dumps(
            {
                "order_no": f"S{self.run}-{n}",
                "patient_id": f"soak-p{n % 8}",
                "amount": 100 + n % 900,
                "description": "门诊",
            }
        ).encode()
        status = self._send("POST", "/pay/charges", body, {"Idempotency-Key": f"soak-{self.run}-{n}"})[0]
        return 200 if status in (201, 202) else status

    def guide_events(self) -> int:
        from bianjie_dev.guide.examples import example_day

        n = self._next()
        events = example_day(f"SOAK-{self.run}-{n}", f"soak-g{n % 50}", date.today())[:4]
        return self._send("POST", "/guide/events", json.dumps({"events": events}, ensure_ascii=False).encode())[0]

    def rx_precheck(self) -> int:
        n = self._next()
        body = self.rx_body(self.rx_demo, f"SOAK-{self.run}-{n}", datetime.now(UTC).isoformat(timespec="seconds"))
        return self._send("POST", "/rx/precheck", json.dumps(body, ensure_ascii=False).encode())[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench/soak.py", description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--rss-growth-mb", type=float, default=200.0)
    parser.add_argument("--fd-growth", type=int, default=50)
    args = parser.parse_args(argv)
    if args.minutes <= 0 or args.clients < 1 or args.sample <= 0:
        parser.error("--minutes, --clients and --sample must be positive")

    with tempfile.TemporaryDirectory(prefix="bianjie-soak-") as tmp:
        stack = StackProcess(Path(tmp), env={"BIANJIE_LOG_LEVEL": "WARNING"})
        try:
            return soak(stack, args)
        finally:
            stack.stop()


def soak(stack: StackProcess, args: argparse.Namespace) -> int:
    traffic = Traffic(stack)
    stack_pid, emulator = stack.proc.pid, moto_pid(stack.proc.pid)
    done: dict[str, int] = dict.fromkeys(traffic.kinds, 0)
    failed: dict[str, dict[str, int]] = {k: {} for k in traffic.kinds}
    lock = threading.Lock()
    deadline = time.monotonic() + args.minutes * 60
    rng = random.Random(7)

    def client(seed: int) -> None:
        order = list(traffic.kinds)
        random.Random(seed).shuffle(order)
        while time.monotonic() < deadline:
            for kind in order:
                try:
                    status = traffic.kinds[kind]()
                    reason = None if status in (200, 201, 202) else str(status)
                except Exception as exc:  # a failed request is counted, the soak goes on
                    reason = type(exc).__name__
                with lock:
                    if reason is None:
                        done[kind] += 1
                    else:
                        failed[kind][reason] = failed[kind].get(reason, 0) + 1

    threads = [threading.Thread(target=client, args=(rng.randrange(10**6),), daemon=True) for _ in range(args.clients)]
    started = time.monotonic()
    for t in threads:
        t.start()
    samples = []
    while True:
        with lock:
            total = sum(done.values())
        samples.append(
            {
                "t_s": round(time.monotonic() - started),
                "stack_rss_mb": round(rss_mb(stack_pid), 1),
                "emulator_rss_mb": round(rss_mb(emulator), 1),
                "stack_fds": open_files(stack_pid),
                "emulator_fds": open_files(emulator),
                "requests": total,
            }
        )
        if time.monotonic() >= deadline:
            break
        time.sleep(min(args.sample, max(0.0, deadline - time.monotonic())))
    for t in threads:
        t.join(timeout=120)

    print(f"soak: {args.minutes} min, {args.clients} clients, {platform.machine()}, {os.cpu_count()} cores")
    print(f"{'t s':>6} {'stack MB':>9} {'moto MB':>8} {'stack fds':>10} {'moto fds':>9} {'requests':>9}")
    for s in samples:
        print(
            f"{s['t_s']:>6} {s['stack_rss_mb']:>9} {s['emulator_rss_mb']:>8} "
            f"{s['stack_fds']:>10} {s['emulator_fds']:>9} {s['requests']:>9}"
        )
    warm = samples[1] if len(samples) > 2 else samples[0]
    last = samples[-1]
    growth = {
        "stack_rss_mb": round(last["stack_rss_mb"] - warm["stack_rss_mb"], 1),
        "emulator_rss_mb": round(last["emulator_rss_mb"] - warm["emulator_rss_mb"], 1),
        "stack_fds": last["stack_fds"] - warm["stack_fds"],
        "emulator_fds": last["emulator_fds"] - warm["emulator_fds"],
    }
    bounded = {
        "memory": max(growth["stack_rss_mb"], growth["emulator_rss_mb"]) < args.rss_growth_mb,
        "open_files": max(growth["stack_fds"], growth["emulator_fds"]) < args.fd_growth,
    }
    errors = sum(sum(v.values()) for v in failed.values())
    print(f"done by kind: {done}")
    print(f"failed by kind: { {k: v for k, v in failed.items() if v} }")
    print(f"growth after warm-up: {growth}; bounded: {bounded}")
    print(
        json.dumps(
            {
                "minutes": args.minutes,
                "clients": args.clients,
                "requests": sum(done.values()),
                "errors": errors,
                "by_kind": done,
                "growth": growth,
                "bounded": bounded,
                "peak_stack_rss_mb": max(s["stack_rss_mb"] for s in samples),
                "peak_emulator_rss_mb": max(s["emulator_rss_mb"] for s in samples),
                "peak_fds": max(max(s["stack_fds"], s["emulator_fds"]) for s in samples),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    raise SystemExit(main())
