"""PostgreSQL adapter (on premises), over psycopg 3.

    store = PostgresDocumentStore("postgresql://app@db:5432/bianjie")     # own pool (psycopg_pool)
    store = PostgresDocumentStore(pool)   # anything with .connection() giving autocommit connections

Layout: one SQL table per document table, ``(pk, [sk,] doc jsonb, expires float8)``. String key
columns are ``COLLATE "C"`` so they sort by UTF-8 bytes as DynamoDB does, whatever the database's
locale; number keys are ``numeric``. Each index is an expression index over ``doc`` (string sort
keys again in "C"), partial so it holds only the items carrying its keys, like a sparse GSI.
``expires`` copies the TTL attribute out of the document so reads and conditions filter on it.

The schema of each table lives in the catalog table ``bianjie_tables``, written by ``ensure_table``
(``bianjie db migrate``) and read lazily here. Expired rows stay until ``purge_expired`` runs.

Concurrency: single conditional writes are one statement each (``INSERT ... ON CONFLICT`` or
``UPDATE/DELETE ... WHERE``) and rely on the row lock PostgreSQL takes under READ COMMITTED.
``transact`` runs in one SQL transaction, locks its items in a fixed order, and locks keys that do
not exist yet by inserting an already-expired placeholder row, so a check that an item is absent
holds until commit (DynamoDB transactions are serializable; this keeps them so).
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import psycopg
from psycopg import errors
from psycopg.types.json import Jsonb
from psycopg_pool import PoolTimeout

from bianjie.kit.documents import _common as c
from bianjie.kit.documents.port import (
    Cond,
    ConditionFailed,
    Delete,
    IndexSpec,
    Item,
    Key,
    KeyCond,
    Operation,
    Page,
    Put,
    StoreUnavailable,
    TableNotFound,
    TableSpec,
    TransactionCanceled,
)

CATALOG = "bianjie_tables"
_MIGRATION_LOCK = 0x6269616E6A6965  # "bianjie": serialises concurrent ensure_table calls
_RETRIES = 5
_FAILED_MARK = "bianjie-transaction-conditions:"  # the text a one-statement transaction fails with
_MAX_IDENT = 63  # PostgreSQL truncates longer identifiers


class Pool(Protocol):
    def connection(self) -> AbstractContextManager[psycopg.Connection[Any]]: ...


def open_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, timeout: float = 5.0, check_after: float = 30.0
) -> Any:
    """A ``psycopg_pool.ConnectionPool`` of autocommit connections, opened (``min_size`` connected now).

    A connection idle for longer than ``check_after`` seconds is probed before it is handed out, so a
    server restart or a failover to the standby costs no failed request, while a busy pool pays no
    probe round trip. psycopg prepares a statement on a connection after its fifth use
    (``prepare_threshold``), so the few statements of a hot path run as prepared statements.
    """
    from psycopg_pool import ConnectionPool

    released: weakref.WeakKeyDictionary[psycopg.Connection[Any], float] = weakref.WeakKeyDictionary()

    class _Pool(ConnectionPool):
        # The release time is noted here, in the caller's thread, rather than by a ``reset`` callback:
        # with ``reset`` set, psycopg_pool hands every returned connection to one of its worker threads
        # (a queue put, a thread wake-up and a GIL hand-off per statement, and the connection unusable
        # until that thread ran), which showed in the charge burst's profile.
        def putconn(self, conn: psycopg.Connection[Any]) -> None:
            released[conn] = time.monotonic()
            super().putconn(conn)

    def check(conn: psycopg.Connection[Any]) -> None:
        if time.monotonic() - released.get(conn, 0.0) >= check_after:
            conn.execute("SELECT 1")  # raises on a dead connection: the pool drops it and hands out another

    pool = _Pool(
        dsn,
        min_size=min_size,
        max_size=max(min_size, max_size),
        timeout=timeout,
        kwargs={"autocommit": True},
        check=check,
        open=False,
        name="bianjie-documents",
    )
    pool.open(wait=False)
    return pool


# SQLSTATEs of a server going away: class 08 (connection exception), and the shutdowns of class 57
_OUTAGE_STATES = ("57P01", "57P02", "57P03")
UNREACHABLE_HOLD = 1.0  # seconds every request is refused at once after the pool timed out


def _is_outage(exc: Exception) -> bool:
    """The server is unreachable or going down (no SQLSTATE: the client lost or never got a connection)."""
    if isinstance(exc, PoolTimeout | psycopg.InterfaceError):
        return True
    state = getattr(exc, "sqlstate", None)
    return state is None or state.startswith("08") or state in _OUTAGE_STATES


# --- SQL text -----------------------------------------------------------------------------


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""').replace("%", "%%") + '"'


def _literal(text: str) -> str:
    # Every statement goes through psycopg's placeholder parsing (DDL too, with empty params), so a
    # "%" in an attribute name is doubled here.
    return "'" + text.replace("'", "''").replace("%", "%%") + "'"


def _short(name: str, salt: str = "") -> str:
    """A valid identifier for ``name``: itself when short enough, else a prefix plus a hash."""
    if not salt and len(name.encode()) <= _MAX_IDENT:
        return name
    digest = hashlib.sha1(f"{name}\0{salt}".encode()).hexdigest()[:12]
    prefix = name.encode()[:40].decode(errors="ignore")
    return f"{prefix}_{digest}"


def _prefix_bound(prefix: str) -> str | None:
    """The least string above every string starting with ``prefix`` (code point = byte order)."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if 0xD800 <= code <= 0xDFFF:  # surrogates cannot appear in PostgreSQL text
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None


