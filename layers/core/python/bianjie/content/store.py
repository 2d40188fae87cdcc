"""Content's table, through the documents port (DynamoDB or PostgreSQL).

ContentTable (pk, sk), TTL attribute ``expires_at``
    <item id> / head          the item as it is now (JSON in ``doc``), its revision ``rev`` for
                              conditional writes, ``status_key`` and, once public, ``pub_column`` +
                              ``published_at`` for the two GSIs
    <item id> / v#<00001>     each version's text as written (versions kept)
    <item id> / step#<00001>  each workflow step, sealed (HMAC-SM3 chained over the previous seal)
    wx#<MsgId or user+time> / seen      a WeChat message seen, kept 1 day (deduplication of retries)
    wx#token / current        the official account's access token (written by the refresh schedule only)
    GSIs by_status (status_key, updated_at) and by_column (pub_column, published_at; public items only)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore, KeyCond, Put, TransactionCanceled

HEAD = "head"


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


class Contended(Exception):
    """Another writer changed the item first."""


class ContentStore:
    def __init__(self, documents: DocumentStore, table: str) -> None:
        self.documents = documents
        self.table = table

    # -- items -----------------------------------------------------------------------------------

    def head(self, item_id: str) -> tuple[dict[str, Any], int] | None:
        item = self.documents.get(self.table, {"pk": item_id, "sk": HEAD})
        if item is None:
            return None
        return json.loads(item["doc"]), int(item["rev"])

    def _head_item(self, doc: dict[str, Any], rev: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "pk": doc["id"],
            "sk": HEAD,
            "doc": _dumps(doc),
            "rev": rev,
            "status_key": doc["status"],
            "updated_at": doc["updated_at"],
        }
        if doc["status"] == "published":
            item["pub_column"] = doc["column"]
            item["published_at"] = doc["published_at"]
        return item

    def create(self, doc: dict[str, Any], version_text: dict[str, Any]) -> None:
        try:
            self.documents.transact(
                [
                    Put(self.table, self._head_item(doc, 1), Cond.absent()),
                    Put(self.table, self._version_item(doc["id"], doc["version"], version_text), Cond.absent()),
                ]
            )
        except TransactionCanceled as exc:
            raise Contended(doc["id"]) from exc

    def _version_item(self, item_id: str, version: int, text: dict[str, Any]) -> dict[str, Any]:
        return {"pk": item_id, "sk": f"v#{version:05d}", "doc": _dumps(text)}

    def save(
        self,
        doc: dict[str, Any],
        rev: int,
        *,
        step: dict[str, Any] | None = None,
        version_text: dict[str, Any] | None = None,
    ) -> int:
        """Writes the head if it is still at ``rev`` (and the step and version, all or nothing)."""
        ops = [Put(self.table, self._head_item(doc, rev + 1), Cond.eq("rev", rev))]
        if step is not None:
            ops.append(
                Put(self.table, {"pk": doc["id"], "sk": f"step#{step['seq']:05d}", "doc": _dumps(step)}, Cond.absent())
            )
        if version_text is not None:
            ops.append(Put(self.table, self._version_item(doc["id"], doc["version"], version_text), Cond.absent()))
        try:
            if len(ops) == 1:
                self.documents.put(self.table, ops[0].item, condition=ops[0].condition)
            else:
                self.documents.transact(ops)
        except (ConditionFailed, TransactionCanceled) as exc:
            raise Contended(doc["id"]) from exc
        return rev + 1

    def steps(self, item_id: str) -> list[dict[str, Any]]:
        return [json.loads(i["doc"]) for i in self._all(KeyCond.of("pk", item_id).begins_with("sk", "step#"))]

    def versions(self, item_id: str) -> list[dict[str, Any]]:
        return [json.loads(i["doc"]) for i in self._all(KeyCond.of("pk", item_id).begins_with("sk", "v#"))]

    def _all(self, key: KeyCond, index: str | None = None) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = self.documents.query(self.table, key, index=index, limit=200, cursor=cursor)
            yield from page.items
            cursor = page.cursor
            if not cursor:
                return

    def by_status(self, status: str, limit: int = 100) -> list[dict[str, Any]]:
        page = self.documents.query(
            self.table, KeyCond.of("status_key", status), index="by_status", limit=limit, descending=True
        )
        return [json.loads(i["doc"]) for i in page.items]

    def public(self, column: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Published items of a column, newest first."""
        if limit is not None:
            page = self.documents.query(
                self.table, KeyCond.of("pub_column", column), index="by_column", limit=limit, descending=True
            )
            return [json.loads(i["doc"]) for i in page.items]
        found = [json.loads(i["doc"]) for i in self._all(KeyCond.of("pub_column", column), index="by_column")]
        return sorted(found, key=lambda d: d["published_at"], reverse=True)

    # -- WeChat ----------------------------------------------------------------------------------

    def claim_message(self, key: str, now: float, keep_s: int = 86400) -> bool:
        """True the first time ``key`` is seen within ``keep_s``."""
        try:
            self.documents.put(
                self.table,
                {"pk": f"wx#{key}", "sk": "seen", "expires_at": int(now) + keep_s},
                condition=Cond.absent(),
            )
        except ConditionFailed:
            return False
        return True

    def wechat_token(self) -> dict[str, Any] | None:
        item = self.documents.get(self.table, {"pk": "wx#token", "sk": "current"})
        return json.loads(item["doc"]) if item else None

    def put_wechat_token(self, token: dict[str, Any]) -> None:
        self.documents.put(self.table, {"pk": "wx#token", "sk": "current", "doc": _dumps(token)})

    # -- aggregation -----------------------------------------------------------------------------

    def source(self, source_id: str) -> dict[str, Any] | None:
        item = self.documents.get(self.table, {"pk": "sources", "sk": source_id})
        return json.loads(item["doc"]) if item else None

    def put_source(self, source_id: str, state: dict[str, Any]) -> None:
        self.documents.put(self.table, {"pk": "sources", "sk": source_id, "doc": _dumps(state)})

    def sources(self) -> list[dict[str, Any]]:
        return [json.loads(i["doc"]) for i in self._all(KeyCond.of("pk", "sources"))]

    def find_hash(self, digest: str) -> str | None:
        item = self.documents.get(self.table, {"pk": f"agghash#{digest}", "sk": "item"})
        return str(item["item"]) if item else None

    def put_hash(self, digest: str, item_id: str) -> None:
        self.documents.put(self.table, {"pk": f"agghash#{digest}", "sk": "item", "item": item_id})

    def signatures(self, limit: int) -> list[tuple[str, list[int]]]:
        page = self.documents.query(self.table, KeyCond.of("pk", "aggsig"), limit=limit, descending=True)
        return [(str(i["item"]), json.loads(i["doc"])) for i in page.items]

    def put_signature(self, item_id: str, signature: list[int], at: str = "") -> None:
        self.documents.put(
            self.table,
            {"pk": "aggsig", "sk": f"{at or item_id}#{item_id}", "item": item_id, "doc": json.dumps(signature)},
        )

    def add_crosspost(self, item_id: str, url: str) -> None:
        for _ in range(3):
            found = self.head(item_id)
            if found is None:
                return
            doc, rev = found
            also = list(doc.get("crossposts") or [])
            if url in also:
                return
            doc["crossposts"] = [*also, url][-20:]
            try:
                self.save(doc, rev)
                return
            except Contended:
                continue
