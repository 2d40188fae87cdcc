"""The writes the rehearsals load the database with: real documents through the documents port
(``PostgresDocumentStore``) on the real schema (``bianjie db migrate``), each committed in one
transaction with its audit record, as the pay and rx domains write a charge or a prescription with
``AuditLog.record(..., also=[Put(...)])``.

``write_batch`` writes a fixed number (the backup rehearsal: before the backup, before the restore
time, after it). ``run_load`` writes from several threads for a while and keeps the key of every
write the database acknowledged, so the failover rehearsal can count the acknowledged writes missing
after the standby took over (RPO), and how long no write got through (RTO).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bianjie.kit.actor import Actor
from bianjie.kit.audit import AuditLog
from bianjie.kit.documents.port import Cond, Put
from bianjie.kit.documents.postgres import PostgresDocumentStore
from bianjie.runtime.deployment import physical_name

ACTOR = Actor.system("ops-rehearsal")


@dataclass(frozen=True)
class Tables:
    audit: str
    pay: str
    rx: str

    @classmethod
    def of(cls, stack_name: str = "bianjie") -> Tables:
        return cls(
            audit=physical_name(stack_name, "AuditTable", "table"),
            pay=physical_name(stack_name, "PayTable", "table"),
            rx=physical_name(stack_name, "RxTable", "table"),
        )


def _one_write(logs: dict[str, AuditLog], tables: Tables, label: str, n: int) -> str:
    """One document and its audit record, in one transaction; pay and rx in turn. Returns its key."""
    ts = time.time()
    if n % 2 == 0:
        key = f"REHEARSAL#{label}#{n:07d}"
        item = {"pk": key, "sk": "charge", "amount_fen": 100 + n, "status": "SUCCEEDED", "created": ts}
        logs["pay"].record(
            actor=ACTOR,
            action="charge.create",
            resource=f"pay.charge:{label}-{n}",
            details={"rehearsal": label},
            also=[Put(tables.pay, item, Cond.absent())],
        )
    else:
        key = f"rx-rehearsal-{label}-{n:07d}"
        item = {"rx_id": key, "status": "UPLOADED", "hospital": "H-REHEARSAL", "created_at": f"{ts:.6f}"}
        logs["rx"].record(
            actor=ACTOR,
            action="prescription.upload",
            resource=f"rx.prescription:{key}",
            details={"rehearsal": label},
            also=[Put(tables.rx, item, Cond.absent())],
        )
    return key


def write_batch(dsn: str, label: str, count: int, *, stack_name: str = "bianjie") -> dict[str, Any]:
    tables = Tables.of(stack_name)
    store = PostgresDocumentStore(dsn, max_connections=2)
    try:
        logs = {s: AuditLog(store, tables.audit, service=s) for s in ("pay", "rx")}
        keys = [_one_write(logs, tables, label, n) for n in range(count)]
    finally:
        store.close()
    return {"label": label, "written": len(keys), "at": time.time()}


@dataclass
class LoadResult:
    acknowledged: list[str] = field(default_factory=list)
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    first_error_at: float | None = None  # wall clock of the first failed write
    recovered_at: float | None = None  # the first acknowledged write after a failure
    latencies_ms: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def as_json(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_ms)
        p50 = ordered[len(ordered) // 2] if ordered else None
        p99 = ordered[int(0.99 * (len(ordered) - 1))] if ordered else None
        return {
            "acknowledged": len(self.acknowledged),
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "first_error_at": self.first_error_at,
            "recovered_at": self.recovered_at,
            "write_p50_ms": round(p50, 2) if p50 is not None else None,
            "write_p99_ms": round(p99, 2) if p99 is not None else None,
        }


def run_load(
    dsn: str,
    *,
    seconds: float,
    threads: int = 4,
    label: str = "load",
    stack_name: str = "bianjie",
    acked_file: Path | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> LoadResult:
    """Writes from ``threads`` threads for ``seconds`` (or until ``stop()``), one after another in each
    thread; a failed write is counted and the thread goes on with the next key. Every acknowledged key
    is appended to ``acked_file`` as it is acknowledged, with the wall-clock time of the acknowledgement
    (``key<TAB>seconds``; the file survives this process being killed)."""
    tables = Tables.of(stack_name)
    store = PostgresDocumentStore(dsn, max_connections=threads)
    logs = {s: AuditLog(store, tables.audit, service=s, shards=threads) for s in ("pay", "rx")}
    result = LoadResult()
    out = acked_file.open("a", buffering=1) if acked_file else None
    deadline = time.monotonic() + seconds

    def worker(w: int) -> None:
        n = 0
        while time.monotonic() < deadline and not stop():
            n += 1
            started = time.monotonic()
            try:
                key = _one_write(logs, tables, f"{label}-{w}", n)
            except Exception as exc:  # any failure means "not acknowledged"; the load goes on
                with result.lock:
                    result.errors += 1
                    kind = type(exc).__name__
                    result.error_kinds[kind] = result.error_kinds.get(kind, 0) + 1
                    if result.first_error_at is None:
                        result.first_error_at = time.time()
                time.sleep(0.05)
                continue
            with result.lock:
                result.acknowledged.append(key)
                result.latencies_ms.append((time.monotonic() - started) * 1000)
                if result.first_error_at is not None and result.recovered_at is None:
                    result.recovered_at = time.time()
                if out:
                    out.write(f"{key}\t{time.time():.6f}\n")

    pool = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if out:
        out.close()
    store.close()
    return result


def missing_keys(dsn: str, keys: list[str], *, stack_name: str = "bianjie") -> list[str]:
    """The keys (from ``run_load``) that the database does not hold."""
    tables = Tables.of(stack_name)
    store = PostgresDocumentStore(dsn, max_connections=2)
    try:
        missing = []
        for key in keys:
            if key.startswith("REHEARSAL#"):
                found = store.get(tables.pay, {"pk": key, "sk": "charge"})
            else:
                found = store.get(tables.rx, {"rx_id": key})
            if found is None:
                missing.append(key)
        return missing
    finally:
        store.close()


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
