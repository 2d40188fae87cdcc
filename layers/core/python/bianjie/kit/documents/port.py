"""The documents port. Domain code depends on this module only, never on boto3 or psycopg.

CONTRACT (every adapter; checked by the shared contract suite):
- A table is named by its physical name (what template.yaml's ``!Ref`` resolves to). Its key schema
  (``TableSpec``) comes from template.yaml: the DynamoDB adapter needs only the name; the PostgreSQL
  adapter reads the schema from its catalog, written by ``ensure_table`` (``bianjie db migrate``).
- Items are JSON-like dicts: str, int, float, bool, None, list, dict. Key attributes are str or int.
  Adapters return ints as int (never Decimal) and floats as float.
- ``get`` returns the item or None. Items whose TTL attribute (epoch seconds) is in the past are
  treated as absent everywhere: by get, query, and by conditions (``Cond.absent()`` succeeds on an
  expired item, so a nonce or idempotency key can be reused after its TTL).
- ``put(condition=...)`` / ``delete(condition=...)`` raise ``ConditionFailed`` when the condition is
  false; nothing changes then.
- ``query`` selects by the partition key of the table or of an index (``KeyCond``), optionally with a
  sort-key condition; ordered by sort key ascending (``descending=True`` reverses); returns at most
  ``limit`` items and a ``cursor`` that continues after them, or None when there is nothing more.
  String sort keys order by UTF-8 bytes (DynamoDB's order), ints numerically.
- ``transact`` applies up to 25 operations atomically; if any condition fails nothing is applied and
  ``TransactionCanceled`` carries, per operation, None or the reason ("ConditionalCheckFailed").
  No two operations may name the same item. Adapters retry conflicts with concurrent transactions
  themselves; only when contention outlasts the retries is the reason "TransactionConflict".

Refinements every adapter follows (the contract suite checks them too):
- Numbers: an integral number comes back as int, any other as float (DynamoDB keeps no float/int
  distinction and returns ``2.0`` as ``2``, so the other adapters normalise the same way). NaN and
  infinities are rejected. Decimal is accepted on input. Strings (and attribute names) must not
  contain NUL or lone surrogates, which PostgreSQL cannot store.
- ``Cond.eq``/``Cond.ne`` compare numbers by value (``1 == 1.0``) but never bool with number; lists
  and dicts compare deeply. Every condition other than ``absent`` implies a live item.
- The TTL attribute, when present, must be a number; the item expires when it is strictly below now.
- Queries on an index see only items that carry the index's key attributes (DynamoDB's sparse
  indexes). Index queries are eventually consistent on DynamoDB; get and table queries are not.
  Items with equal index sort keys come in table-key order (memory, PostgreSQL) or in an unspecified
  but stable order (DynamoDB); paging visits each exactly once either way.
- ``cursor`` is None exactly when no further item exists at the time of the query.
- Misuse (missing or mistyped key attributes, a key condition on a non-key attribute, ``begins_with``
  on a number key, too many or duplicate transaction operations) raises ``ValueError``; an unknown
  table raises ``TableNotFound``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from bianjie.kit.errors import AppError

Item = dict[str, Any]
Key = Mapping[str, Any]
KeyType = Literal["S", "N"]


class ConditionFailed(Exception):
    """The condition of a put or delete was false; the store is unchanged."""


class StoreUnavailable(AppError):
    """The store cannot be reached (PostgreSQL down or restarting, no connection within the pool's timeout).

    An ``AppError`` (503 ``STORE_UNAVAILABLE``, ``Retry-After``) so every handler's caller gets a clear
    answer instead of a 500: whatever the request had committed before stays committed, and a retry with
    the same idempotency key answers what it did."""

    status, code = 503, "STORE_UNAVAILABLE"

    def __init__(self, message: str = "the database is not reachable; try again shortly") -> None:
        super().__init__(message, headers={"Retry-After": "5"})


class TableNotFound(LookupError):
    """No such table (DynamoDB: not created; PostgreSQL: not in the catalog, run ``ensure_table``)."""


MAX_TRANSACT_OPERATIONS = 25


class TransactionCanceled(Exception):
    def __init__(self, reasons: Sequence[str | None]) -> None:
        super().__init__(f"transaction canceled: {list(reasons)}")
        self.reasons = list(reasons)


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class TableSpec:
    name: str  # physical name
    partition_key: str
    sort_key: str | None = None
    key_types: Mapping[str, KeyType] = field(default_factory=dict)  # attribute -> S | N
    indexes: tuple[IndexSpec, ...] = ()
    ttl_attribute: str | None = None

    def key_of(self, item: Mapping[str, Any]) -> dict[str, Any]:
        key = {self.partition_key: item[self.partition_key]}
        if self.sort_key:
            key[self.sort_key] = item[self.sort_key]
        return key

    def index(self, name: str) -> IndexSpec:
        for idx in self.indexes:
            if idx.name == name:
                return idx
        raise KeyError(f"table {self.name} has no index {name}")


@dataclass(frozen=True)
class Cond:
    """A condition on the current item. Combine with ``&``."""

    op: Literal["absent", "exists", "eq", "ne", "attr_absent", "and"]
    attr: str | None = None
    value: Any = None
    parts: tuple[Cond, ...] = ()

    @staticmethod
    def absent() -> Cond:
        """No live item with this key exists (an expired one counts as absent)."""
        return Cond("absent")

    @staticmethod
    def exists() -> Cond:
        return Cond("exists")

    @staticmethod
    def eq(attr: str, value: Any) -> Cond:
        """The item exists and ``attr == value``."""
        return Cond("eq", attr, value)

    @staticmethod
    def ne(attr: str, value: Any) -> Cond:
        """The item exists and ``attr != value`` (true when attr is missing)."""
        return Cond("ne", attr, value)

    @staticmethod
    def attr_absent(attr: str) -> Cond:
        """The item exists and has no attribute ``attr``."""
        return Cond("attr_absent", attr)

    def __and__(self, other: Cond) -> Cond:
        return Cond("and", parts=(*self._flat(), *other._flat()))

    def _flat(self) -> tuple[Cond, ...]:
        return self.parts if self.op == "and" else (self,)


@dataclass(frozen=True)
class KeyCond:
    """Partition key equality plus an optional sort-key condition, for ``query``."""

    partition: tuple[str, Any]
    sort: tuple[str, Literal["eq", "lt", "le", "gt", "ge", "between", "begins_with"], Any] | None = None

    @staticmethod
    def of(attr: str, value: Any) -> KeyCond:
        return KeyCond((attr, value))

    def _with(self, attr: str, op: Any, value: Any) -> KeyCond:
        return KeyCond(self.partition, (attr, op, value))

    def eq(self, attr: str, value: Any) -> KeyCond:
        return self._with(attr, "eq", value)

    def lt(self, attr: str, value: Any) -> KeyCond:
        return self._with(attr, "lt", value)

    def le(self, attr: str, value: Any) -> KeyCond:
        return self._with(attr, "le", value)

    def gt(self, attr: str, value: Any) -> KeyCond:
        return self._with(attr, "gt", value)

    def ge(self, attr: str, value: Any) -> KeyCond:
        return self._with(attr, "ge", value)

    def between(self, attr: str, low: Any, high: Any) -> KeyCond:
        return self._with(attr, "between", (low, high))

    def begins_with(self, attr: str, prefix: str) -> KeyCond:
        return self._with(attr, "begins_with", prefix)


@dataclass(frozen=True)
class Page:
    items: list[Item]
    cursor: str | None


@dataclass(frozen=True)
class Put:
    table: str
    item: Item
    condition: Cond | None = None


@dataclass(frozen=True)
class Delete:
    table: str
    key: Key
    condition: Cond | None = None


@dataclass(frozen=True)
class Check:
    table: str
    key: Key
    condition: Cond


Operation = Put | Delete | Check


class DocumentStore(Protocol):
    def ensure_table(self, spec: TableSpec) -> None:
        """Create the table if missing (idempotent). Production DynamoDB tables come from CloudFormation.

        On PostgreSQL (and memory) calling it again with new indexes or another TTL attribute migrates
        the table; on DynamoDB an existing table only gets its TTL attribute set (CloudFormation owns
        its indexes). The table key never changes (``ValueError``).
        """

    def get(self, table: str, key: Key) -> Item | None: ...

    def put(self, table: str, item: Item, *, condition: Cond | None = None) -> None: ...

    def delete(self, table: str, key: Key, *, condition: Cond | None = None) -> None: ...

    def query(
        self,
        table: str,
        key: KeyCond,
        *,
        index: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
        descending: bool = False,
    ) -> Page: ...

    def transact(self, operations: Sequence[Operation]) -> None: ...
