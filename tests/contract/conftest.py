"""Fixtures for the contract suites: every adapter of a port behind one parametrized fixture.

PostgreSQL is real: ``scripts/postgres.sh`` installs (if needed) and starts a throwaway server once
per session; each pytest process works in its own schema, dropped at the end. DynamoDB is moto in
process. Nothing is skipped: if a backend cannot start, its tests error.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from bianjie.kit.documents import DocumentStore, TableSpec

ROOT = Path(__file__).resolve().parents[2]
REGION = "cn-north-1"


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The DSN of the test server; started by scripts/postgres.sh unless BIANJIE_TEST_POSTGRES_DSN is set."""
    preset = os.environ.get("BIANJIE_TEST_POSTGRES_DSN")
    if preset:
        return preset
    lock_path = ROOT / ".local" / "postgres-fixture.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    # Parallel workers each run this fixture; the first starts the server, the others reuse it.
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(
            [str(ROOT / "scripts" / "postgres.sh")], capture_output=True, text=True, timeout=900, check=False
        )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(f"scripts/postgres.sh failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def postgres_dsn(postgres_server: str) -> Iterator[str]:
    """A DSN whose search_path is a schema private to this pytest process."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    schema = f"contract_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield make_conninfo(postgres_server, options=f"-csearch_path={schema}")
    finally:
        with psycopg.connect(postgres_server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def moto_dynamodb(monkeypatch_module: pytest.MonkeyPatch) -> Iterator[Any]:
    """A DynamoDB client on moto in process."""
    import boto3

    # The local stack's moto fixes (serialised requests, cheap transaction snapshots), so the contract
    # suite proves them: conditional races and transaction rollback are checked below.
    from bianjie_dev.runtime.motoserver import tune_dynamodb
    from moto import mock_aws

    tune_dynamodb()
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@dataclass
class Backend:
    """One adapter under test. ``table`` makes a uniquely named table, so tests never share state."""

    name: str
    store: DocumentStore
    reopen: Callable[[], DocumentStore]  # another store instance over the same data
    timeless: DocumentStore  # sees the same data with the clock at 0, so nothing has expired
    _cleanup: list[Callable[[], None]] = field(default_factory=list)

    def peek(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """The stored item even if it has expired: shows that a failed write changed nothing."""
        return self.timeless.get(table, key)

    def table(self, spec: TableSpec) -> str:
        self.store.ensure_table(spec)
        return spec.name

    def fresh(self) -> DocumentStore:
        other = self.reopen()
        if hasattr(other, "close"):
            self._cleanup.append(other.close)
        return other

    def close(self) -> None:
        for fn in self._cleanup:
            fn()


@pytest.fixture(scope="module")
def _postgres_store(postgres_dsn: str) -> Iterator[Any]:
    from bianjie.kit.documents.postgres import PostgresDocumentStore

    store = PostgresDocumentStore(postgres_dsn, max_connections=8)
    yield store
    store.close()


@pytest.fixture(params=["memory", "dynamodb", "postgres"])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    if request.param == "memory":
        from bianjie.kit.documents.memory import MemoryDocumentStore

        memory = MemoryDocumentStore()
        b = Backend("memory", memory, lambda: memory, _MemoryPeek(memory))  # type: ignore[arg-type]
    elif request.param == "dynamodb":
        from bianjie.kit.documents.dynamodb import DynamoDocumentStore

        client = request.getfixturevalue("moto_dynamodb")
        b = Backend(
            "dynamodb",
            DynamoDocumentStore(client),
            lambda: DynamoDocumentStore(client),
            DynamoDocumentStore(client, clock=lambda: 0),
        )
    else:
        from bianjie.kit.documents.postgres import PostgresDocumentStore

        dsn = request.getfixturevalue("postgres_dsn")
        store = request.getfixturevalue("_postgres_store")
        # The timeless view borrows the main store's pool: that also exercises passing a pool in.
        b = Backend(
            "postgres",
            store,
            lambda: PostgresDocumentStore(dsn),
            PostgresDocumentStore(store._pool, clock=lambda: 0),
        )
    yield b
    b.close()


class _MemoryPeek:
    def __init__(self, memory: Any) -> None:
        self._memory = memory

    def get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        found = [i for i in self._memory.items(table) if all(i.get(k) == v for k, v in key.items())]
        return found[0] if found else None