@dataclass(frozen=True)
class _Table:
    """A table's spec and the SQL derived from it, computed once per process."""

    spec: TableSpec
    sql_name: str
    key_attrs: tuple[str, ...]  # table key attributes, in column order (pk, sk)

    @property
    def ref(self) -> str:
        return _ident(self.sql_name)

    @property
    def key_cols(self) -> tuple[str, ...]:
        return ("pk", "sk")[: len(self.key_attrs)]

    def key_values(self, key: Key) -> list[Any]:
        return [key[a] for a in self.key_attrs]

    def key_where(self) -> str:
        return " AND ".join(f"{col} = %s" for col in self.key_cols)

    def expr(self, attr: str, *, index: IndexSpec | None) -> str:
        """The SQL expression of a key attribute: a column for table keys, else from ``doc``."""
        if index is None or attr in self.key_attrs:
            return self.key_cols[self.key_attrs.index(attr)]
        return self.doc_expr(attr)

    def doc_expr(self, attr: str) -> str:
        text = f"(doc ->> {_literal(attr)})"
        if self.spec.key_types.get(attr, "S") == "N":
            return f"({text}::numeric)"
        return f'({text} COLLATE "C")'


def _index_sql_name(table: _Table, index: IndexSpec) -> str:
    # The definition is part of the name, so a changed index gets a new one (and the old is dropped).
    types = table.spec.key_types
    definition = f"{index.partition_key}:{types.get(index.partition_key, 'S')}"
    if index.sort_key:
        definition += f"/{index.sort_key}:{types.get(index.sort_key, 'S')}"
    return _short(f"{table.sql_name}_{index.name}", salt=f"{table.spec.name}/{index.name}/{definition}")


def _column_type(spec: TableSpec, attr: str) -> str:
    return "numeric" if spec.key_types.get(attr, "S") == "N" else 'text COLLATE "C"'


def _spec_to_json(spec: TableSpec) -> dict[str, Any]:
    return {
        "name": spec.name,
        "partition_key": spec.partition_key,
        "sort_key": spec.sort_key,
        "key_types": dict(spec.key_types),
        "indexes": [{"name": i.name, "partition_key": i.partition_key, "sort_key": i.sort_key} for i in spec.indexes],
        "ttl_attribute": spec.ttl_attribute,
    }


