"""What every documents adapter shares: value normalisation, key and query validation, condition
evaluation on a Python item, TTL, cursors. One implementation so the adapters cannot drift apart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeGuard

from bianjie.kit.documents.port import (
    MAX_TRANSACT_OPERATIONS,
    Check,
    Cond,
    Delete,
    Key,
    KeyCond,
    Operation,
    Put,
    TableSpec,
)
from bianjie.kit.encoding import b64url, b64url_decode
from bianjie.kit.errors import InvalidCursor

CONDITION_FAILED = "ConditionalCheckFailed"


def is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_text(text: str) -> str:
    """Refuse what one backend cannot store, on every backend: NUL (jsonb, PostgreSQL text) and lone
    surrogates (not encodable as UTF-8)."""
    if not text.isascii():
        text.encode("utf-8")  # UnicodeEncodeError is a ValueError
    if "\x00" in text:
        raise ValueError("strings must not contain NUL characters")
    return text


def normalize(value: Any) -> Any:
    """A fresh JSON-like copy of ``value`` with DynamoDB's number model: integral numbers become int."""
    # exact types first: nearly every value is one of these, and this runs for every attribute of every
    # write (a hot spot in the charge profile); subclasses (IntEnum, StrEnum, OrderedDict) take the long way
    kind = type(value)
    if kind is str:
        return check_text(value)
    if kind is int or value is None or kind is bool:
        return value
    if kind is dict:
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"attribute names must be str, got {k!r}")
            out[check_text(k)] = normalize(v)
        return out
    if kind is list:
        return [normalize(v) for v in value]
    if isinstance(value, str):
        return check_text(str(value))
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)  # an IntEnum or other int subclass must not leak into storage
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"numbers must be finite, got {value!r}")
        return int(value) if value.is_integer() else value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"numbers must be finite, got {value!r}")
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"attribute names must be str, got {k!r}")
            out[check_text(k)] = normalize(v)
        return out
    if isinstance(value, list | tuple):
        return [normalize(v) for v in value]
    raise ValueError(f"unsupported value type {type(value).__name__}")


