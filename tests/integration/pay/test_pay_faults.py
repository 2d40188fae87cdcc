"""Fault injection on pay's on-premises configuration (issues 11 and 21), a short run of
``scripts/bench/pay_faults.py``: PostgreSQL stopped under load, then every serve worker killed mid-burst.

The script runs its own PostgreSQL cluster (so stopping it stops no other test's database), the channel
stand-in in its own process, ``bianjie serve --workers 2`` with keys on premises and the emulator stopped.
What must hold, from its last JSON line:

- while PostgreSQL is down every caller gets an HTTP answer: a success, or 503 with a stable code
  (``STORE_UNAVAILABLE``), never a 500 and never a dropped connection;
- after it is back, and after the workers were killed and replaced, a caller that resends what had no
  final answer (same Idempotency-Key) ends with every order charged exactly once: 0 lost (our record and
  the channel's ledger agree that each order was debited) and 0 duplicated (no order debited twice, no
  charge with two transitions).

A request a killed worker was holding cannot be answered (its connection is reset); the script counts
those as ``unanswered`` for the worker scenario, and the check there is only that nothing is lost or
done twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bianjie_dev.runtime.child import project_root


def test_postgres_outage_and_killed_workers_lose_nothing_and_do_nothing_twice() -> None:
    root = project_root()
    out = subprocess.run(
        [
            sys.executable,
            str(root / "scripts" / "bench" / "pay_faults.py"),
            "--rate",
            "8",
            "--seconds",
            "16",
            "--fault-at",
            "4",
            "--outage",
            "6",
            "--charges",
            "40",
            "--patients",
            "8",
            "--settle-seconds",
            "120",
        ],
        cwd=root,
        env={**os.environ, "BIANJIE_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=840,
    )
    assert out.stdout.strip(), out.stderr[-4000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    pg, workers = summary["scenarios"]["postgres"], summary["scenarios"]["workers"]
    detail = out.stdout[-3000:]

    # PostgreSQL stopped for 6 s of a 16 s load at 8/s: every caller answered, some with the stable 503
    assert pg["unanswered"] == 0, detail
    assert pg["bad"] == 0, detail
    assert any(k.startswith("503 STORE_UNAVAILABLE") for k in pg["answers"]), detail
    assert pg["lost"] == 0 and pg["duplicated"] == 0, detail

    # every worker killed mid-burst and replaced by the supervisor: nothing lost, nothing twice
    assert workers["killed"] >= 2 and workers["respawned"] >= 2, detail
    assert workers["bad"] == 0, detail
    assert workers["lost"] == 0 and workers["duplicated"] == 0, detail
    assert summary["lost"] == 0 and summary["duplicated"] == 0
    assert out.returncode == 0, detail