def _spec_from_json(data: dict[str, Any]) -> TableSpec:
    return TableSpec(
        name=data["name"],
        partition_key=data["partition_key"],
        sort_key=data.get("sort_key"),
        key_types=dict(data.get("key_types") or {}),
        indexes=tuple(IndexSpec(i["name"], i["partition_key"], i.get("sort_key")) for i in data.get("indexes", [])),
        ttl_attribute=data.get("ttl_attribute"),
    )


_LIVE = "(expires IS NULL OR expires >= %s)"


class _Rollback(Exception):
    """Leaves a ``conn.transaction()`` block, undoing it, when a condition failed."""


# --- the store ----------------------------------------------------------------------------


class PostgresDocumentStore:
    def __init__(
        self,
        dsn_or_pool: str | Pool,
        *,
        max_connections: int = 10,
        min_connections: int = 1,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(dsn_or_pool, str):
            self._pool: Pool = open_pool(dsn_or_pool, min_size=min_connections, max_size=max_connections)
            self._owns_pool = True
        else:
            self._pool = dsn_or_pool
            self._owns_pool = False
        self._clock = clock
        self._tables: dict[str, _Table] = {}
        self._lock = threading.Lock()
        self._unreachable_until = 0.0  # monotonic; see _connection
        self._probing = False

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; the server unreachable (down, restarting, no connection within the pool's
        timeout, a connection dropped mid-statement) is ``StoreUnavailable`` (503), not a 500.

        Fail fast: once the pool could not hand out a connection within its timeout, every request for the
        next ``UNREACHABLE_HOLD`` seconds is refused at once instead of queueing behind the ones waiting
        (a 30 s outage under load otherwise answers a few callers a second and holds the rest); after that
        one request at a time probes the pool while the others are still refused, until one gets through.
        A single connection cut mid-statement does not trip it."""
        probe = False
        if self._unreachable_until:
            if time.monotonic() < self._unreachable_until or self._probing:
                raise StoreUnavailable()
            self._probing = probe = True  # a race lets two probe: harmless
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout) as exc:
            if not _is_outage(exc):  # a serialization failure, a deadlock, a cancelled query: the caller's
                raise
            if isinstance(exc, PoolTimeout):
                self._unreachable_until = time.monotonic() + UNREACHABLE_HOLD
            raise StoreUnavailable() from exc
        else:
            self._unreachable_until = 0.0
        finally:
            if probe:
                self._probing = False

    def close(self) -> None:
        if self._owns_pool:
            self._pool.close()  # type: ignore[attr-defined]

    # -- schema --

    def ensure_table(self, spec: TableSpec) -> None:
        if spec.name == CATALOG:
            raise ValueError(f"{CATALOG} is the catalog's own name")
        with self._connection() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [_MIGRATION_LOCK])
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {CATALOG} (name text PRIMARY KEY, sql_name text NOT NULL UNIQUE,"
                " spec jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())"
            )
            row = conn.execute(f"SELECT sql_name, spec FROM {CATALOG} WHERE name = %s", [spec.name]).fetchone()
            old = _spec_from_json(row[1]) if row else None
            if old is not None and (
                (old.partition_key, old.sort_key) != (spec.partition_key, spec.sort_key)
                or any(old.key_types.get(a) != spec.key_types.get(a) for a in (spec.partition_key, spec.sort_key) if a)
            ):
                raise ValueError(f"{spec.name}: the table key cannot change ({old} -> {spec})")
            sql_name = row[0] if row else _short(spec.name)
            table = _Table(spec, sql_name, tuple(a for a in (spec.partition_key, spec.sort_key) if a))
            cols = [
                f"{col} {_column_type(spec, a)} NOT NULL"
                for col, a in zip(table.key_cols, table.key_attrs, strict=True)
            ]
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {table.ref} ({', '.join(cols)}, doc jsonb NOT NULL,"
                f" expires float8, PRIMARY KEY ({', '.join(table.key_cols)}))",
                [],
            )
            for idx in spec.indexes:
                conn.execute(self._index_ddl(table, idx), [])
            wanted = {_index_sql_name(table, idx) for idx in spec.indexes}
            existing = conn.execute(
                "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = %s::regclass AND NOT i.indisprimary",
                [table.ref.replace("%%", "%")],
            ).fetchall()
            for (stale,) in existing:
                if stale not in wanted:
                    conn.execute(f"DROP INDEX {_ident(stale)}", [])
            if old is not None and old.ttl_attribute != spec.ttl_attribute:
                self._recompute_expires(conn, table)
            conn.execute(
                f"INSERT INTO {CATALOG} (name, sql_name, spec) VALUES (%s, %s, %s) ON CONFLICT (name)"
                " DO UPDATE SET spec = EXCLUDED.spec, updated_at = now()",
                [spec.name, sql_name, Jsonb(_spec_to_json(spec))],
            )
        with self._lock:
            self._tables[spec.name] = table

    @staticmethod
    def _index_ddl(table: _Table, idx: IndexSpec) -> str:
        attrs = [a for a in (idx.partition_key, idx.sort_key) if a]
        exprs = [table.expr(a, index=idx) for a in attrs]
        present = " AND ".join(f"(doc ->> {_literal(a)}) IS NOT NULL" for a in attrs)
        # The table key columns complete the order, so paging through equal index keys is an index scan.
        columns = ", ".join([*exprs, *table.key_cols])
        return (
            f"CREATE INDEX IF NOT EXISTS {_ident(_index_sql_name(table, idx))}"
            f" ON {table.ref} ({columns}) WHERE {present}"
        )

    @staticmethod
    def _recompute_expires(conn: psycopg.Connection[Any], table: _Table) -> None:
        ttl = table.spec.ttl_attribute
        if ttl is None:
            conn.execute(f"UPDATE {table.ref} SET expires = NULL WHERE expires IS NOT NULL", [])
            return
        conn.execute(
            f"UPDATE {table.ref} SET expires = CASE WHEN jsonb_typeof(doc -> %s) = 'number'"
            " THEN (doc ->> %s)::float8 END",
            [ttl, ttl],
        )

    def _table(self, name: str) -> _Table:
        table = self._tables.get(name)
        if table is not None:
            return table
        with self._connection() as conn:
            try:
                row = conn.execute(f"SELECT sql_name, spec FROM {CATALOG} WHERE name = %s", [name]).fetchone()
            except errors.UndefinedTable:
                row = None
        if row is None:
            raise TableNotFound(f"{name} (not in {CATALOG}; run ensure_table / bianjie db migrate)")
        spec = _spec_from_json(row[1])
        table = _Table(spec, row[0], tuple(a for a in (spec.partition_key, spec.sort_key) if a))
        with self._lock:
            return self._tables.setdefault(name, table)

    def spec(self, table: str) -> TableSpec:
        return self._table(table).spec

    # -- items --

    def get(self, table: str, key: Key) -> Item | None:
        t = self._table(table)
        values = t.key_values(c.check_key(t.spec, key))
        with self._connection() as conn:
            row = conn.execute(
                f"SELECT doc FROM {t.ref} WHERE {t.key_where()} AND {_LIVE}", [*values, self._clock()]
            ).fetchone()
        return row[0] if row else None

    def put(self, table: str, item: Item, *, condition: Cond | None = None) -> None:
        self._single(Put(table, item, condition))

    def delete(self, table: str, key: Key, *, condition: Cond | None = None) -> None:
        self._single(Delete(table, key, condition))

    def _single(self, op: Put | Delete) -> None:
        t = self._table(op.table)
        prepared = self._prepare(t, op)
        # One statement suffices except for "absent" on delete, which must lock a key that may not exist.
        single = not isinstance(op, Delete) or op.condition is None or not c.is_absent_only(op.condition)
        for attempt in range(_RETRIES):
            try:
                with self._connection() as conn:
                    if single:
                        ok = self._apply(conn, t, op, *prepared)
                    else:
                        with conn.transaction():
                            ok = self._apply(conn, t, op, *prepared)
                break
            except (errors.DeadlockDetected, errors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise
                _backoff(attempt)
        if not ok:
            raise ConditionFailed(f"{op.table}: condition failed")

    def _prepare(self, t: _Table, op: Operation) -> tuple[list[Any], Item | None]:
        if isinstance(op, Put):
            item = c.normalize(op.item)
            c.check_item(t.spec, item)
            return t.key_values(item), item
        return t.key_values(c.check_key(t.spec, op.key)), None

    def _expires(self, t: _Table, item: Item) -> float | None:
        ttl = t.spec.ttl_attribute
        value = item.get(ttl) if ttl else None
        return float(value) if c.is_number(value) else None

    def _apply(
        self, conn: psycopg.Connection[Any], t: _Table, op: Operation, key: list[Any], item: Item | None
    ) -> bool:
        """Perform one operation if its condition holds; report whether it held."""
        cond = op.condition
        now = self._clock()
        if cond is not None and c.is_contradiction(cond):
            return False
        where = t.key_where()
        if isinstance(op, Put):
            assert item is not None
            return conn.execute(*self._put_sql(t, op, key, item, now)).rowcount == 1
        if cond is not None and c.is_absent_only(cond):
            return self._absent_locked(conn, t, key, now, delete=isinstance(op, Delete))
        if isinstance(op, Delete):
            if cond is None:
                conn.execute(f"DELETE FROM {t.ref} WHERE {where}", key)
                return True
            cond_sql, cond_params = self._condition_sql(cond, now)
            return conn.execute(f"DELETE FROM {t.ref} WHERE {where} AND {cond_sql}", [*key, *cond_params]).rowcount == 1
        assert cond is not None  # a Check always has one
        cond_sql, cond_params = self._condition_sql(cond, now)
        row = conn.execute(f"SELECT {cond_sql} FROM {t.ref} WHERE {where} FOR SHARE", [*cond_params, *key]).fetchone()
        return bool(row and row[0])

    def _put_sql(self, t: _Table, op: Put, key: list[Any], item: Item, now: float) -> tuple[str, list[Any]]:
        """The one statement of a put; it changed exactly one row iff the condition held."""
        cond = op.condition
        doc, expires = Jsonb(item), self._expires(t, item)
        if cond is None or c.is_absent_only(cond):
            cols = ", ".join(t.key_cols)
            marks = ", ".join(["%s"] * len(key))
            sql = (
                f"INSERT INTO {t.ref} AS cur ({cols}, doc, expires) VALUES ({marks}, %s, %s)"
                f" ON CONFLICT ({cols}) DO UPDATE SET doc = EXCLUDED.doc, expires = EXCLUDED.expires"
            )
            params: list[Any] = [*key, doc, expires]
            if cond is not None:
                sql += " WHERE cur.expires < %s"
                params.append(now)
            return sql, params
        cond_sql, cond_params = self._condition_sql(cond, now)
        return (
            f"UPDATE {t.ref} SET doc = %s, expires = %s WHERE {t.key_where()} AND {cond_sql}",
            [doc, expires, *key, *cond_params],
        )

    def _absent_locked(
        self, conn: psycopg.Connection[Any], t: _Table, key: list[Any], now: float, *, delete: bool
    ) -> bool:
        """Whether no live item has ``key``, holding a lock on the key until the transaction ends.

        A missing key cannot be locked, so an already-expired placeholder row is inserted (and
        removed again); a concurrent writer of the key waits on it until this transaction ends.
        """
        cols = ", ".join(t.key_cols)
        marks = ", ".join(["%s"] * len(key))
        where = t.key_where()
        while True:
            inserted = conn.execute(
                f"INSERT INTO {t.ref} ({cols}, doc, expires) VALUES ({marks}, '{{}}', '-infinity')"
                f" ON CONFLICT ({cols}) DO NOTHING",
                key,
            ).rowcount
            if inserted:
                conn.execute(f"DELETE FROM {t.ref} WHERE {where}", key)
                return True
            row = conn.execute(f"SELECT expires FROM {t.ref} WHERE {where} FOR UPDATE", key).fetchone()
            if row is None:
                continue  # deleted between the two statements: try to take the key again
            expired = row[0] is not None and row[0] < now
            if expired and delete:
                conn.execute(f"DELETE FROM {t.ref} WHERE {where}", key)
            return expired

    @staticmethod
    def _condition_sql(cond: Cond, now: float) -> tuple[str, list[Any]]:
        """SQL for a condition that needs a live row (no ``absent`` part)."""
        clauses = [_LIVE]
        params: list[Any] = [now]
        for part in c.parts(cond):
            if part.op == "exists":
                continue
            if part.op == "eq":
                clauses.append("doc -> %s = %s")
                params += [part.attr, Jsonb(c.normalize(part.value))]
            elif part.op == "ne":
                clauses.append("(NOT doc ? %s OR doc -> %s <> %s)")
                params += [part.attr, part.attr, Jsonb(c.normalize(part.value))]
            elif part.op == "attr_absent":
                clauses.append("NOT doc ? %s")
                params.append(part.attr)
            else:
                raise ValueError(f"unexpected condition {part.op!r}")
        return "(" + " AND ".join(clauses) + ")", params

    # -- queries --

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
        t = self._table(table)
        spec = t.spec
        plan = c.plan_query(spec, key, index)
        idx = spec.index(index) if index is not None else None
        where = [f"{t.expr(plan.partition_attr, index=idx)} = %s", _LIVE]
        params: list[Any] = [plan.partition_value, self._clock()]
        if idx is not None:
            where += [f"(doc ->> {_literal(a)}) IS NOT NULL" for a in (idx.partition_key, idx.sort_key) if a]
        if plan.sort_attr is not None and plan.sort_op is not None:
            s = t.expr(plan.sort_attr, index=idx)
            op, v = plan.sort_op, plan.sort_value
            if op == "between":
                where.append(f"{s} BETWEEN %s AND %s")
                params += [v[0], v[1]]
            elif op == "begins_with":
                # A range rather than LIKE: exact under "C" and usable by the index in generic plans.
                where.append(f"{s} >= %s")
                params.append(v)
                bound = _prefix_bound(v)
                if bound is not None:
                    where.append(f"{s} < %s")
                    params.append(bound)
            else:
                where.append(f"{s} {_COMPARATORS[op]} %s")
                params.append(v)
        order = [t.expr(a, index=idx) for a in plan.order_attrs]
        if cursor is not None and order:
            after = c.decode_position(cursor, len(order))
            c.check_position(spec, plan.order_attrs, after)
            where.append(f"({', '.join(order)}) {'<' if descending else '>'} ({', '.join(['%s'] * len(order))})")
            params += after
        direction = " DESC" if descending else ""
        order_by = f" ORDER BY {', '.join(e + direction for e in order)}" if order else ""
        sql = f"SELECT doc FROM {t.ref} WHERE {' AND '.join(where)}{order_by} LIMIT %s"
        params.append(limit + 1)  # one more than the page: the cursor is None exactly at the end
        with self._connection() as conn:
            docs = [row[0] for row in conn.execute(sql, params)]
        if len(docs) <= limit:
            return Page(docs, None)
        page = docs[:limit]
        return Page(page, c.encode_cursor([page[-1][a] for a in plan.order_attrs]))

    # -- transactions --

    def transact(self, operations: Sequence[Operation]) -> None:
        c.check_operations(operations)
        prepared = []
        keys = []
        for op in operations:
            t = self._table(op.table)
            key, item = self._prepare(t, op)
            prepared.append((t, op, key, item))
            keys.append((op.table, dict(zip(t.key_attrs, key, strict=True))))
        c.check_distinct(keys)
        # Every transaction locks rows in the same order, which keeps deadlocks between them rare.
        order = sorted(range(len(prepared)), key=lambda i: json.dumps([prepared[i][0].sql_name, prepared[i][2]]))
        # Puts only (the common case: a record, its audit append, its outbox intent) are one statement
        # each whose row count tells whether its condition held, so together they are ONE statement
        # (``_transact_puts``): one round trip, instead of one per statement plus BEGIN and COMMIT.
        puts_only = all(
            isinstance(op, Put) and (op.condition is None or not c.is_contradiction(op.condition))
            for _, op, _, _ in prepared
        )
        for attempt in range(_RETRIES):
            reasons: list[str | None] = [None] * len(prepared)
            try:
                if puts_only:
                    self._transact_puts(prepared, order, reasons)
                    return
                with self._connection() as conn, conn.transaction():
                    for i in order:
                        t, op, key, item = prepared[i]
                        if not self._apply(conn, t, op, key, item):
                            reasons[i] = c.CONDITION_FAILED
                    if any(reasons):
                        raise _Rollback
                return
            except _Rollback:
                raise TransactionCanceled(reasons) from None
            except (errors.DeadlockDetected, errors.SerializationFailure):
                if attempt == _RETRIES - 1:
                    raise TransactionCanceled(["TransactionConflict"] * len(prepared)) from None
                _backoff(attempt)

    def _transact_puts(
        self,
        prepared: list[tuple[_Table, Operation, list[Any], Item | None]],
        order: list[int],
        reasons: list[str | None],
    ) -> None:
        """Puts only: ONE statement, so one round trip and one statement's work on both sides (it was a
        pipeline of BEGIN, each put and COMMIT). Each put is a data-modifying CTE that returns a row iff its
        condition held; the final SELECT fails the statement (casting a marked text to int) unless every
        one did, which rolls all of them back, and the error's text says which did not. In autocommit a
        statement is its own transaction, and the CTEs run in the order the SELECT reads them: the
        transaction's lock order."""
        now = self._clock()
        parts: list[str] = []
        params: list[Any] = []
        for n, i in enumerate(order):
            t, op, key, item = prepared[i]
            assert isinstance(op, Put) and item is not None
            sql, values = self._put_sql(t, op, key, item, now)
            parts.append(f"w{n} AS ({sql} RETURNING 1)")
            params += values
        counts = [f"(SELECT count(*) FROM w{n})" for n in range(len(order))]
        held = " AND ".join(f"{cnt} = 1" for cnt in counts)
        flags = " || ".join(f"(CASE WHEN {cnt} = 1 THEN '1' ELSE '0' END)" for cnt in counts)
        statement = (
            f"WITH {', '.join(parts)} SELECT CASE WHEN {held} THEN 0"
            f" ELSE ({_literal(_FAILED_MARK)} || {flags})::int END"
        )
        try:
            with self._connection() as conn:
                conn.execute(statement, params)
        except errors.InvalidTextRepresentation as exc:
            message = str(exc.diag.message_primary or "")
            at = message.find(_FAILED_MARK)
            if at < 0:
                raise
            held_flags = message[at + len(_FAILED_MARK) :][: len(order)]
            for n, i in enumerate(order):
                if n >= len(held_flags) or held_flags[n] != "1":
                    reasons[i] = c.CONDITION_FAILED
            raise _Rollback from None

    # -- maintenance --

    def purge_expired(self, table: str, *, batch: int = 1000) -> int:
        """Delete expired rows (DynamoDB's TTL sweeper does this by itself); returns how many."""
        t = self._table(table)
        cols = ", ".join(t.key_cols)
        total = 0
        while True:
            with self._connection() as conn:
                n = conn.execute(
                    f"DELETE FROM {t.ref} WHERE ({cols}) IN (SELECT {cols} FROM {t.ref} WHERE expires < %s"
                    " LIMIT %s FOR UPDATE SKIP LOCKED)",
                    [self._clock(), batch],
                ).rowcount
            total += n
            if n < batch:
                return total


_COMPARATORS = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


def _backoff(attempt: int) -> None:
    time.sleep(random.uniform(0, 0.005 * 2**attempt))
