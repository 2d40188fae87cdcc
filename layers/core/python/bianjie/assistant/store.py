"""The assistant's tables, through the documents port.

AssistantSessionsTable (pk = conversation id "c" + 31 hex of SM3(session secret), sk)
    meta          status (bot|waiting|agent), hospital, counters, the rate window, the last entry
                  answered; while handed off: ``queue`` = "<hospital>#<status>" and ``queued_at`` (GSI
                  by_queue, sparse); ``expires_at`` (TTL)
    m#<seq:06d>   one message: role, text SM4-encrypted (context assistant/message/<conv>/<seq>),
                  the entry or rule it came from, links
AssistantKbTable (pk = hospital, sk)
    meta                  ``version``: bumped by every publication (the index is rebuilt on change)
    pub#<entry id>        the published override of a base entry, or the hospital's own entry
    draft#<entry id>      the entry being edited or reviewed
    rev#<entry id>#<v:06d> every published version (history)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bianjie.kit.documents.port import Cond, DocumentStore, KeyCond, Operation, Put

META = "meta"


@dataclass(frozen=True)
class Tables:
    sessions: str
    kb: str


def msg_key(seq: int) -> str:
    return f"m#{seq:06d}"


class AssistantStore:
    def __init__(self, documents: DocumentStore, tables: Tables) -> None:
        self.db = documents
        self.t = tables

    # -- sessions ---------------------------------------------------------------------------------

    def session(self, conv: str) -> dict[str, Any] | None:
        return self.db.get(self.t.sessions, {"pk": conv, "sk": META})

    def put_session(self, meta: dict[str, Any], expected_version: int | None) -> Put:
        cond = Cond.absent() if expected_version is None else Cond.eq("version", expected_version)
        return Put(self.t.sessions, {**meta, "sk": META}, cond)

    def put_message(self, conv: str, seq: int, item: dict[str, Any]) -> Put:
        return Put(self.t.sessions, {**item, "pk": conv, "sk": msg_key(seq)}, Cond.absent())

    def transact(self, ops: list[Operation]) -> None:
        self.db.transact(ops)

    def messages(self, conv: str, after: int = 0, limit: int = 200) -> list[dict[str, Any]]:
        page = self.db.query(
            self.t.sessions, KeyCond.of("pk", conv).between("sk", msg_key(after + 1), "m#999999"), limit=limit
        )
        return page.items

    def last_messages(self, conv: str, limit: int) -> list[dict[str, Any]]:
        page = self.db.query(
            self.t.sessions, KeyCond.of("pk", conv).begins_with("sk", "m#"), limit=limit, descending=True
        )
        return list(reversed(page.items))

    def queue(self, hospital: str, status: str, limit: int = 100) -> list[dict[str, Any]]:
        page = self.db.query(
            self.t.sessions, KeyCond.of("queue", f"{hospital}#{status}"), index="by_queue", limit=limit
        )
        return page.items

    # -- knowledge base ---------------------------------------------------------------------------

    def kb_version(self, hospital: str) -> int:
        item = self.db.get(self.t.kb, {"pk": hospital, "sk": META})
        return int(item["version"]) if item else 0

    def kb_items(self, hospital: str, prefix: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.db.query(
                self.t.kb, KeyCond.of("pk", hospital).begins_with("sk", prefix), limit=100, cursor=cursor
            )
            items.extend(page.items)
            cursor = page.cursor
            if not cursor:
                return items

    def kb_get(self, hospital: str, sk: str) -> dict[str, Any] | None:
        return self.db.get(self.t.kb, {"pk": hospital, "sk": sk})

    def kb_put(self, hospital: str, sk: str, entry: dict[str, Any], **extra: Any) -> Put:
        return Put(self.t.kb, {"pk": hospital, "sk": sk, "entry": json.dumps(entry, ensure_ascii=False), **extra})

    def kb_bump(self, hospital: str, version: int) -> Put:
        cond = Cond.absent() if version == 0 else Cond.eq("version", version)
        return Put(self.t.kb, {"pk": hospital, "sk": META, "version": version + 1}, cond)


def entry_of(item: dict[str, Any]) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(item["entry"])
    return value