def copy_value(value: Any) -> Any:
    """A deep copy of an already normalised value (cheaper than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return {k: copy_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_value(v) for v in value]
    return value


def values_equal(a: Any, b: Any) -> bool:
    """Equality as DynamoDB and jsonb see it: numbers by value, bool apart from numbers, deep."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if is_number(a) or is_number(b):
        return is_number(a) and is_number(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(values_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def is_expired(item: Mapping[str, Any], spec: TableSpec, now: float) -> bool:
    if not spec.ttl_attribute:
        return False
    ttl = item.get(spec.ttl_attribute)
    return is_number(ttl) and ttl < now


def check_key_value(spec: TableSpec, attr: str, value: Any) -> None:
    kind = spec.key_types.get(attr, "S")
    if kind == "S":
        if not isinstance(value, str) or value == "":
            raise ValueError(f"{spec.name}: key attribute {attr} must be a non-empty str, got {value!r}")
    elif not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{spec.name}: key attribute {attr} must be an int, got {value!r}")


def check_item(spec: TableSpec, item: Mapping[str, Any]) -> None:
    """Reject what DynamoDB rejects: missing or mistyped table keys, mistyped index keys."""
    for attr in (spec.partition_key, spec.sort_key):
        if attr is None:
            continue
        if attr not in item:
            raise ValueError(f"{spec.name}: item lacks key attribute {attr}")
        check_key_value(spec, attr, item[attr])
    for idx in spec.indexes:
        for attr in (idx.partition_key, idx.sort_key):
            if attr is not None and attr in item:
                check_key_value(spec, attr, item[attr])
    # DynamoDB would silently never expire a non-number TTL; refusing it keeps a typo from turning
    # a nonce or idempotency record into a permanent one.
    ttl = spec.ttl_attribute
    if ttl and ttl in item and not is_number(item[ttl]):
        raise ValueError(f"{spec.name}: TTL attribute {ttl} must be a number (epoch seconds), got {item[ttl]!r}")


def check_key(spec: TableSpec, key: Key) -> dict[str, Any]:
    """The key exactly as the table's schema names it, validated."""
    wanted = {spec.partition_key} | ({spec.sort_key} if spec.sort_key else set())
    if set(key) != wanted:
        raise ValueError(f"{spec.name}: key must have exactly {sorted(wanted)}, got {sorted(key)}")
    for attr in wanted:
        check_key_value(spec, attr, key[attr])
    return {attr: key[attr] for attr in wanted}


def in_index(item: Mapping[str, Any], spec: TableSpec, index: str | None) -> bool:
    if index is None:
        return True
    idx = spec.index(index)
    return idx.partition_key in item and (idx.sort_key is None or idx.sort_key in item)


# --- conditions ---------------------------------------------------------------------------


def parts(cond: Cond) -> tuple[Cond, ...]:
    return cond._flat()


def is_absent_only(cond: Cond) -> bool:
    return all(p.op == "absent" for p in parts(cond))


def is_contradiction(cond: Cond) -> bool:
    """``absent`` together with any other part: every other part needs a live item."""
    ops = {p.op for p in parts(cond)}
    return "absent" in ops and ops != {"absent"}


def evaluate(cond: Cond, item: Mapping[str, Any] | None, spec: TableSpec, now: float) -> bool:
    live = item is not None and not is_expired(item, spec, now)
    for part in parts(cond):
        if part.op == "absent":
            ok = not live
        elif not live:
            ok = False
        elif part.op == "exists":
            ok = True
        elif part.op == "eq":
            ok = part.attr in item and values_equal(item[part.attr], normalize(part.value))  # type: ignore[operator,index]
        elif part.op == "ne":
            ok = part.attr not in item or not values_equal(item[part.attr], normalize(part.value))  # type: ignore[operator,index]
        elif part.op == "attr_absent":
            ok = part.attr not in item  # type: ignore[operator]
        else:
            raise ValueError(f"unknown condition {part.op!r}")
        if not ok:
            return False
    return True


# --- queries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueryPlan:
    """A validated query: which key attributes it reads and how results are ordered."""

    partition_attr: str
    partition_value: Any
    sort_attr: str | None
    sort_op: str | None
    sort_value: Any
    # Attributes whose values order the results within the partition and make each position
    # unique: the sort key of the table or index, then the table key (index keys need not be unique).
    order_attrs: tuple[str, ...]


def plan_query(spec: TableSpec, key: KeyCond, index: str | None) -> QueryPlan:
    if index is None:
        pk, sk = spec.partition_key, spec.sort_key
    else:
        idx = spec.index(index)
        pk, sk = idx.partition_key, idx.sort_key
    attr, value = key.partition
    if attr != pk:
        raise ValueError(f"{spec.name}: query must select on partition key {pk}, not {attr}")
    check_key_value(spec, pk, value)
    sort_op = sort_value = None
    if key.sort is not None:
        s_attr, sort_op, sort_value = key.sort
        if s_attr != sk:
            raise ValueError(f"{spec.name}: sort condition must be on sort key {sk}, not {s_attr}")
        if sort_op == "between":
            low, high = sort_value
            check_key_value(spec, s_attr, low)
            check_key_value(spec, s_attr, high)
            if low > high:
                raise ValueError(f"{spec.name}: between needs low <= high, got {low!r} > {high!r}")
        elif sort_op == "begins_with":
            if spec.key_types.get(s_attr, "S") != "S":
                raise ValueError(f"{spec.name}: begins_with needs a string sort key, {s_attr} is a number")
            check_key_value(spec, s_attr, sort_value)
        else:
            check_key_value(spec, s_attr, sort_value)
    # The partition attribute is fixed by the query, so it adds nothing to a position (and leaving it
    # out lets PostgreSQL use its index for the cursor's range).
    order = [a for a in (sk, spec.partition_key, spec.sort_key) if a and a != pk]
    return QueryPlan(pk, value, sk, sort_op, sort_value, tuple(dict.fromkeys(order)))


def sort_matches(plan: QueryPlan, value: Any) -> bool:
    op, target = plan.sort_op, plan.sort_value
    if op is None:
        return True
    # Python compares str by code point, which is the order of their UTF-8 bytes (DynamoDB's order).
    if op == "eq":
        return value == target
    if op == "lt":
        return value < target
    if op == "le":
        return value <= target
    if op == "gt":
        return value > target
    if op == "ge":
        return value >= target
    if op == "between":
        return target[0] <= value <= target[1]
    if op == "begins_with":
        return value.startswith(target)
    raise ValueError(f"unknown sort condition {op!r}")


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")


def encode_cursor(values: Sequence[Any] | Mapping[str, Any]) -> str:
    raw = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
    return b64url(raw)


def decode_cursor(cursor: str) -> Any:
    try:
        return json.loads(b64url_decode(cursor))
    except (ValueError, TypeError) as exc:
        raise InvalidCursor() from exc


def decode_position(cursor: str, width: int) -> tuple[Any, ...]:
    values = decode_cursor(cursor)
    if not isinstance(values, list) or len(values) != width:
        raise InvalidCursor()
    return tuple(values)


def check_position(spec: TableSpec, attrs: Sequence[str], values: Sequence[Any]) -> None:
    """A decoded cursor's values must have the types of the key attributes they stand for."""
    for attr, value in zip(attrs, values, strict=True):
        try:
            check_key_value(spec, attr, value)
        except ValueError:
            raise InvalidCursor() from None


# --- transactions -------------------------------------------------------------------------


def op_key(spec: TableSpec, op: Operation) -> dict[str, Any]:
    if isinstance(op, Put):
        check_item(spec, op.item)
        return spec.key_of(op.item)
    return check_key(spec, op.key)


def check_operations(operations: Sequence[Operation]) -> None:
    if not operations:
        raise ValueError("transact needs at least one operation")
    if len(operations) > MAX_TRANSACT_OPERATIONS:
        raise ValueError(f"transact takes at most {MAX_TRANSACT_OPERATIONS} operations")
    for op in operations:
        if not isinstance(op, Put | Delete | Check):
            raise ValueError(f"not a transaction operation: {op!r}")


def check_distinct(keys: Sequence[tuple[str, Mapping[Any, Any]]]) -> None:
    seen: set[str] = set()
    for table, key in keys:
        marker = json.dumps([table, sorted(key.items())], default=str)
        if marker in seen:
            raise ValueError(f"transact names the item {key} of {table} more than once")
        seen.add(marker)
