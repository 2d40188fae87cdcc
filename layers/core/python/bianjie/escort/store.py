"""escort's records in its one table (``ESCORT_TABLE``: ``pk``, ``sk``, TTL ``expires_at``, sparse index
``by_visit`` on ``inv_visit`` + ``created_at`` that only invitations carry).

=========================  ==========  ==========================================================
pk                         sk          what
=========================  ==========  ==========================================================
``inv#<id>``               ``inv``     the invitation (phone and name SM4; handle, code: HMACs)
``handle#<hmac>``          ``handle``  the link's handle -> the invitation id
``otp#<inv>#<phone hmac>`` ``otp``     the current phone code of one number for one invitation
``sess#<hmac>``            ``sess``    a companion session (sliding 15-minute TTL)
``visit#<id>``             ``view``    guide's latest progress of the visit (``seq`` orders them)
``visit#<id>``             ``n#<seq>`` a notice the room shows as the visit moves
``rate#<kind>#<hmac>``     ``<window>`` a conditional counter (phone codes per number, per address)
``standin-sms#<day>``      ``<ts>#id`` what the local SMS stand-in delivered (local stage only)
=========================  ==========  ==========================================================

Every counter and every state change is a conditional write on ``version`` (compare and swap), so
concurrent writers never both count or both win.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore, KeyCond, Operation, Put

BY_VISIT = "by_visit"


class LimitReached(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(f"limit reached at {count}")
        self.count = count


class Contended(Exception):
    """A record kept changing under us; the caller may retry."""


class EscortStore:
    def __init__(self, db: DocumentStore, table: str, sleep: Callable[[float], None] = time.sleep) -> None:
        self.db = db
        self.table = table
        self.sleep = sleep

    # -- plain reads and writes ----------------------------------------------------------------

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.db.get(self.table, {"pk": pk, "sk": sk})

    def put(self, item: dict[str, Any], condition: Cond | None = None) -> None:
        self.db.put(self.table, item, condition=condition)

    def delete(self, pk: str, sk: str) -> None:
        self.db.delete(self.table, {"pk": pk, "sk": sk})

    def op(self, item: dict[str, Any], condition: Cond | None = None) -> Put:
        return Put(self.table, item, condition)

    def transact(self, operations: Sequence[Operation]) -> None:
        self.db.transact(operations)

    def invitations_of_visit(self, visit_id: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.db.query(self.table, KeyCond.of("inv_visit", visit_id), index=BY_VISIT, limit=limit).items

    def latest(self, pk: str, prefix: str | None, limit: int) -> list[dict[str, Any]]:
        key = KeyCond.of("pk", pk)
        if prefix:
            key = key.begins_with("sk", prefix)
        return self.db.query(self.table, key, limit=limit, descending=True).items

    # -- compare and swap ------------------------------------------------------------------------

    def swap(
        self,
        pk: str,
        sk: str,
        change: Callable[[dict[str, Any] | None], dict[str, Any] | None],
        attempts: int = 40,
    ) -> dict[str, Any] | None:
        """Read, ``change`` (returns the new item, or None to leave it), write if nobody wrote since.
        ``change`` may raise to refuse; it is called again with the fresh item after a lost race."""
        for attempt in range(attempts):
            current = self.get(pk, sk)
            new = change(dict(current) if current else None)
            if new is None:
                return current
            version = int(current.get("version", 0)) if current else 0
            item = {**new, "pk": pk, "sk": sk, "version": version + 1}
            cond = Cond.eq("version", version) if current else Cond.absent()
            try:
                self.put(item, cond)
                return item
            except ConditionFailed:
                self.sleep(0.001 * (1 + attempt % 5))
        raise Contended(f"{pk}/{sk}")

    def bump(self, pk: str, sk: str, limit: int, expires_at: int) -> int:
        """One more use of a window; ``LimitReached`` (counting nothing) when ``limit`` uses are counted."""

        def change(current: dict[str, Any] | None) -> dict[str, Any]:
            count = int(current.get("count", 0)) if current else 0
            if count >= limit:
                raise LimitReached(count)
            return {"count": count + 1, "expires_at": expires_at}

        item = self.swap(pk, sk, change)
        assert item is not None
        return int(item["count"])
