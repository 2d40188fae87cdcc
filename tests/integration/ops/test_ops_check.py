"""``bianjie ops check`` against a real PostgreSQL (scripts/postgres.sh's test server, a database of its
own): the row counts of every table, and an audit chain that was tampered with is found (exit 4)."""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[3]
BIANJIE = str(Path(sys.executable).parent / "bianjie")


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    lock_path = ROOT / ".local" / "postgres-fixture.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = subprocess.run(
            [str(ROOT / "scripts" / "postgres.sh")], capture_output=True, text=True, timeout=900, check=True
        )
    admin = started.stdout.strip().splitlines()[-1]
    name = f"ops_check_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = admin.rsplit("/", 1)[0] + f"/{name}"
    try:
        subprocess.run([BIANJIE, "db", "migrate", "--dsn", dsn], capture_output=True, check=True, timeout=300)
        subprocess.run(
            [BIANJIE, "ops", "write", "--dsn", dsn, "--label", "T", "--count", "12"],
            capture_output=True,
            check=True,
            timeout=300,
        )
        yield dsn
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def check(dsn: str) -> tuple[int, dict[str, object]]:
    done = subprocess.run([BIANJIE, "ops", "check", "--dsn", dsn], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_rows_and_chains_of_an_intact_database(database: str) -> None:
    rc, report = check(database)
    assert rc == 0
    tables = report["tables"]
    assert isinstance(tables, dict)
    assert tables["bianjie-PayTable"] == 6 and tables["bianjie-RxTable"] == 6
    assert tables["bianjie-AuditTable"] == 12 + 2  # the records, and each chain's head item
    assert report["chains"] == 2 and report["audit_records"] == 12 and report["chains_ok"] is True


def test_an_edited_audit_record_is_found(database: str) -> None:
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(
            """UPDATE "bianjie-AuditTable" SET doc = jsonb_set(doc, '{action}', '"charge.refund"')"""
            " WHERE pk LIKE 'pay#%' AND sk = 2"
        )
    rc, report = check(database)
    assert rc == 4
    assert report["chains_ok"] is False
    problems = report["problems"]
    assert isinstance(problems, list)
    assert any(p["kind"] == "edited" and p["seq"] == 2 and p["chain"].startswith("pay#") for p in problems)
