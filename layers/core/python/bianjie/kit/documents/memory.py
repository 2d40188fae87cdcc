"""In-memory documents store for unit tests. Same contract as the real adapters, thread-safe.

    store = MemoryDocumentStore(TableSpec("orders", "pk", "sk"))   # or store.ensure_table(spec)

``clock`` lets a test move time to exercise TTL without sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from bianjie.kit.documents import _common as c
from bianjie.kit.documents.port import (
    Cond,
    ConditionFailed,
    Delete,
    Item,
    Key,
    KeyCond,
    Operation,
    Page,
    Put,
    TableNotFound,
    TableSpec,
    TransactionCanceled,
)

_KeyTuple = tuple[Any, ...]


class _Table:
    def __init__(self, spec: TableSpec) -> None:
        self.spec = spec
        self.items: dict[_KeyTuple, Item] = {}

    def key_tuple(self, key: Key) -> _KeyTuple:
        spec = self.spec
        return (key[spec.partition_key], key[spec.sort_key]) if spec.sort_key else (key[spec.partition_key],)


class MemoryDocumentStore:
    def __init__(self, *specs: TableSpec, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._tables: dict[str, _Table] = {}
        for spec in specs:
            self.ensure_table(spec)

    def ensure_table(self, spec: TableSpec) -> None:
        with self._lock:
            table = self._tables.get(spec.name)
            if table is None:
                self._tables[spec.name] = _Table(spec)
            elif table.spec != spec:
                if (table.spec.partition_key, table.spec.sort_key) != (spec.partition_key, spec.sort_key):
                    raise ValueError(f"{spec.name}: the table key cannot change")
                table.spec = spec  # new indexes or TTL, as PostgreSQL's ensure_table allows

    def _table(self, name: str) -> _Table:
        try:
            return self._tables[name]
        except KeyError:
            raise TableNotFound(name) from None

    def get(self, table: str, key: Key) -> Item | None:
        with self._lock:
            t = self._table(table)
            item = t.items.get(t.key_tuple(c.check_key(t.spec, key)))
            if item is None or c.is_expired(item, t.spec, self._clock()):
                return None
            return c.copy_value(item)

    def put(self, table: str, item: Item, *, condition: Cond | None = None) -> None:
        self._apply_one(Put(table, item, condition))

    def delete(self, table: str, key: Key, *, condition: Cond | None = None) -> None:
        self._apply_one(Delete(table, key, condition))

    def _apply_one(self, op: Put | Delete) -> None:
        with self._lock:
            t = self._table(op.table)
            prepared = self._prepare(t, op)
            if not self._holds(t, op, prepared[0]):
                raise ConditionFailed(f"{op.table}: condition failed")
            self._write(t, op, *prepared)

    def _prepare(self, t: _Table, op: Operation) -> tuple[_KeyTuple, Item | None]:
        if isinstance(op, Put):
            item = c.normalize(op.item)
            c.check_item(t.spec, item)
            return t.key_tuple(item), item
        return t.key_tuple(c.check_key(t.spec, op.key)), None

    def _holds(self, t: _Table, op: Operation, kt: _KeyTuple) -> bool:
        if op.condition is None:
            return True
        return c.evaluate(op.condition, t.items.get(kt), t.spec, self._clock())

    @staticmethod
    def _write(t: _Table, op: Operation, kt: _KeyTuple, item: Item | None) -> None:
        if isinstance(op, Put):
            assert item is not None
            t.items[kt] = item
        elif isinstance(op, Delete):
            t.items.pop(kt, None)

    def query(
        self,
        table: str,
        key: KeyCond,
        *,
        index: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        descending: bool = False,
    ) -> Page:
        c.check_limit(limit)
        with self._lock:
            t = self._table(table)
            plan = c.plan_query(t.spec, key, index)
            now = self._clock()
            rows: list[tuple[tuple[Any, ...], Item]] = []
            for item in t.items.values():
                if not c.in_index(item, t.spec, index) or item[plan.partition_attr] != plan.partition_value:
                    continue
                if c.is_expired(item, t.spec, now):
                    continue
                if plan.sort_attr is not None and not c.sort_matches(plan, item[plan.sort_attr]):
                    continue
                rows.append((tuple(item[a] for a in plan.order_attrs), item))
            rows.sort(key=lambda r: r[0], reverse=descending)
            if cursor is not None:
                after = c.decode_position(cursor, len(plan.order_attrs))
                c.check_position(t.spec, plan.order_attrs, after)
                rows = [r for r in rows if (r[0] < after if descending else r[0] > after)]
            page = rows[:limit]
            more = len(rows) > limit
            return Page(
                [c.copy_value(item) for _, item in page],
                c.encode_cursor(list(page[-1][0])) if more else None,
            )

    def transact(self, operations: Sequence[Operation]) -> None:
        c.check_operations(operations)
        with self._lock:
            prepared = []
            keys = []
            for op in operations:
                t = self._table(op.table)
                kt, item = self._prepare(t, op)
                prepared.append((t, op, kt, item))
                keys.append((op.table, dict(enumerate(kt))))
            c.check_distinct(keys)
            reasons = [None if self._holds(t, op, kt) else c.CONDITION_FAILED for t, op, kt, _ in prepared]
            if any(reasons):
                raise TransactionCanceled(reasons)
            for t, op, kt, item in prepared:
                self._write(t, op, kt, item)

    def clear(self) -> None:
        """Forget every item (the tables stay)."""
        with self._lock:
            for t in self._tables.values():
                t.items.clear()

    def items(self, table: str) -> list[Item]:
        """Every stored item, expired ones included: lets unit tests inspect state directly."""
        with self._lock:
            return [c.copy_value(item) for item in self._table(table).items.values()]
