"""Audit log: SM3 chaining, tamper detection, concurrent appends."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from bianjie.kit.audit import GENESIS, AuditLog, record_hash
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.documents.port import Cond, Put, TableSpec, TransactionCanceled
from bianjie.kit.errors import AppError
from bianjie.kit.tables import table_spec

from tests.fakes import Clock

NOW = 1_767_225_600.25  # 2026-01-01T00:00:00.25Z
CHAIN = "film#2026-01-01"


@pytest.fixture
def store() -> MemoryDocumentStore:
    return MemoryDocumentStore(table_spec("AUDIT_TABLE", "audit"))


@pytest.fixture
def log(store: MemoryDocumentStore) -> AuditLog:
    return AuditLog(store, "audit", Clock(NOW), service="film")


def append(log: AuditLog, n: int, **kw: Any) -> None:
    for i in range(n):
        log.record(
            actor="partner:his-1",
            action="film.link.issue",
            resource=f"film.study:1.2.840.{i}",
            patient_ref="bi:" + "ab" * 32,
            source_ip="10.1.2.3",
            request_id=f"req-{i}",
            details={"ttl": 3600, "ratio": 0.5, "n": float(i)},
            **kw,
        )


def item(store: MemoryDocumentStore, seq: int) -> dict[str, Any]:
    got = store.get("audit", {"chain": CHAIN, "seq": seq})
    assert got is not None
    return got


def issues(log: AuditLog) -> list[tuple[str, int]]:
    return [(i.kind, i.seq) for i in log.verify(CHAIN).issues]


def test_record_fields_and_chaining(log: AuditLog, store: MemoryDocumentStore) -> None:
    first = log.record(
        actor="staff:d123",
        action="film.view",
        resource="film.study:1.2.3",
        patient_ref="bi:00ff",
        source_ip="2001:db8::1",
        request_id="r1",
        outcome="denied",
        details={"reason": "not in care team"},
    )
    assert (first.chain, first.seq, first.pos, first.prev_hash) == (CHAIN, 1, 1, GENESIS)
    assert first.ts == "2026-01-01T00:00:00.250000Z"
    assert first.hash == record_hash(first.hashed_body()) == first.computed_hash()
    second = log.record(actor="patient:p9", action="film.view", resource="film.study:1.2.3")
    assert (second.seq, second.prev_hash) == (2, first.hash)
    head = log.head(CHAIN)
    assert head is not None and (head["head_seq"], head["head_hash"]) == (2, second.hash)
    assert [r.seq for r in log.records(CHAIN)] == [1, 2]
    assert log.chains() == [CHAIN]


def test_chain_per_service_and_utc_day(store: MemoryDocumentStore) -> None:
    clock = Clock(NOW)
    film = AuditLog(store, "audit", clock, service="film")
    rx = AuditLog(store, "audit", clock, service="rx")
    film.record(actor="system:cron", action="a", resource="x:1")
    rx.record(actor="system:cron", action="a", resource="x:1")
    clock.t = NOW + 86400 - 1  # 2026-01-01T23:59:59Z is still the first day
    film.record(actor="system:cron", action="a", resource="x:1")
    clock.t = NOW + 86400  # Beijing time changes date at 16:00Z; chains follow UTC
    film.record(actor="system:cron", action="a", resource="x:1")
    assert sorted(film.chains()) == ["film#2026-01-01", "film#2026-01-02", "rx#2026-01-01"]
    assert film.chains("rx") == ["rx#2026-01-01"]
    reports = film.verify_all()
    assert len(reports) == 3 and all(r.ok for r in reports)
    assert sum(r.records for r in reports) == 4
    assert [r.chain for r in film.verify_all("film")] == ["film#2026-01-01", "film#2026-01-02"]


class CountingStore:
    """The memory store, counting head reads and transactions."""

    def __init__(self, inner: MemoryDocumentStore) -> None:
        self.inner = inner
        self.gets = self.transactions = 0

    def get(self, table: str, key: Any) -> Any:
        self.gets += 1
        return self.inner.get(table, key)

    def transact(self, ops: Any) -> None:
        self.transactions += 1
        self.inner.transact(ops)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_sharded_chains_a_writer_keeps_its_shard_and_appends_in_one_call(store: MemoryDocumentStore) -> None:
    counting = CountingStore(store)
    log = AuditLog(counting, "audit", Clock(NOW), service="pay", shards=4)  # type: ignore[arg-type]
    for _ in range(40):
        log.record(actor="system:x", action="a", resource="x:1")
    chains = log.chains()
    assert len(chains) == 1 and chains[0].startswith("pay#2026-01-01#s")
    # the first append read the (absent) head; every later one appended after the head it remembered
    assert (counting.gets, counting.transactions) == (1, 40)
    assert log.verify(chains[0]).ok and log.verify(chains[0]).records == 40


def test_concurrent_writers_settle_on_shards_of_their_own(store: MemoryDocumentStore) -> None:
    log = AuditLog(store, "audit", Clock(NOW), service="pay", shards=8, sleep=lambda s: None)
    barrier = threading.Barrier(4)

    def writer() -> None:
        barrier.wait()
        for _ in range(25):
            log.record(actor="system:x", action="a", resource="x:1")

    workers = [threading.Thread(target=writer) for _ in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    reports = log.verify_all("pay")
    assert all(r.ok for r in reports) and sum(r.records for r in reports) == 100 and len(reports) > 1


def test_a_remembered_head_that_moved_is_read_again(store: MemoryDocumentStore) -> None:
    """Another writer appended after this one: the remembered head is stale, the append reads and
    links after the real head; no record is lost and the chain verifies."""
    first = AuditLog(store, "audit", Clock(NOW), service="film", sleep=lambda s: None)
    other = AuditLog(store, "audit", Clock(NOW), service="film", sleep=lambda s: None)
    append(first, 2)
    append(other, 3)
    append(first, 1)
    report = first.verify(CHAIN)
    assert report.ok, report.issues
    assert report.records == report.head_seq == 6


def test_a_chain_reset_behind_a_writers_back_is_not_linked_to_its_memory() -> None:
    """The remembered head's hash is in the condition: a chain emptied and grown back to the same seq
    by someone else (tests reset tables; archives are restored) is read, not taken for the old one."""
    store = MemoryDocumentStore(table_spec("AUDIT_TABLE", "audit"))
    first = AuditLog(store, "audit", Clock(NOW), service="film", sleep=lambda s: None)
    append(first, 3)
    for key in [{"chain": CHAIN, "seq": n} for n in range(4)]:
        store.delete("audit", key)
    append(AuditLog(store, "audit", Clock(NOW + 1), service="film"), 3)  # the same seqs, other hashes
    append(first, 1)
    report = first.verify(CHAIN)
    assert report.ok, report.issues
    assert report.records == report.head_seq == 4


def test_input_validation(log: AuditLog) -> None:
    for bad in (
        {"actor": "his-1"},
        {"actor": "robot:1"},
        {"resource": "no-id"},
        {"action": ""},
        {"patient_ref": "310101199001011234"},  # a clear ID number
        {"patient_ref": "13800138000"},  # a clear phone number
        {"source_ip": "10.0.0.x"},
    ):
        kw: dict[str, Any] = {"actor": "staff:d1", "action": "a", "resource": "x:1", **bad}
        with pytest.raises(ValueError):
            log.record(**kw)


def test_details_are_redacted(log: AuditLog) -> None:
    rec = log.record(
        actor="staff:d1",
        action="rx.view",
        resource="rx.prescription:9",
        details={"patient_name": "张三", "note": "called 13800138000", "fields": ["diagnosis"], "id_no": "x"},
    )
    assert rec.details == {
        "patient_name": "[redacted]",
        "note": "called [redacted]",
        "fields": ["diagnosis"],
        "id_no": "[redacted]",
    }
    assert "张三" not in str(rec.model_dump())


def test_clean_chain_verifies(log: AuditLog) -> None:
    append(log, 6)
    report = log.verify(CHAIN)
    assert report.ok and report.records == 6 and report.head_seq == 6


def test_empty_chain_verifies(log: AuditLog) -> None:
    report = log.verify("film#1999-01-01")
    assert report.ok and report.records == 0 and report.head_seq is None


def test_detects_edit(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 5)
    rec = item(store, 3)
    store.put("audit", {**rec, "action": "film.view"})  # rewritten in place, hash left as it was
    assert issues(log) == [("edited", 3)]


def test_detects_edit_with_recomputed_hash(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 5)
    rec = item(store, 3)
    body = {k: v for k, v in rec.items() if k not in ("seq", "hash")}
    body["outcome"] = "denied"
    store.put("audit", {**rec, "outcome": "denied", "hash": record_hash(body)})
    # record 3 is self-consistent now, but record 4 no longer links to it
    assert issues(log) == [("removed", 4)]


def test_detects_edit_of_details_value(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 3)
    rec = item(store, 2)
    store.put("audit", {**rec, "details": {**rec["details"], "ttl": 7200}})
    assert issues(log) == [("edited", 2)]


def test_detects_removed_middle(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 5)
    store.delete("audit", {"chain": CHAIN, "seq": 3})
    assert issues(log) == [("removed", 3)]


def test_detects_removed_middle_with_renumbering(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 5)
    r4, r5 = item(store, 4), item(store, 5)
    store.delete("audit", {"chain": CHAIN, "seq": 5})
    store.put("audit", {**r4, "seq": 3})
    store.put("audit", {**r5, "seq": 4})
    head = log.head(CHAIN)
    assert head is not None
    store.put("audit", {**head, "head_seq": 4})
    found = issues(log)
    assert ("removed", 3) in found and ("reordered", 3) in found and ("reordered", 4) in found


def test_detects_removed_tail(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 5)
    store.delete("audit", {"chain": CHAIN, "seq": 5})
    assert issues(log) == [("truncated", 5)]


def test_detects_removed_tail_of_several(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 5)
    store.delete("audit", {"chain": CHAIN, "seq": 5})
    store.delete("audit", {"chain": CHAIN, "seq": 4})
    report = log.verify(CHAIN)
    assert [(i.kind, i.seq) for i in report.issues] == [("truncated", 4)]
    assert "head is at 5" in report.issues[0].detail


def test_detects_reorder(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 5)
    r2, r3 = item(store, 2), item(store, 3)
    store.put("audit", {**r3, "seq": 2})
    store.put("audit", {**r2, "seq": 3})
    assert issues(log) == [("reordered", 2), ("reordered", 3)]


def test_detects_head_tamper_and_missing_head(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 3)
    head = log.head(CHAIN)
    assert head is not None
    store.put("audit", {**head, "head_hash": "f" * 64})
    assert issues(log) == [("truncated", 3)]
    store.delete("audit", {"chain": CHAIN, "seq": 0})
    assert ("truncated", 0) in issues(log)


def test_detects_inserted_record(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 3)
    r3 = item(store, 3)
    body = {k: v for k, v in r3.items() if k not in ("seq", "hash")}
    body.update(pos=4, prev_hash=r3["hash"])
    store.put("audit", {**body, "seq": 4, "hash": record_hash(body)})
    assert issues(log) == [("inserted", 4)]


def test_mangled_record_is_reported_not_fatal(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 3)
    rec = item(store, 2)
    store.put("audit", {"chain": CHAIN, "seq": 2, "pos": "two", "outcome": 7, "hash": rec["hash"]})
    assert issues(log) == [("edited", 2), ("removed", 2)]


def test_concurrent_appends_make_a_gap_free_chain(store: MemoryDocumentStore) -> None:
    threads, per_thread = 10, 8
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        log = AuditLog(store, "audit", Clock(NOW), service="film")  # each thread as its own container
        barrier.wait()
        try:
            for i in range(per_thread):
                log.record(actor=f"staff:t{n}", action="film.view", resource=f"film.study:{n}.{i}")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(n,)) for n in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors
    log = AuditLog(store, "audit", Clock(NOW), service="film")
    report = log.verify(CHAIN)
    assert report.ok, report.issues
    assert report.records == report.head_seq == threads * per_thread
    assert [r.seq for r in log.records(CHAIN)] == list(range(1, threads * per_thread + 1))
    assert len({r.resource for r in log.records(CHAIN)}) == threads * per_thread


def test_gives_up_after_bounded_attempts(store: MemoryDocumentStore) -> None:
    class AlwaysContended:
        def __init__(self, inner: MemoryDocumentStore) -> None:
            self.inner = inner
            self.attempts = 0

        def get(self, table: str, key: Any) -> Any:
            return self.inner.get(table, key)

        def transact(self, ops: Any) -> None:
            self.attempts += 1
            raise TransactionCanceled([None, "ConditionalCheckFailed"])

    contended = AlwaysContended(store)
    sleeps: list[float] = []
    log = AuditLog(contended, "audit", Clock(NOW), service="film", max_attempts=5, sleep=sleeps.append)  # type: ignore[arg-type]
    with pytest.raises(AppError) as err:
        log.record(actor="system:x", action="a", resource="x:1")
    assert (err.value.status, err.value.code) == (503, "AUDIT_UNAVAILABLE")
    assert contended.attempts == 5 and len(sleeps) == 5
    assert all(0 <= s <= 0.25 for s in sleeps)


# ------------------------------------------------------------ joining the caller's transaction


def other_spec() -> TableSpec:
    return TableSpec(name="orders", partition_key="pk", key_types={"pk": "S"})


def test_record_also_commits_the_callers_operations_in_the_same_transaction() -> None:
    store = MemoryDocumentStore(table_spec("AUDIT_TABLE", "audit"), other_spec())
    log = AuditLog(store, "audit", Clock(NOW), service="film")
    rec = log.record(
        actor="partner:his-1",
        action="film.order.create",
        resource="film.order:o1",
        also=[Put("orders", {"pk": "o1", "n": 1}, Cond.absent())],
    )
    assert store.get("orders", {"pk": "o1"}) == {"pk": "o1", "n": 1}
    assert rec.pos == 1 and rec.action == "film.order.create"
    assert log.verify(CHAIN).ok


def test_record_also_failing_writes_nothing_and_is_not_retried() -> None:
    store = MemoryDocumentStore(table_spec("AUDIT_TABLE", "audit"), other_spec())
    store.put("orders", {"pk": "o1", "n": 1})
    sleeps: list[float] = []
    log = AuditLog(store, "audit", Clock(NOW), service="film", sleep=sleeps.append)
    with pytest.raises(TransactionCanceled) as err:
        log.record(
            actor="partner:his-1",
            action="film.order.create",
            resource="film.order:o1",
            also=[Put("orders", {"pk": "o1", "n": 2}, Cond.absent())],
        )
    assert err.value.reasons[0] == "ConditionalCheckFailed" and not any(err.value.reasons[1:])
    assert sleeps == []  # the caller's own condition: no retry
    assert store.get("orders", {"pk": "o1"}) == {"pk": "o1", "n": 1}
    assert (
        store.get("audit", {"chain": CHAIN, "seq": 0}) is None
        and store.get("audit", {"chain": CHAIN, "seq": 1}) is None
    )


def test_record_also_retries_when_only_the_chain_moved() -> None:
    """A concurrent append moves the head between our read and our commit: the append is rebuilt on the
    new head and the caller's operations commit with it, once."""
    store = MemoryDocumentStore(table_spec("AUDIT_TABLE", "audit"), other_spec())
    log = AuditLog(store, "audit", Clock(NOW), service="film", sleep=lambda s: None)
    rival = AuditLog(store, "audit", Clock(NOW), service="film")
    real_transact = store.transact
    calls = []

    def racing_transact(ops: Any) -> None:
        calls.append(len(ops))
        if len(calls) == 1:
            rival.record(actor="staff:s1", action="film.view", resource="film.study:1")
        real_transact(ops)

    store.transact = racing_transact  # type: ignore[method-assign]
    rec = log.record(
        actor="partner:his-1",
        action="film.order.create",
        resource="film.order:o1",
        also=[Put("orders", {"pk": "o1"}, Cond.absent())],
    )
    store.transact = real_transact  # type: ignore[method-assign]
    assert calls[0] == 3 and rec.pos == 2
    assert store.get("orders", {"pk": "o1"}) == {"pk": "o1"}
    report = log.verify(CHAIN)
    assert report.ok and report.head_seq == 2


