"""Guide's tables, through the documents port (DynamoDB or PostgreSQL).

GuideVisitsTable (pk, sk)
    <visit_id> / view                    the folded view, its owner (partner app) and a version
    <visit_id> / ev#<source>#<event_id>  each event once, contact details stripped
    event#<source>#<event_id> / claim    the event-id claim: request hash, visit, planned yet?
    GSIs by_patient (patient_id, appointment_at) and by_day (appt_day, appointment_at) on views only
GuideNotificationsTable (pk = dedup key "kind#visit#step")
    one record per notification with its status history; GSIs by_visit, by_deferred (sparse)
GuideOutboxTable (pk = message_id)
    what the channel stand-ins were asked to send; GSIs by_visit, by_day; kept 30 days
GuidePatientsTable (pk, sk)
    <patient_id> / contact | prefs | quota#<template_id>;  smsrate#<phone index> / h#.. d#.. (TTL)
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, overload

from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore, KeyCond, Put

VIEW = "view"


@dataclass(frozen=True)
class Tables:
    visits: str
    notifications: str
    outbox: str
    patients: str


class LimitReached(Exception):
    pass


def _dumps(value: dict[str, Any]) -> str:
    # Views and events are opaque to the database (only the indexed attributes are read there); one
    # string attribute costs far less to (de)serialise than a deep map on DynamoDB's wire format.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@overload
def _decoded(item: dict[str, Any]) -> dict[str, Any]: ...
@overload
def _decoded(item: None) -> None: ...
@overload
def _decoded(item: dict[str, Any] | None) -> dict[str, Any] | None: ...
def _decoded(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is not None and isinstance(item.get("view"), str):
        item = {**item, "view": json.loads(item["view"])}
    return item


class GuideStore:
    def __init__(self, documents: DocumentStore, tables: Tables) -> None:
        self.db = documents
        self.t = tables

    # -- events and views -------------------------------------------------------------------------

    def claim_event(
        self,
        source: str,
        event_id: str,
        visit_id: str,
        body_hash: str,
        body: dict[str, Any],
        now: float,
        *,
        planned: bool = False,
    ) -> tuple[str, dict[str, Any] | None]:
        """("new", None) when first seen; else ("seen", the existing claim). ``planned`` for events that
        never call for a message, so their claim is final at once."""
        claim = {
            "pk": f"event#{source}#{event_id}",
            "sk": "claim",
            "visit_id": visit_id,
            "hash": body_hash,
            "planned": planned,
            "received_at": int(now),
        }
        try:
            self.db.put(self.t.visits, claim, condition=Cond.absent())
        except ConditionFailed:
            existing = self.db.get(self.t.visits, {"pk": claim["pk"], "sk": "claim"})
            if existing is None:  # claimed and released between our put and get; cannot happen without TTL
                return self.claim_event(source, event_id, visit_id, body_hash, body, now, planned=planned)
            return "seen", existing
        self.store_event(source, event_id, visit_id, body, now)
        return "new", None

    def store_event(self, source: str, event_id: str, visit_id: str, body: dict[str, Any], now: float) -> None:
        """The timeline item, written after its claim (two single writes, no transaction: the caller
        rewrites it whenever it meets the claim again, so a stop between the two heals on retry)."""
        self.db.put(
            self.t.visits,
            {"pk": visit_id, "sk": f"ev#{source}#{event_id}", "event": _dumps(body), "received_at": int(now)},
        )

    def mark_planned(self, source: str, event_id: str, visit_id: str, body_hash: str, now: float) -> None:
        self.db.put(
            self.t.visits,
            {
                "pk": f"event#{source}#{event_id}",
                "sk": "claim",
                "visit_id": visit_id,
                "hash": body_hash,
                "planned": True,
                "received_at": int(now),
            },
        )

    def events(self, visit_id: str) -> list[dict[str, Any]]:
        return [
            json.loads(i["event"])
            for i in self._all(self.t.visits, KeyCond.of("pk", visit_id).begins_with("sk", "ev#"))
        ]

    def view_item(self, visit_id: str) -> dict[str, Any] | None:
        return _decoded(self.db.get(self.t.visits, {"pk": visit_id, "sk": VIEW}))

    def put_view(self, visit_id: str, owner: str, view: dict[str, Any], expected_version: int) -> None:
        """Raises ConditionFailed when another writer moved the view since ``expected_version``."""
        op = self.view_put(visit_id, owner, view, expected_version)
        self.db.put(op.table, op.item, condition=op.condition)

    def view_put(self, visit_id: str, owner: str, view: dict[str, Any], expected_version: int) -> Put:
        """``put_view`` as an operation, to commit in one transaction with guide's outbox rows."""
        item: dict[str, Any] = {
            "pk": visit_id,
            "sk": VIEW,
            "owner": owner,
            "version": expected_version + 1,
            "view": _dumps(view),
        }
        if view.get("patient_id"):
            item["patient_id"] = view["patient_id"]
        if view.get("appt_utc"):
            # UTC strings sort in time order whatever offset the hospital sent
            item["appointment_at"] = view["appt_utc"]
            item["appt_day"] = view["appt_day"]
        cond = Cond.absent() if expected_version == 0 else Cond.eq("version", expected_version)
        return Put(self.t.visits, item, cond)

    def views_of_patient(self, patient_id: str, limit: int = 20) -> list[dict[str, Any]]:
        page = self.db.query(
            self.t.visits, KeyCond.of("patient_id", patient_id), index="by_patient", limit=limit, descending=True
        )
        return [_decoded(i) for i in page.items]

    def views_on_day(self, day: str) -> Iterator[dict[str, Any]]:
        for item in self._all(self.t.visits, KeyCond.of("appt_day", day), index="by_day"):
            yield _decoded(item)

    # -- notifications ----------------------------------------------------------------------------

    def create_notification(self, record: dict[str, Any]) -> bool:
        try:
            self.db.put(self.t.notifications, {**record, "version": 1}, condition=Cond.absent())
            return True
        except ConditionFailed:
            return False

    def notification(self, key: str) -> dict[str, Any] | None:
        return self.db.get(self.t.notifications, {"pk": key})

    def update_notification(self, record: dict[str, Any]) -> dict[str, Any]:
        """Optimistic write; raises ConditionFailed when the record moved."""
        version = int(record["version"])
        new = {**record, "version": version + 1}
        if new.get("status") != "deferred":
            new.pop("deferred", None)
        self.db.put(self.t.notifications, new, condition=Cond.eq("version", version))
        return new

    def notifications_of_visit(self, visit_id: str) -> list[dict[str, Any]]:
        return list(self._all(self.t.notifications, KeyCond.of("visit_id", visit_id), index="by_visit"))

    def deferred_due(self, now_iso: str) -> Iterator[dict[str, Any]]:
        yield from self._all(
            self.t.notifications, KeyCond.of("deferred", "1").le("not_before", now_iso), index="by_deferred"
        )

    # -- outbox -----------------------------------------------------------------------------------

    def record_outbox(self, item: dict[str, Any]) -> None:
        self.db.put(self.t.outbox, item)

    def outbox_of_visit(self, visit_id: str, limit: int = 100) -> list[dict[str, Any]]:
        return self.db.query(self.t.outbox, KeyCond.of("visit_id", visit_id), index="by_visit", limit=limit).items

    def outbox_of_day(self, day: str, limit: int = 100) -> list[dict[str, Any]]:
        return self.db.query(self.t.outbox, KeyCond.of("day", day), index="by_day", limit=limit, descending=True).items

    # -- patients ---------------------------------------------------------------------------------

    def patient_item(self, patient_id: str, sk: str) -> dict[str, Any] | None:
        return self.db.get(self.t.patients, {"pk": patient_id, "sk": sk})

    def put_patient_item(self, patient_id: str, sk: str, body: dict[str, Any]) -> None:
        self.db.put(self.t.patients, {**body, "pk": patient_id, "sk": sk})

    def change_patient_item(
        self, patient_id: str, sk: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Read-modify-write with a version check; ``change`` returns the new body or None to leave it."""
        for _ in range(8):
            current = self.patient_item(patient_id, sk)
            new = change(dict(current) if current else None)
            if new is None:
                return current
            version = int(current.get("version", 0)) if current else 0
            item = {**new, "pk": patient_id, "sk": sk, "version": version + 1}
            try:
                cond = Cond.eq("version", version) if current else Cond.absent()
                self.db.put(self.t.patients, item, condition=cond)
                return item
            except ConditionFailed:
                time.sleep(0.002)
        raise ConditionFailed(f"{sk}: contended")

    def bump_counter(self, pk: str, sk: str, limit: int, expires_at: int) -> int:
        """Counts one more use; raises LimitReached (counting nothing) when ``limit`` is already used."""

        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            count = int(current.get("count", 0)) if current else 0
            if count >= limit:
                raise LimitReached(sk)
            return {"count": count + 1, "expires_at": expires_at}

        item = self.change_patient_item(pk, sk, change)
        assert item is not None
        return int(item["count"])

    # -- helpers ----------------------------------------------------------------------------------

    def _all(self, table: str, key: KeyCond, index: str | None = None) -> Iterator[dict[str, Any]]:
        cursor = None
        while True:
            page = self.db.query(table, key, index=index, cursor=cursor, limit=200)
            yield from page.items
            cursor = page.cursor
            if cursor is None:
                return
