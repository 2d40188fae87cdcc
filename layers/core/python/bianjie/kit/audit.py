"""Append-only audit log of access to patient data, records chained by SM3 (tamper-evident).

Table::

    partition key  chain (S)   "<service>#<UTC date>" (or "<service>#<date>#s<n>" with shards > 1)
    sort key       seq (N)     0 = the chain's head item, 1, 2, 3 ... = records
    index by_kind  partition kind (S), sort chain (S)   -- only head items carry kind="head"

Record item: ``chain, seq, pos, ts, actor, action, resource, patient_ref, source_ip, request_id,
outcome, details, prev_hash, hash`` where ``hash = SM3(canonical JSON of every field except seq and
hash)`` in lower hex; ``prev_hash`` is the previous record's hash (64 zeros for the first), and
``pos`` is the sequence number the record was written at (``seq`` is only the storage key, so a record
moved to another slot is seen as *reordered* rather than merely edited). Canonical JSON: keys sorted,
no whitespace, UTF-8 (not \\u-escaped).

Head item ``{chain, seq: 0, kind: "head", head_seq, head_hash, service, updated_at}``.
An append reads the head and writes the record and the new head in ONE transaction conditioned on the
head still being at ``head_seq``; losers retry with jittered backoff. Chains are per service and UTC
day so services do not contend with each other and a day's chain can be archived as a unit.

A writer remembers the head it last wrote on each chain and appends after it without reading, the
condition then naming the head's hash as well as its sequence: when someone else has appended since,
the condition fails, the memory is dropped and the append reads the head as above. Each thread keeps to
one shard while its appends succeed and moves to another when it loses or finds its memory stale, so
concurrent and alternating writers (Lambda containers, a server's threads, the functions of one service
taking turns on a record) settle on shards of their own and most appends are one call, not two.

An append can join the caller's own write: ``record(..., also=[Put(...), ...])`` commits the caller's
operations in the same transaction (the access and its record exist together or not at all, and one
round trip is saved); ``prepare(...)`` returns the two operations of an append for a caller that builds
the transaction itself. Either way the chain rules above are unchanged.

What verification proves: a record edited in place, a record removed, records reordered, and a
chain cut short behind its head are all reported. Someone able to rewrite the head *and* every later
record consistently is not caught by the chain alone; export head hashes off-line (daily) to anchor
them if that threat matters.
"""

from __future__ import annotations

import ipaddress
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from bianjie.kit.actor import Actor
from bianjie.kit.crypto import sm3
from bianjie.kit.documents.port import (
    Cond,
    DocumentStore,
    KeyCond,
    Operation,
    Put,
    TransactionCanceled,
)
from bianjie.kit.errors import Unavailable
from bianjie.kit.logging import redact

GENESIS = "0" * 64
HEADS_REMEMBERED = 1024  # chains whose head a writer remembers (a day has services x shards)
HEAD_SEQ = 0
INDEX_BY_KIND = "by_kind"
ACTOR_KINDS = ("partner", "staff", "companion", "patient", "system")
Outcome = Literal["success", "denied", "failure"]
IssueKind = Literal["edited", "removed", "reordered", "truncated", "inserted"]

_ACTOR_RE = re.compile(r"(partner|staff|companion|patient|system):[^\s]{1,200}")
_RESOURCE_RE = re.compile(r"[a-z][a-z0-9_.-]{0,63}:[^\s]{0,300}")
_SERVICE_RE = re.compile(r"[a-z][a-z0-9_-]{0,31}")
# patient_ref must be a blind index or a pseudonymous id: refuse what looks like a clear identifier
_CLEAR_ID_RE = re.compile(r"(?:\d{17}[\dXx]|\d{15}|\+?(?:86)?1[3-9]\d{9})")
_HASHED_FIELDS = (
    "chain",
    "pos",
    "ts",
    "actor",
    "action",
    "resource",
    "patient_ref",
    "source_ip",
    "request_id",
    "outcome",
    "details",
    "prev_hash",
)


class AuditRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    chain: str
    seq: int
    pos: int
    ts: str
    actor: str
    action: str
    resource: str
    patient_ref: str | None = None
    source_ip: str | None = None
    request_id: str | None = None
    outcome: Outcome = "success"
    details: dict[str, Any] = {}
    prev_hash: str
    hash: str

    def hashed_body(self) -> dict[str, Any]:
        data = self.model_dump()
        return {k: data[k] for k in _HASHED_FIELDS}

    def computed_hash(self) -> str:
        return record_hash(self.hashed_body())


