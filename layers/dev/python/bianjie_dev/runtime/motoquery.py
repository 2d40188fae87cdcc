"""moto's DynamoDB Query and TransactWriteItems without whole-table work (fixes 11 and 12 of ``motoserver``).

11. Queries read their partition. moto answers every Query, on the table or on an index, by sorting
    ``Table.all_items()`` (every item of the table, compared through ``DynamoType.cast_value``, which
    parses each number again) and then keeping the items whose key matches. So each query cost
    O(n log n) in the table's size: a pharmacy's authorization looks a patient up by index in a table that
    holds every prescription. Here the candidates are narrowed before moto sees them: a table query takes
    its partition's items straight from moto's key map (``Table.items[hash]``, the dict moto stores them
    in), an index query keeps the items whose first hash-key attribute matches (one linear pass of
    equality tests, no sort). The narrowed list is sorted as ``all_items`` sorts, then handed to moto's own
    ``query``, which filters, sorts, pages and projects it exactly as before: the candidates it would
    have kept are all there, in the same order.
12. Transactions undo what they wrote. Before ``TransactWriteItems`` moto copied the whole table for each
    operation (fix 2 copied its key maps instead: still O(table), and the audit chain's partition grows
    with every access). Here the items the transaction names are remembered (the item objects, which Put
    and Delete replace rather than change; a deep copy for an ``Update``, which changes its item in
    place), moto's copy becomes the table itself, and on any failure each named key is put back as it
    was (or removed if it was absent), which is all a transaction can have changed.
"""

from __future__ import annotations

import copy
import inspect
import threading
from collections.abc import Callable
from typing import Any

_local = threading.local()  # the narrowed candidates of the query running on this thread


def _sort_key(item: Any) -> Any:
    # all_items' own order
    return (item.hash_key, item.range_key) if item.range_key else item.hash_key


def _unsorted_items(table: Any) -> list[Any]:
    if table.range_key_attr:
        return [item for partition in table.items.values() for item in partition.values()]
    return list(table.items.values())


def query_candidates(
    table: Any, hash_key: Any, index_name: str | None, hash_key_conditions: list[tuple[str, Any]] | None
) -> list[Any] | None:
    """The items moto's ``query`` could keep, in ``all_items`` order; None to let moto read everything."""
    if index_name is None:
        if hash_key is None:
            return None
        partition = table.items.get(hash_key)  # .get: items is a defaultdict, a lookup must not add keys
        if partition is None:
            return []
        found = list(partition.values()) if table.range_key_attr else [partition]
    else:
        if not hash_key_conditions:
            return None
        attr, expected = hash_key_conditions[0]
        found = []
        for item in _unsorted_items(table):
            value = item.attrs.get(attr)
            if value and value == expected:  # moto's own test: present, truthy, equal
                found.append(item)
    found.sort(key=_sort_key)
    return found


def tune_queries() -> None:
    """Fix 11 (idempotent)."""
    from moto.dynamodb.models.table import Table

    if getattr(Table.query, "_bianjie_narrowed", False):
        return
    original_query = Table.query
    original_all_items = Table.all_items

    def all_items(self: Any) -> list[Any]:
        narrowed = getattr(_local, "narrowed", None)
        if narrowed is not None and narrowed[0] is self:
            return list(narrowed[1])
        return original_all_items(self)

    signature = inspect.signature(original_query)

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        # moto's backend passes index_name by position, hash_key_conditions by name: bind both ways
        bound = signature.bind(self, *args, **kwargs).arguments
        candidates = query_candidates(
            self, bound.get("hash_key"), bound.get("index_name"), bound.get("hash_key_conditions")
        )
        if candidates is None:
            return original_query(self, *args, **kwargs)
        previous = getattr(_local, "narrowed", None)
        _local.narrowed = (self, candidates)
        try:
            return original_query(self, *args, **kwargs)
        finally:
            _local.narrowed = previous

    query._bianjie_narrowed = True  # type: ignore[attr-defined]
    Table.query = query  # type: ignore[method-assign]
    Table.all_items = all_items  # type: ignore[method-assign]


def _key_of(table: Any, op_type: str, op: dict[str, Any]) -> tuple[Any, Any] | None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    source = op.get("Item") if op_type == "Put" else op.get("Key")
    if not isinstance(source, dict) or table.hash_key_attr not in source:
        return None  # moto refuses the operation itself
    range_value = None
    if table.range_key_attr is not None:
        if table.range_key_attr not in source:
            return None
        range_value = DynamoType(source[table.range_key_attr])
    return DynamoType(source[table.hash_key_attr]), range_value


def _remember(backend: Any, transact_items: list[dict[str, Any]]) -> list[tuple[Any, Any, Any, Any]]:
    """(table, hash, range, a deep copy of the item or None) for each key the transaction names."""
    saved = []
    for entry in transact_items:
        if not isinstance(entry, dict) or not entry:
            continue
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
        if table is None:
            continue
        key = _key_of(table, op_type, op)
        if key is None:
            continue
        hash_value, range_value = key
        if range_value is not None:
            partition = table.items.get(hash_value)
            current = partition.get(range_value) if partition is not None else None
        else:
            current = table.items.get(hash_value)
        # Put and Delete replace or remove the item object, so the object itself is the old state; only an
        # Update changes it in place
        saved.append((table, hash_value, range_value, copy.deepcopy(current) if op_type == "Update" else current))
    return saved


def _restore(saved: list[tuple[Any, Any, Any, Any]]) -> None:
    # every entry was taken before the transaction wrote anything, so each holds the state before it
    for table, hash_value, range_value, item in reversed(saved):
        if range_value is not None:
            if item is None:
                partition = table.items.get(hash_value)
                if partition is not None:
                    partition.pop(range_value, None)
                    if not partition:
                        del table.items[hash_value]
            else:
                table.items[hash_value][range_value] = item
        elif item is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = item


def tune_transactions(models: Any) -> None:
    """Fix 12 on ``moto.dynamodb.models`` (idempotent)."""
    backend_class = models.DynamoDBBackend
    if getattr(backend_class.transact_write_items, "_bianjie_undo", False):
        return
    original: Callable[..., None] = backend_class.transact_write_items

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = _remember(self, transact_items)
        try:
            original(self, transact_items)
        except BaseException:
            # moto has "restored" each table from its copy, which is the table itself; undo the writes
            _restore(saved)
            raise

    transact_write_items._bianjie_undo = True  # type: ignore[attr-defined]
    backend_class.transact_write_items = transact_write_items
