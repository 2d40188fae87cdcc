"""The identity service's records in IDENTITY_TABLE (pk/sk, TTL on ``expires_at``), through the documents port.

Keys (``pk`` / ``sk``):
- ``client#<client_id>`` / ``client``: a relying party (a hospital's internet hospital, the entry pages)
- ``req#<id>`` / ``req``: a pending authorisation request (10 min)
- ``code#<sm3 of code>`` / ``code``: an authorisation code (60 s, single use)
- ``session#<sid>`` / ``session``: a login session (8 h) and the clients it logged into
- ``rt#<sm3 of token>`` / ``rt``: one refresh token of a family; ``family#<id>`` / ``family``
- ``ticket#<jti>`` / ``ticket``: a launch ticket, put when redeemed (replay check)
- ``person#<id>`` / ``person`` | ``link#<hospital>`` | ``card#<hospital>#<type>`` | ``history#<ts>``
- ``idref#<blind index>`` / ``idref``: the person of an ID number
- ``account#<upstream>#<subject>`` / ``account``: the person an upstream account is linked to
- ``consent#<person>`` / ``<hospital>``: consent to share identity with a hospital
- ``entry#<hospital>`` / ``entry``: the address-access registry
Secrets (codes, refresh tokens) are stored only as SM3 digests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from bianjie.kit.crypto import sm3
from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore, KeyCond, Operation


def digest(secret: str) -> str:
    return sm3(secret.encode("utf-8")).hex()


class IdentityStore:
    def __init__(self, documents: DocumentStore, table: str, clock: Callable[[], float] = time.time) -> None:
        self.documents = documents
        self.table = table
        self.clock = clock

    def now(self) -> int:
        return int(self.clock())

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self.documents.get(self.table, {"pk": pk, "sk": sk})
        if item is None:
            return None
        expires = item.get("expires_at")
        if expires is not None and int(expires) <= self.now():
            return None  # the TTL sweep is lazy; an expired record counts as absent
        return dict(item)

    def put(self, item: dict[str, Any], *, condition: Cond | None = None) -> None:
        self.documents.put(self.table, item, condition=condition)

    def put_new(self, item: dict[str, Any]) -> bool:
        """Put ``item`` unless its key exists; False if it did (the replay / reuse check)."""
        try:
            self.documents.put(self.table, item, condition=Cond.absent())
        except ConditionFailed:
            return False
        return True

    def delete(self, pk: str, sk: str) -> None:
        self.documents.delete(self.table, {"pk": pk, "sk": sk})

    def query(self, pk: str, prefix: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        key = KeyCond.of("pk", pk)
        if prefix:
            key = key.begins_with("sk", prefix)
        page = self.documents.query(self.table, key, limit=limit)
        now = self.now()
        return [dict(i) for i in page.items if i.get("expires_at") is None or int(i["expires_at"]) > now]

    def transact(self, operations: Sequence[Operation]) -> None:
        self.documents.transact(operations)