def test_prepare_gives_the_operations_and_writes_nothing(log: AuditLog, store: MemoryDocumentStore) -> None:
    append(log, 1)
    prepared = log.prepare(actor="staff:d1", action="film.view", resource="film.study:9", details={"n": 1})
    assert store.get("audit", {"chain": CHAIN, "seq": 2}) is None
    record_put, head_put = prepared.operations
    assert record_put.item["seq"] == 2 and record_put.item["prev_hash"] == item(store, 1)["hash"]
    assert head_put.item["head_seq"] == 2 and head_put.item["head_hash"] == prepared.record.hash
    assert prepared.record.computed_hash() == prepared.record.hash
    store.transact(list(prepared.operations))
    assert log.verify(CHAIN).ok and [r.resource for r in log.records(CHAIN)][-1] == "film.study:9"


def test_prepare_is_refused_on_a_moved_chain_and_says_so(log: AuditLog, store: MemoryDocumentStore) -> None:
    stale = log.prepare(actor="staff:d1", action="film.view", resource="film.study:1")
    append(log, 1)  # someone else appends first
    mine = Put("audit", {"chain": "other#x", "seq": 5}, None)
    with pytest.raises(TransactionCanceled) as err:
        store.transact([mine, *stale.operations])
    assert stale.chain_moved(err.value, at=1) and stale.chain_moved(err.value, at=0) is not False
    fresh = log.prepare(actor="staff:d1", action="film.view", resource="film.study:1")
    store.transact([mine, *fresh.operations])
    assert log.verify(CHAIN).ok and log.verify(CHAIN).head_seq == 2


