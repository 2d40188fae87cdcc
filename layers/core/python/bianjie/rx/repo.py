"""Storage of prescriptions and circulation authorizations through the documents port.

RxTable (one item per prescription)::

    partition key  rx_id (S)                     = the center's hi_rxno
    index by_hospital   hospital (S), created_at (S)
    index by_patient    patient_ref (S), created_at (S)     patient_ref = blind index of the ID number
    index by_due        due (S) = "open", valid_end (N)     sparse: only prescriptions that can still
                                                             expire, reopen or need an expiring notice

Every change is a read-modify-write conditioned on ``version`` (optimistic concurrency): two pharmacies
racing to dispense one prescription cannot both win.

RxAuthorizationsTable: partition key ``authorization_id`` (S), TTL ``expires_at``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore, KeyCond, Page
from bianjie.kit.errors import Conflict, NotFound
from bianjie.rx.states import Lifecycle

OPEN = "open"
LIFECYCLE_FIELDS = (
    "status",
    "valid_end",
    "circulation",
    "reusable",
    "max_uses",
    "min_interval_s",
    "uses",
    "cycle",
    "channel",
    "holder",
    "hold_until",
    "last_used_at",
)


def lifecycle_of(item: dict[str, Any]) -> Lifecycle:
    return Lifecycle(**{f: item[f] for f in LIFECYCLE_FIELDS if f in item})


def with_lifecycle(item: dict[str, Any], lc: Lifecycle) -> dict[str, Any]:
    out = dict(item)
    for f in LIFECYCLE_FIELDS:
        out[f] = getattr(lc, f)
    if lc.terminal or lc.finished:
        out.pop("due", None)
    else:
        out["due"] = OPEN
    return out


@dataclass
class RxRepository:
    store: DocumentStore
    table: str

    def get(self, rx_id: str) -> dict[str, Any] | None:
        return self.store.get(self.table, {"rx_id": rx_id})

    def require(self, rx_id: str) -> dict[str, Any]:
        item = self.get(rx_id)
        if item is None:
            raise NotFound("no such prescription", code="RX_NOT_FOUND")
        return item

    def create(self, item: dict[str, Any]) -> None:
        try:
            self.store.put(self.table, {**item, "version": 1}, condition=Cond.absent())
        except ConditionFailed as exc:
            raise Conflict("a prescription with this number exists", code="RX_EXISTS") from exc

    def replace(self, item: dict[str, Any]) -> dict[str, Any]:
        """Write ``item`` if nobody changed it since it was read (its ``version``); returns what was written."""
        version = int(item["version"])
        new = {**item, "version": version + 1}
        self.store.put(self.table, new, condition=Cond.eq("version", version))
        return new

    def by_hospital(self, hospital: str, limit: int, cursor: str | None) -> Page:
        return self.store.query(
            self.table,
            KeyCond.of("hospital", hospital),
            index="by_hospital",
            limit=limit,
            cursor=cursor,
            descending=True,
        )

    def by_patient(self, patient_ref: str, limit: int = 100, cursor: str | None = None) -> Page:
        return self.store.query(
            self.table,
            KeyCond.of("patient_ref", patient_ref),
            index="by_patient",
            limit=limit,
            cursor=cursor,
            descending=True,
        )

    def due_before(self, until: float, page_size: int = 200) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.store.query(
                self.table,
                KeyCond.of("due", OPEN).le("valid_end", int(until)),
                index="by_due",
                limit=page_size,
                cursor=cursor,
            )
            yield from page.items
            cursor = page.cursor
            if cursor is None:
                return

    def open_items(self, page_size: int = 200) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.store.query(self.table, KeyCond.of("due", OPEN), index="by_due", limit=page_size, cursor=cursor)
            yield from page.items
            cursor = page.cursor
            if cursor is None:
                return


@dataclass
class AuthorizationRepository:
    store: DocumentStore
    table: str

    def put(self, item: dict[str, Any]) -> None:
        self.store.put(self.table, item, condition=Cond.absent())

    def get(self, authorization_id: str) -> dict[str, Any] | None:
        return self.store.get(self.table, {"authorization_id": authorization_id})


__all__ = ["AuthorizationRepository", "ConditionFailed", "RxRepository"]
