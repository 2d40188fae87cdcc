"""Storage of consultations through the documents port. ConsultTable (pk, sk)::

    pk "case#<id>"              sk "case"                    the case (status, version, participants ...)
    pk "case#<id>"              sk "att#<attachment_id>"     one attachment (pending | clean | rejected)
    pk "case#<id>"              sk "report#<org>/<code>#<v>" one version of a doctor's report (v zero-padded)
    pk "room#<room>"            sk "room"                    which case a video room belongs to (webhooks)
    pk "idx#<org>/<code>#<box>" sk "<start>#<id>"            a doctor's record list row (box mine | joined)

    index by_lane  lane (S) = "<org>/<code>#<box>#<status>", sk       the same rows by state (the tabs)
    index by_due   due (S) = "open", slot_end (N)                      sparse: cases the sweep may move

Every transition writes the case conditioned on its version and status, with its list rows and outbox
rows in the same transaction (``save``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bianjie.kit.documents.port import (
    Cond,
    ConditionFailed,
    Delete,
    DocumentStore,
    KeyCond,
    Operation,
    Page,
    Put,
    TransactionCanceled,
)
from bianjie.kit.errors import Conflict, NotFound

OPEN = "open"
DUE_STATES = ("scheduled", "in_progress")


def who(org: str, code: str) -> str:
    return f"{org}/{code}"


def list_rows(item: dict[str, Any]) -> list[dict[str, Any]]:
    """The record-list rows of a case: the applicant's ("mine"), and each invitee's ("joined") once the
    case was submitted at least once."""
    sk = f"{item['start']}#{item['consultation_id']}"
    base = {
        "sk": sk,
        "consultation_id": item["consultation_id"],
        "status": item["status"],
        "start": item["start"],
        "purpose": item["purpose"],
        "patient_masked": item["patient_masked"],
        "applicant": who(item["applicant"]["org"], item["applicant"]["doctor_code"]),
        "participants": len(item["participants"]),
    }
    holders = [(who(item["applicant"]["org"], item["applicant"]["doctor_code"]), "mine")]
    if item.get("submitted"):
        holders += [(who(p["org"], p["doctor_code"]), "joined") for p in item["participants"]]
    return [{**base, "pk": f"idx#{h}#{box}", "lane": f"{h}#{box}#{item['status']}"} for h, box in holders]


@dataclass
class ConsultRepository:
    store: DocumentStore
    table: str

    def get(self, consultation_id: str) -> dict[str, Any] | None:
        return self.store.get(self.table, {"pk": f"case#{consultation_id}", "sk": "case"})

    def require(self, consultation_id: str) -> dict[str, Any]:
        item = self.get(consultation_id)
        if item is None:
            raise NotFound("没有找到这次会诊", code="CONSULT_NOT_FOUND")
        return item

    def _case_row(self, item: dict[str, Any]) -> dict[str, Any]:
        row = {**item, "pk": f"case#{item['consultation_id']}", "sk": "case"}
        if item["status"] in DUE_STATES:
            row["due"] = OPEN
        else:
            row.pop("due", None)
        return row

    def create(self, item: dict[str, Any], also: Sequence[Operation] = ()) -> dict[str, Any]:
        new = self._case_row({**item, "version": 1})
        ops: list[Operation] = [Put(self.table, new, Cond.absent())]
        ops += [Put(self.table, r) for r in list_rows(new)]
        ops += list(also)
        try:
            self.store.transact(ops)
        except TransactionCanceled as exc:
            if exc.reasons and exc.reasons[0]:
                raise Conflict("会诊编号已存在", code="CONSULT_EXISTS") from exc
            raise
        return new

    def save(self, item: dict[str, Any], changes: dict[str, Any], also: Sequence[Operation] = ()) -> dict[str, Any]:
        """Write ``item`` + ``changes`` if nobody moved it since it was read (version and status)."""
        version = int(item["version"])
        new = self._case_row({**item, **changes, "version": version + 1})
        ops: list[Operation] = [Put(self.table, new, Cond.eq("version", version) & Cond.eq("status", item["status"]))]
        # list rows keep their keys (start never changes): each is overwritten, new holders added, the
        # rows of invitees no longer on the case removed
        rows = list_rows(new)
        ops += [Put(self.table, r) for r in rows]
        kept = {(r["pk"], r["sk"]) for r in rows}
        ops += [
            Delete(self.table, {"pk": r["pk"], "sk": r["sk"]})
            for r in list_rows(item)
            if (r["pk"], r["sk"]) not in kept
        ]
        ops += list(also)
        try:
            self.store.transact(ops)
        except TransactionCanceled as exc:
            if any(exc.reasons):  # the case moved, or a row written with it (a report, an outbox row) exists
                raise Conflict("会诊已被他人更新，请刷新后重试", code="CONSULT_CONCURRENT_UPDATE") from exc
            raise
        return new

    # -- children
    def put_child(self, consultation_id: str, sk: str, body: dict[str, Any], condition: Cond | None = None) -> Put:
        return Put(self.table, {**body, "pk": f"case#{consultation_id}", "sk": sk}, condition)

    def write(self, op: Put) -> None:
        try:
            self.store.put(op.table, op.item, condition=op.condition)
        except ConditionFailed as exc:
            raise Conflict("记录已被他人更新，请刷新后重试", code="CONSULT_CONCURRENT_UPDATE") from exc

    def children(self, consultation_id: str, prefix: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.store.query(
                self.table, KeyCond.of("pk", f"case#{consultation_id}").begins_with("sk", prefix), cursor=cursor
            )
            out.extend(page.items)
            cursor = page.cursor
            if cursor is None:
                return out

    def attachment(self, consultation_id: str, attachment_id: str) -> dict[str, Any] | None:
        return self.store.get(self.table, {"pk": f"case#{consultation_id}", "sk": f"att#{attachment_id}"})

    # -- rooms
    def room_row(self, room: str, consultation_id: str) -> Put:
        return Put(self.table, {"pk": f"room#{room}", "sk": "room", "consultation_id": consultation_id}, Cond.absent())

    def case_of_room(self, room: str) -> str | None:
        row = self.store.get(self.table, {"pk": f"room#{room}", "sk": "room"})
        return None if row is None else str(row["consultation_id"])

    # -- lists
    def listing(
        self, holder: str, box: str, status: str | None, low: str, high: str, limit: int, cursor: str | None
    ) -> Page:
        if status:
            key = KeyCond.of("lane", f"{holder}#{box}#{status}").between("sk", low, high)
            return self.store.query(self.table, key, index="by_lane", limit=limit, cursor=cursor, descending=True)
        key = KeyCond.of("pk", f"idx#{holder}#{box}").between("sk", low, high)
        return self.store.query(self.table, key, limit=limit, cursor=cursor, descending=True)

    def count(self, holder: str, box: str, status: str) -> int:
        total, cursor = 0, None
        while True:
            page = self.store.query(
                self.table, KeyCond.of("lane", f"{holder}#{box}#{status}"), index="by_lane", limit=500, cursor=cursor
            )
            total += len(page.items)
            cursor = page.cursor
            if cursor is None:
                return total

    def due(self, until: float, page_size: int = 200) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.store.query(
                self.table,
                KeyCond.of("due", OPEN).le("slot_end", int(until)),
                index="by_due",
                limit=page_size,
                cursor=cursor,
            )
            yield from page.items
            cursor = page.cursor
            if cursor is None:
                return
