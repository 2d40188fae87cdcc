"""The operations rehearsals, short versions, end to end on this machine (issue 20): the daily full backup
and one-step point-in-time restore (scripts/ops/backup_restore.sh), and the hot standby's failover
(scripts/ops/failover.sh). Each runs its own PostgreSQL clusters under a folder of its own and prints
its figures as a last JSON line, which is what is checked here.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def ops_dir() -> Iterator[Path]:
    # under the checkout (as scripts/postgres.sh's .local/pg): pytest's own tmp folders are closed to
    # the 'postgres' user the clusters run as when the tests run as root
    path = ROOT / ".local" / "ops" / f"test-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def rehearse(script: str, ops_dir: Path, *args: str, timeout: float = 300) -> dict[str, Any]:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "ops" / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "BIANJIE_OPS_DIR": str(ops_dir)},
        check=False,
    )
    assert done.returncode == 0, f"{script} failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def test_backup_then_point_in_time_restore(ops_dir: Path) -> None:
    figures = rehearse("backup_restore.sh", ops_dir, "--short")
    assert figures["refused_without_force"] is True  # a non-empty target, without --force
    assert figures["chains_ok"] is True
    assert figures["chains"] >= 2  # pay's and rx's chains of the day, verified record by record
    assert figures["point_in_time_ok"] is True  # the writes before the time are there, none after it
    assert figures["rows_checked"] > 2 * figures["writes_per_batch"]
    assert figures["objects"] == 40 and figures["objects_ok"] is True
    assert figures["backup_s"] > 0 and figures["restore_s"] > 0
    assert not any((ops_dir / "backup" / "restored" / "data").glob("postmaster.pid"))  # nothing left running


def test_failover_loses_no_acknowledged_write_and_fences_the_old_primary(ops_dir: Path) -> None:
    figures = rehearse("failover.sh", ops_dir, "--short")
    assert figures["acknowledged_before_kill"] > 0
    assert figures["acknowledged"] > figures["acknowledged_before_kill"]  # writes went on after the switch
    assert figures["rpo_writes_lost"] == 0
    assert figures["rto_s"] is not None and figures["rto_s"] < 30
    assert figures["lag_ms_p99"] is not None
    assert figures["chains_ok"] is True
    assert figures["fenced"] is True  # restarted as a primary while the standby is one: refused
    assert figures["old_primary_role"] == "standby"
    assert figures["old_primary_read_only"] is True