def test_prepare_validates_like_record(log: AuditLog) -> None:
    with pytest.raises(ValueError):
        log.prepare(actor="nobody", action="a", resource="x:1")
    with pytest.raises(ValueError):
        log.prepare(actor="staff:d1", action="a", resource="x:1", patient_ref="110101199003074518")


class FirstAttemptLoses:
    """A store whose first transaction loses the race; records which chain each attempt wrote to."""

    def __init__(self) -> None:
        self.inner = MemoryDocumentStore(table_spec("AUDIT_TABLE", "audit"))
        self.tried: list[str] = []

    def get(self, table: str, key: Any) -> Any:
        return self.inner.get(table, key)

    def transact(self, ops: Any) -> None:
        self.tried.append(ops[-1].item["chain"])
        if len(self.tried) == 1:
            raise TransactionCanceled([None, "ConditionalCheckFailed"])
        self.inner.transact(ops)


def test_a_loser_moves_to_another_shard() -> None:
    """Under contention the retry goes to a different chain, so one hot chain cannot exhaust the attempts."""
    store = FirstAttemptLoses()
    log = AuditLog(store, "audit", Clock(NOW), service="rx", shards=4, sleep=lambda s: None)  # type: ignore[arg-type]
    rec = log.record(actor="system:x", action="a", resource="x:1")
    assert len(store.tried) == 2 and store.tried[0] != store.tried[1] and rec.chain == store.tried[1]
    verifier = AuditLog(store.inner, "audit", Clock(NOW), service="rx")
    assert [r.ok for r in verifier.verify_all()] == [True]


def test_a_pinned_chain_is_retried_in_place() -> None:
    store = FirstAttemptLoses()
    log = AuditLog(store, "audit", Clock(NOW), service="rx", shards=4, sleep=lambda s: None)  # type: ignore[arg-type]
    log.record(actor="system:x", action="a", resource="x:1", chain="rx#2026-01-01#s2")
    assert store.tried == ["rx#2026-01-01#s2", "rx#2026-01-01#s2"]