@dataclass(frozen=True)
class PreparedAppend:
    """One append as operations for the caller's transaction (``AuditLog.prepare``).

    Commit ``operations`` (the record put and the head put, in that order) together with your own;
    the record exists once they commit. If the transaction is canceled and ``chain_moved`` says these
    two operations failed, another writer appended first: prepare again (the record must take the next
    position) and retry. Nothing is written until you commit.
    """

    record: AuditRecord
    operations: tuple[Put, Put]

    def chain_moved(self, exc: TransactionCanceled, at: int) -> bool:
        """True when the append's operations, at positions ``at`` and ``at + 1``, caused ``exc``."""
        return any(exc.reasons[at : at + 2])


class AuditIssue(BaseModel):
    kind: IssueKind
    seq: int
    detail: str


class ChainReport(BaseModel):
    chain: str
    records: int
    head_seq: int | None
    issues: list[AuditIssue]

    @property
    def ok(self) -> bool:
        return not self.issues


def jsonlike(value: Any) -> Any:
    """The value as every document store gives it back (integral floats become ints, tuples lists),
    so the hash computed at write time is the one recomputed at verification."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(k): jsonlike(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonlike(v) for v in value]
    return str(value)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def record_hash(body: Mapping[str, Any]) -> str:
    return sm3(canonical_json(dict(body))).hex()


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


class AuditLog:
    def __init__(
        self,
        store: DocumentStore,
        table: str,
        clock: Callable[[], float] = time.time,
        *,
        service: str,
        shards: int = 1,
        max_attempts: int = 30,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not _SERVICE_RE.fullmatch(service):
            raise ValueError("service: a short lower-case name such as 'film'")
        self._store = store
        self._table = table
        self._clock = clock
        self._service = service
        self._shards = max(1, shards)
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._home = threading.local()  # the shard this thread appends to while it does not lose
        self._heads: dict[str, tuple[int, str]] = {}  # chain -> (head_seq, head_hash) as last written here
        self._heads_lock = threading.Lock()

    def chain_for(self, ts: float, shard: int = 0) -> str:
        name = f"{self._service}#{_utc(ts).date().isoformat()}"
        return f"{name}#s{shard}" if self._shards > 1 else name

    def record(
        self,
        *,
        actor: Actor | str,
        action: str,
        resource: str,
        patient_ref: str | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
        outcome: Outcome = "success",
        details: Mapping[str, Any] | None = None,
        chain: str | None = None,
        also: Sequence[Operation] = (),
    ) -> AuditRecord:
        """Append one record. ``actor`` is the ``bianjie.kit.actor.Actor`` (its ``audit_name``, source
        address and request id are written), or already "kind:id" (partner:app-1, patient:p9, system:x);
        ``resource`` is "type:id" (film.study:1.2.840...). ``details`` must not hold sensitive values:
        deny-listed keys are blanked as a safety net.

        ``also``: the caller's own operations (on any table, at most 23), committed in the SAME
        transaction as the record, listed first. Only a moved chain is retried; when one of the
        caller's operations fails, ``TransactionCanceled`` is raised as the store raised it (its first
        ``len(also)`` reasons are the caller's) and nothing is written, the record included.

        Raises 503 AUDIT_UNAVAILABLE when the chain stays contended after ``max_attempts``; callers
        must not serve the patient data then (the access would go unrecorded).
        """
        if isinstance(actor, Actor):
            source_ip, request_id = source_ip or actor.source_ip, request_id or actor.request_id
            actor = actor.audit_name
        fields = self._fields(actor, action, resource, patient_ref, source_ip, request_id, outcome, details)
        now = self._clock()
        pinned = bool(chain)
        shard = getattr(self._home, "shard", None)
        if shard is None or shard >= self._shards:
            shard = random.randrange(self._shards)
        extra = list(also)
        delay = 0.005
        for _ in range(self._max_attempts):
            name = chain or self.chain_for(now, shard)
            with self._heads_lock:
                known = self._heads.get(name)
            append = self._prepare(fields, name, now, known)
            try:
                self._store.transact([*extra, *append.operations])
            except TransactionCanceled as exc:
                if any(exc.reasons[: len(extra)]):
                    raise  # the caller's own condition failed: not ours to retry
                with self._heads_lock:
                    self._heads.pop(name, None)
                if known is not None:
                    # what this writer remembered was stale: someone else appends to this shard too. Two
                    # writers sharing a shard make every append stale (three calls instead of one), so
                    # this one moves to another shard and reads its head, no back-off yet
                    if not pinned and self._shards > 1:
                        shard = (shard + random.randrange(1, self._shards)) % self._shards
                    continue
                # another writer took this seq. A loser that stays on its chain keeps meeting the winner's
                # next append under load, so it moves to another shard (any shard is as good), then backs
                # off with full jitter and re-reads the head
                if not pinned and self._shards > 1:
                    shard = (shard + random.randrange(1, self._shards)) % self._shards
                self._sleep(random.uniform(0, delay))
                delay = min(delay * 2, 0.25)
                continue
            if not pinned:
                self._home.shard = shard
            with self._heads_lock:
                if len(self._heads) >= HEADS_REMEMBERED:
                    self._heads.clear()
                self._heads[name] = (append.record.pos, append.record.hash)
            return append.record
        raise Unavailable("the audit log is busy; retry", code="AUDIT_UNAVAILABLE")

    def prepare(
        self,
        *,
        actor: str,
        action: str,
        resource: str,
        patient_ref: str | None = None,
        source_ip: str | None = None,
        request_id: str | None = None,
        outcome: Outcome = "success",
        details: Mapping[str, Any] | None = None,
        chain: str | None = None,
    ) -> PreparedAppend:
        """The operations that append this record after the chain's current head, for a transaction
        the caller builds and commits itself (see ``PreparedAppend``). Same arguments and checks as
        ``record``; reads the head, writes nothing."""
        fields = self._fields(actor, action, resource, patient_ref, source_ip, request_id, outcome, details)
        now = self._clock()
        return self._prepare(fields, chain or self.chain_for(now, random.randrange(self._shards)), now)

    def _fields(
        self,
        actor: str,
        action: str,
        resource: str,
        patient_ref: str | None,
        source_ip: str | None,
        request_id: str | None,
        outcome: Outcome,
        details: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        if not _ACTOR_RE.fullmatch(actor):
            raise ValueError(f"actor must be '<{'|'.join(ACTOR_KINDS)}>:<id>'")
        if not _RESOURCE_RE.fullmatch(resource):
            raise ValueError("resource must be '<type>:<id>'")
        if not action or len(action) > 100:
            raise ValueError("action: 1-100 characters")
        if patient_ref is not None and _CLEAR_ID_RE.fullmatch(patient_ref.strip()):
            raise ValueError("patient_ref looks like a clear ID or phone number; pass a blind index")
        source_ip = source_ip or None  # the local gateway may not know the address
        if source_ip is not None:
            ipaddress.ip_address(source_ip)  # ValueError on garbage: audit fields must be trustworthy
        return {
            "actor": actor,
            "action": action,
            "resource": resource,
            "patient_ref": patient_ref,
            "source_ip": source_ip,
            "request_id": request_id,
            "outcome": outcome,
            "details": jsonlike(redact(dict(details or {}))),
        }

    def _prepare(
        self, fields: Mapping[str, Any], chain: str, now: float, known: tuple[int, str] | None = None
    ) -> PreparedAppend:
        ts = _utc(now).isoformat(timespec="microseconds").replace("+00:00", "Z")
        if known is not None:
            # the head this writer wrote last: its hash in the condition too, so a chain that was reset
            # and has grown back to the same seq since is not taken for it
            head_seq, head_hash = known
            condition = Cond.eq("head_seq", head_seq) & Cond.eq("head_hash", head_hash)
        elif (head := self._store.get(self._table, {"chain": chain, "seq": HEAD_SEQ})) is None:
            head_seq, head_hash, condition = 0, GENESIS, Cond.absent()
        else:
            head_seq, head_hash = int(head["head_seq"]), str(head["head_hash"])
            condition = Cond.eq("head_seq", head_seq)
        seq = head_seq + 1
        body = {"chain": chain, "ts": ts, **fields, "pos": seq, "prev_hash": head_hash}
        digest = record_hash(body)
        record_item = {**body, "seq": seq, "hash": digest}
        head_item = {
            "chain": chain,
            "seq": HEAD_SEQ,
            "kind": "head",
            "service": self._service,
            "head_seq": seq,
            "head_hash": digest,
            "updated_at": ts,
        }
        return PreparedAppend(
            AuditRecord.model_validate(record_item),
            (Put(self._table, record_item, Cond.absent()), Put(self._table, head_item, condition)),
        )

    # ------------------------------------------------------------ reading and verification

    def head(self, chain: str) -> dict[str, Any] | None:
        return self._store.get(self._table, {"chain": chain, "seq": HEAD_SEQ})

    def _items(self, chain: str, page_size: int = 500) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = self._store.query(
                self._table, KeyCond.of("chain", chain).ge("seq", 1), limit=page_size, cursor=cursor
            )
            yield from page.items
            cursor = page.cursor
            if cursor is None:
                return

    def records(self, chain: str) -> Iterator[AuditRecord]:
        for item in self._items(chain):
            yield AuditRecord.model_validate(item)

    def chains(self, service: str | None = None) -> list[str]:
        """Every chain in the table (of one service if given), from the head items."""
        names: list[str] = []
        cursor: str | None = None
        key = KeyCond.of("kind", "head")
        if service is not None:
            key = key.begins_with("chain", f"{service}#")
        while True:
            page = self._store.query(self._table, key, index=INDEX_BY_KIND, limit=500, cursor=cursor)
            names.extend(str(item["chain"]) for item in page.items)
            cursor = page.cursor
            if cursor is None:
                return names

    def verify(self, chain: str) -> ChainReport:
        """Walk a chain in seq order and report every inconsistency (empty ``issues`` = intact).

        Works on raw items, so a record mangled beyond the model's shape is reported, not fatal.
        """
        head = self.head(chain)
        items = list(self._items(chain))
        issues: list[AuditIssue] = []
        by_pos: dict[int, dict[str, Any]] = {}
        intact: list[dict[str, Any]] = []

        for item in items:
            seq = int(item["seq"])
            pos = item.get("pos")
            if not isinstance(pos, int) or isinstance(pos, bool):
                issues.append(AuditIssue(kind="edited", seq=seq, detail="position field damaged"))
                continue
            body = {k: item.get(k, {} if k == "details" else None) for k in _HASHED_FIELDS}
            if item.get("hash") != record_hash(body):
                issues.append(AuditIssue(kind="edited", seq=seq, detail="content does not match its hash"))
            else:
                intact.append(item)
            if pos != seq:
                issues.append(AuditIssue(kind="reordered", seq=seq, detail=f"record written at {pos} sits at {seq}"))
            by_pos.setdefault(pos, item)

        # positions the records claim; any position missing below the last one was removed
        last_pos = max(by_pos, default=0)
        for pos in range(1, last_pos + 1):
            if pos not in by_pos:
                issues.append(AuditIssue(kind="removed", seq=pos, detail="record missing"))

        # each intact record must point at the hash of the record written just before it
        for item in intact:
            pos = item["pos"]
            expected: str | None
            if pos == 1:
                expected = GENESIS
            else:
                prev = by_pos.get(pos - 1)
                if prev is None:
                    continue  # reported as removed above
                expected = prev.get("hash")
            if item.get("prev_hash") != expected:
                issues.append(
                    AuditIssue(
                        kind="removed",
                        seq=int(item["seq"]),
                        detail="prev_hash does not match the preceding record (replaced or removed)",
                    )
                )

        head_seq: int | None = None
        if head is None:
            if items:
                issues.append(AuditIssue(kind="truncated", seq=0, detail="head item missing"))
        else:
            head_seq, head_hash = int(head["head_seq"]), str(head["head_hash"])
            if last_pos < head_seq:
                issues.append(
                    AuditIssue(
                        kind="truncated",
                        seq=last_pos + 1,
                        detail=f"head is at {head_seq} but the last record is {last_pos}",
                    )
                )
            elif last_pos > head_seq:
                for pos in range(head_seq + 1, last_pos + 1):
                    if pos in by_pos:
                        issues.append(AuditIssue(kind="inserted", seq=pos, detail="record beyond the head"))
            elif head_seq and by_pos[head_seq].get("hash") != head_hash:
                issues.append(AuditIssue(kind="truncated", seq=head_seq, detail="last record does not match the head"))

        issues.sort(key=lambda i: (i.seq, i.kind))
        return ChainReport(chain=chain, records=len(items), head_seq=head_seq, issues=issues)

    def verify_all(self, service: str | None = None) -> list[ChainReport]:
        """Verify every chain in the table (all services unless ``service`` is given)."""
        return [self.verify(chain) for chain in self.chains(service)]
