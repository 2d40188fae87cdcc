"""What the memory store offers unit tests beyond the contract: an injectable clock and inspection."""

from __future__ import annotations

from bianjie.kit.documents import Cond, KeyCond, TableSpec
from bianjie.kit.documents.memory import MemoryDocumentStore

SPEC = TableSpec("nonces", "pk", None, {"pk": "S"}, ttl_attribute="expires_at")


def test_clock_moves_ttl_without_sleeping() -> None:
    now = [1000.0]
    store = MemoryDocumentStore(SPEC, clock=lambda: now[0])
    store.put("nonces", {"pk": "n", "expires_at": 1060}, condition=Cond.absent())
    now[0] = 1060  # not yet: expiry is strictly after the TTL second
    assert store.get("nonces", {"pk": "n"}) is not None
    now[0] = 1060.5
    assert store.get("nonces", {"pk": "n"}) is None
    store.put("nonces", {"pk": "n", "expires_at": 2000}, condition=Cond.absent())


def test_items_shows_expired_items_and_clear_empties() -> None:
    store = MemoryDocumentStore(SPEC, clock=lambda: 5000.0)
    store.put("nonces", {"pk": "old", "expires_at": 1})
    assert store.get("nonces", {"pk": "old"}) is None
    assert store.items("nonces") == [{"pk": "old", "expires_at": 1}]
    store.clear()
    assert store.items("nonces") == []
    assert store.query("nonces", KeyCond.of("pk", "old")).items == []
