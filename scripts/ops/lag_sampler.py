"""Replication lag of a primary's standbys, sampled from ``pg_stat_replication`` until stopped.

    python scripts/ops/lag_sampler.py DSN OUT.json [--interval 0.1] [--seconds N]

Every ``interval`` seconds: each standby's ``replay_lag`` (the time between a commit on the primary and
its replay on the standby, as the primary measures it from the standby's replies). PostgreSQL shows
NULL once a standby has replayed everything and no new WAL came: counted as 0 only when the standby's
replay position equals the primary's current WAL position, else the sample is skipped. Stops at
SIGTERM/SIGINT, after ``--seconds``, or when the primary goes away; then writes count, p50, p99 and
max in milliseconds to OUT.json.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

import psycopg

QUERY = (
    "SELECT application_name, sync_state, EXTRACT(epoch FROM replay_lag) * 1000,"
    " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) FROM pg_stat_replication"
)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("out")
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--seconds", type=float, default=3600)
    args = parser.parse_args()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    samples: list[float] = []
    sync_states: set[str] = set()
    deadline = time.monotonic() + args.seconds
    try:
        with psycopg.connect(args.dsn, autocommit=True, connect_timeout=3) as conn:
            while not stopping and time.monotonic() < deadline:
                for _name, state, lag_ms, behind in conn.execute(QUERY).fetchall():
                    sync_states.add(str(state))
                    if lag_ms is not None:
                        samples.append(float(lag_ms))
                    elif behind is not None and float(behind) == 0:
                        samples.append(0.0)
                time.sleep(args.interval)
    except psycopg.Error:
        pass  # the primary went away (the failover rehearsal kills it): keep what was sampled
    report = {
        "samples": len(samples),
        "lag_ms_p50": percentile(samples, 0.50),
        "lag_ms_p99": percentile(samples, 0.99),
        "lag_ms_max": round(max(samples), 2) if samples else None,
        "sync_states": sorted(sync_states),
    }
    Path(args.out).write_text(json.dumps(report))
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
