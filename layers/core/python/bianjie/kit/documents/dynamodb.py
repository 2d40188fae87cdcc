"""DynamoDB adapter (AWS, and the local stack on moto), over a boto3 low-level client.

    store = DynamoDocumentStore(boto3.client("dynamodb", endpoint_url=...))

The store needs only table names. It learns each table's key schema and TTL attribute once, by
DescribeTable and DescribeTimeToLive (so a function's role needs both actions besides the item
actions), unless ``ensure_table`` or ``register`` told it first.

Values are converted by hand rather than with boto3's TypeSerializer: that one refuses float and
returns Decimal, and a single direct pass is faster on the hot path.

Retried conditional writes. The SDK retries a call whose answer was lost (a read timeout, a reset
connection) although the first attempt may have been applied; the retry then fails its own condition
(the item already exists, the version already moved) and a write that happened would be reported as a
conflict. Found by the e-prescription benchmark: 4 of 13,000 calls answered NONCE_REPLAYED or
RX_CONCURRENT_UPDATE for writes that had landed, after the 10 s read timeout under load. So when a
conditional write fails *on a retried attempt*, the store reads back what is there, and if every item
it was putting is stored exactly as it wrote it, the write was its own and it reports success.
Transactions also carry a ClientRequestToken, with which DynamoDB itself answers a retry with the first
attempt's success (moto ignores it; the read-back covers moto). Items that claim something (a nonce, an
idempotency key) carry a random token, so another caller's write can never look like one's own. A
conditional delete retried after a lost answer that finds no item reports success: the item is gone.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from bianjie.kit.documents import _common as c
from bianjie.kit.documents.port import (
    Check,
    Cond,
    ConditionFailed,
    Delete,
    IndexSpec,
    Item,
    Key,
    KeyCond,
    KeyType,
    Operation,
    Page,
    Put,
    TableNotFound,
    TableSpec,
    TransactionCanceled,
)
from bianjie.kit.errors import InvalidCursor

AttrValue = dict[str, Any]
log = logging.getLogger(__name__)
_CONFLICT_RETRIES = 5


# --- values -------------------------------------------------------------------------------


def to_attr(value: Any) -> AttrValue:
    """A Python value as a DynamoDB AttributeValue (validating as ``_common.normalize`` does)."""
    t = type(value)
    if t is str:
        return {"S": c.check_text(value)}
    if t is bool:
        return {"BOOL": value}
    if t is int:
        return {"N": str(value)}
    if value is None:
        return {"NULL": True}
    if t is dict:
        return {"M": {_name(k): to_attr(v) for k, v in value.items()}}
    if t is list or t is tuple:
        return {"L": [to_attr(v) for v in value]}
    normal = c.normalize(value)  # float, Decimal, int subclasses, other mappings
    if type(normal) is float:
        return {"N": repr(normal)}
    return to_attr(normal)


def _name(key: Any) -> str:
    if not isinstance(key, str):
        raise ValueError(f"attribute names must be str, got {key!r}")
    return c.check_text(key)


def to_item(item: Mapping[str, Any]) -> dict[str, AttrValue]:
    return {_name(k): to_attr(v) for k, v in item.items()}


def _number(text: str) -> int | float:
    if "." not in text and "e" not in text and "E" not in text:
        return int(text)
    d = Decimal(text)
    # DynamoDB keeps no float/int distinction (it returns 2.0 as "2"), so integral means int.
    return int(d) if d == d.to_integral_value() else float(text)


def from_attr(attr: AttrValue) -> Any:
    ((kind, v),) = attr.items()
    if kind == "S":
        return v
    if kind == "N":
        return _number(v)
    if kind == "BOOL":
        return v
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: from_attr(x) for k, x in v.items()}
    if kind == "L":
        return [from_attr(x) for x in v]
    # Written by other tools: sets become sorted lists, binary stays bytes.
    if kind == "SS":
        return sorted(v)
    if kind == "NS":
        return sorted(_number(x) for x in v)
    if kind == "B":
        return bytes(v)
    if kind == "BS":
        return sorted(bytes(x) for x in v)
    raise ValueError(f"unknown DynamoDB type {kind}")


def from_item(item: Mapping[str, AttrValue]) -> Item:
    return {k: from_attr(v) for k, v in item.items()}


# --- expressions --------------------------------------------------------------------------


class _Expr:
    """Collects placeholders so every attribute name and value travels out of band."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, AttrValue] = {}
        self._by_name: dict[str, str] = {}

    def name(self, attr: str) -> str:
        ph = self._by_name.get(attr)
        if ph is None:
            ph = self._by_name[attr] = f"#n{len(self._by_name)}"
            self.names[ph] = attr
        return ph

    def value(self, value: Any) -> str:
        return self.raw_value(to_attr(value))

    def raw_value(self, attr: AttrValue) -> str:
        ph = f":v{len(self.values)}"
        self.values[ph] = attr
        return ph

    def into(self, params: dict[str, Any]) -> dict[str, Any]:
        if self.names:
            params["ExpressionAttributeNames"] = self.names
        if self.values:
            params["ExpressionAttributeValues"] = self.values
        return params


def condition_expression(spec: TableSpec, cond: Cond, ex: _Expr, now: float) -> str:
    pk = ex.name(spec.partition_key)
    expired = None
    if spec.ttl_attribute:
        # A missing TTL makes the comparison false: such an item never expires.
        expired = f"{ex.name(spec.ttl_attribute)} < {ex.value(now)}"
    clauses: list[str] = []
    needs_live = False
    for part in c.parts(cond):
        if part.op == "absent":
            clauses.append(f"(attribute_not_exists({pk}) OR {expired})" if expired else f"attribute_not_exists({pk})")
            continue
        needs_live = True
        if part.op == "exists":
            continue
        attr = ex.name(part.attr)  # type: ignore[arg-type]
        if part.op in ("eq", "ne"):
            value = to_attr(part.value)
            # The explicit type test costs DynamoDB nothing and keeps emulators that compare
            # across types (moto: true = 1) to DynamoDB's rule that different types are unequal.
            same_type = f"attribute_type({attr}, {ex.value(next(iter(value)))})"
            # NULL has one value, so its type test is the whole comparison.
            equal = same_type if "NULL" in value else f"({same_type} AND {attr} = {ex.raw_value(value)})"
            if part.op == "eq":
                clauses.append(equal)
            else:
                clauses.append(f"(attribute_not_exists({attr}) OR NOT {equal})")
        elif part.op == "attr_absent":
            clauses.append(f"attribute_not_exists({attr})")
        else:
            raise ValueError(f"unknown condition {part.op!r}")
    if needs_live:
        live = [f"attribute_exists({pk})"] + ([f"(NOT ({expired}))"] if expired else [])
        clauses = live + clauses
    return " AND ".join(clauses)


def _key_condition(plan: c.QueryPlan, ex: _Expr) -> str:
    expr = f"{ex.name(plan.partition_attr)} = {ex.value(plan.partition_value)}"
    if plan.sort_op is None:
        return expr
    s = ex.name(plan.sort_attr)  # type: ignore[arg-type]
    op, v = plan.sort_op, plan.sort_value
    if op == "between":
        clause = f"{s} BETWEEN {ex.value(v[0])} AND {ex.value(v[1])}"
    elif op == "begins_with":
        clause = f"begins_with({s}, {ex.value(v)})"
    else:
        clause = f"{s} {_COMPARATORS[op]} {ex.value(v)}"
    return f"{expr} AND {clause}"


_COMPARATORS = {"eq": "=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}


# --- errors -------------------------------------------------------------------------------


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return response.get("Error", {}).get("Code")
    return None


def _translate(exc: Exception, table: str | None = None) -> Exception:
    code = _error_code(exc)
    if code == "ConditionalCheckFailedException":
        return ConditionFailed(f"{table}: condition failed")
    if code == "ResourceNotFoundException":
        return TableNotFound(table or str(exc))
    if code == "ValidationException":
        return ValueError(str(exc))
    return exc


def _cancellation_reasons(exc: Exception, count: int) -> list[str | None]:
    response = getattr(exc, "response", {}) or {}
    raw = response.get("CancellationReasons")
    if raw:
        codes = [r.get("Code") for r in raw]
    else:
        # Older servers put the reasons only in the message: "... reasons [None, ConditionalCheckFailed]".
        message = str(response.get("Error", {}).get("Message", ""))
        inside = message[message.rfind("[") + 1 : message.rfind("]")]
        codes = [p.strip() for p in inside.split(",")] if inside else []
    reasons: list[str | None] = [None if code in (None, "None") else code for code in codes]
    return reasons if len(reasons) == count else [*reasons, *[None] * (count - len(reasons))][:count]


# --- the store ----------------------------------------------------------------------------


class DynamoDocumentStore:
    def __init__(
        self,
        client: Any,
        *,
        known: Iterable[TableSpec] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._clock = clock
        self._specs: dict[str, TableSpec] = {}
        self._lock = threading.Lock()
        for spec in known:
            self.register(spec)

    def register(self, spec: TableSpec) -> None:
        """Tell the store a table's schema, sparing the Describe calls (and the IAM actions)."""
        with self._lock:
            self._specs[spec.name] = spec

    # -- schema --

    def spec(self, table: str) -> TableSpec:
        spec = self._specs.get(table)
        if spec is None:
            spec = self._describe(table)
            with self._lock:
                spec = self._specs.setdefault(table, spec)
        return spec

    def _describe(self, table: str) -> TableSpec:
        try:
            desc = self._client.describe_table(TableName=table)["Table"]
            ttl_desc = self._client.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
        except Exception as exc:
            if _error_code(exc) in ("AccessDeniedException", "AccessDenied"):
                # SAM's DynamoDBCrudPolicy/ReadPolicy grant DescribeTable but not DescribeTimeToLive.
                raise PermissionError(
                    f"{table}: the documents store needs dynamodb:DescribeTable and dynamodb:DescribeTimeToLive"
                    " on the table to learn its keys and TTL (or register() the table's spec)"
                ) from exc
            raise _translate(exc, table) from exc
        types: dict[str, KeyType] = {d["AttributeName"]: d["AttributeType"] for d in desc["AttributeDefinitions"]}

        def keys(schema: list[dict[str, str]]) -> tuple[str, str | None]:
            by_type = {k["KeyType"]: k["AttributeName"] for k in schema}
            return by_type["HASH"], by_type.get("RANGE")

        pk, sk = keys(desc["KeySchema"])
        indexes = tuple(
            IndexSpec(idx["IndexName"], *keys(idx["KeySchema"]))
            for idx in [*desc.get("GlobalSecondaryIndexes", []), *desc.get("LocalSecondaryIndexes", [])]
        )
        ttl = ttl_desc.get("AttributeName") if ttl_desc.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") else None
        return TableSpec(table, pk, sk, types, indexes, ttl)

    def ensure_table(self, spec: TableSpec) -> None:
        client = self._client
        key_attrs = [spec.partition_key, spec.sort_key]
        for idx in spec.indexes:
            key_attrs += [idx.partition_key, idx.sort_key]
        attrs = [
            {"AttributeName": a, "AttributeType": spec.key_types.get(a, "S")}
            for a in dict.fromkeys(a for a in key_attrs if a)
        ]
        params: dict[str, Any] = {
            "TableName": spec.name,
            "KeySchema": _key_schema(spec.partition_key, spec.sort_key),
            "AttributeDefinitions": attrs,
            "BillingMode": "PAY_PER_REQUEST",
        }
        if spec.indexes:
            params["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": idx.name,
                    "KeySchema": _key_schema(idx.partition_key, idx.sort_key),
                    "Projection": {"ProjectionType": "ALL"},
                }
                for idx in spec.indexes
            ]
        try:
            client.create_table(**params)
        except Exception as exc:
            if _error_code(exc) != "ResourceInUseException":
                raise _translate(exc, spec.name) from exc
        client.get_waiter("table_exists").wait(TableName=spec.name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        if spec.ttl_attribute:
            ttl = client.describe_time_to_live(TableName=spec.name)["TimeToLiveDescription"]
            if ttl.get("AttributeName") != spec.ttl_attribute or ttl.get("TimeToLiveStatus") not in (
                "ENABLED",
                "ENABLING",
            ):
                client.update_time_to_live(
                    TableName=spec.name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
                )
        self.register(spec)

    # -- items --

    def get(self, table: str, key: Key) -> Item | None:
        spec = self.spec(table)
        try:
            out = self._client.get_item(TableName=table, Key=to_item(c.check_key(spec, key)), ConsistentRead=True)
        except Exception as exc:
            raise _translate(exc, table) from exc
        raw = out.get("Item")
        if raw is None:
            return None
        item = from_item(raw)
        return None if c.is_expired(item, spec, self._clock()) else item

    def put(self, table: str, item: Item, *, condition: Cond | None = None) -> None:
        params = self._put_params(Put(table, item, condition))
        if condition is not None:
            params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            self._client.put_item(**params)
        except Exception as exc:
            if _retried_condition_failure(exc) and _same(getattr(exc, "response", {}).get("Item"), params["Item"]):
                log.warning("lost answer recovered: a retried put found its own write", extra={"table": table})
                return  # an earlier attempt of this call was applied; only its answer was lost
            raise _translate(exc, table) from exc

    def delete(self, table: str, key: Key, *, condition: Cond | None = None) -> None:
        params = self._delete_params(Delete(table, key, condition))
        if condition is not None:
            params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        try:
            self._client.delete_item(**params)
        except Exception as exc:
            # a retried delete that finds nothing: the item is gone, which is what the caller asked for
            if _retried_condition_failure(exc) and not getattr(exc, "response", {}).get("Item"):
                log.warning("lost answer recovered: a retried delete found the item gone", extra={"table": table})
                return
            raise _translate(exc, table) from exc

    def _put_params(self, op: Put) -> dict[str, Any]:
        spec = self.spec(op.table)
        item = to_item(op.item)
        c.check_item(spec, op.item)
        return self._with_condition(spec, {"TableName": op.table, "Item": item}, op.condition)

    def _delete_params(self, op: Delete | Check) -> dict[str, Any]:
        spec = self.spec(op.table)
        key = to_item(c.check_key(spec, op.key))
        return self._with_condition(spec, {"TableName": op.table, "Key": key}, op.condition)

    def _with_condition(self, spec: TableSpec, params: dict[str, Any], cond: Cond | None) -> dict[str, Any]:
        if cond is None:
            return params
        ex = _Expr()
        params["ConditionExpression"] = condition_expression(spec, cond, ex, self._clock())
        return ex.into(params)

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
        spec = self.spec(table)
        plan = c.plan_query(spec, key, index)
        ex = _Expr()
        params: dict[str, Any] = {
            "TableName": table,
            "KeyConditionExpression": _key_condition(plan, ex),
            "ScanIndexForward": not descending,
            # Index reads cannot be strongly consistent in DynamoDB; table reads can, so they are.
            "ConsistentRead": index is None,
        }
        if index is not None:
            params["IndexName"] = index
        if spec.ttl_attribute:
            params["FilterExpression"] = f"NOT ({ex.name(spec.ttl_attribute)} < {ex.value(self._clock())})"
        ex.into(params)
        position_attrs = self._position_attrs(spec, index)
        if cursor is not None:
            start = c.decode_cursor(cursor)
            if not isinstance(start, dict) or set(start) != set(position_attrs):
                raise InvalidCursor()
            c.check_position(spec, position_attrs, [start[a] for a in position_attrs])
            if start[plan.partition_attr] != plan.partition_value:
                raise InvalidCursor()  # another query's cursor: DynamoDB would answer ValidationException
            params["ExclusiveStartKey"] = to_item(start)
        # Read one item beyond the page so the cursor is None exactly when nothing more exists;
        # the filter (TTL) may thin a response, hence the loop.
        items: list[Item] = []
        while len(items) <= limit:
            params["Limit"] = limit + 1 - len(items)
            try:
                out = self._client.query(**params)
            except Exception as exc:
                raise _translate(exc, table) from exc
            items.extend(from_item(raw) for raw in out.get("Items", ()))
            last = out.get("LastEvaluatedKey")
            if not last:
                break
            params["ExclusiveStartKey"] = last
        if len(items) <= limit:
            return Page(items, None)
        page = items[:limit]
        return Page(page, c.encode_cursor({a: page[-1][a] for a in position_attrs}))

    @staticmethod
    def _position_attrs(spec: TableSpec, index: str | None) -> tuple[str, ...]:
        attrs = [spec.partition_key, spec.sort_key]
        if index is not None:
            idx = spec.index(index)
            attrs += [idx.partition_key, idx.sort_key]
        return tuple(dict.fromkeys(a for a in attrs if a))

    def transact(self, operations: Sequence[Operation]) -> None:
        c.check_operations(operations)
        items: list[dict[str, Any]] = []
        keys: list[tuple[str, Item]] = []
        for op in operations:
            spec = self.spec(op.table)
            keys.append((op.table, c.op_key(spec, op)))
            if isinstance(op, Put):
                items.append({"Put": self._put_params(op)})
            elif isinstance(op, Delete):
                items.append({"Delete": self._delete_params(op)})
            else:
                items.append({"ConditionCheck": self._delete_params(op)})
        c.check_distinct(keys)
        for attempt in range(_CONFLICT_RETRIES):
            try:
                # one token per attempt of ours; the SDK's own retries of this call resend the same one
                self._client.transact_write_items(TransactItems=items, ClientRequestToken=uuid.uuid4().hex)
                return
            except Exception as exc:
                if _error_code(exc) != "TransactionCanceledException":
                    raise _translate(exc) from exc
                if _retried(exc) and self._landed(operations):
                    log.warning(
                        "lost answer recovered: a retried transaction found its own writes",
                        extra={"tables": sorted({op.table for op in operations})},
                    )
                    return  # an earlier attempt of this call was applied; only its answer was lost
                reasons = _cancellation_reasons(exc, len(operations))
                # A conflict with a concurrent transaction says nothing about the conditions and
                # nothing was applied, so try again (PostgreSQL retries its deadlocks the same way).
                retry = set(reasons) <= {None, "TransactionConflict"} and attempt < _CONFLICT_RETRIES - 1
                if not retry:
                    raise TransactionCanceled(reasons) from exc
            time.sleep(random.uniform(0, 0.01 * 2**attempt))

    def _landed(self, operations: Sequence[Operation]) -> bool:
        """True when every item the transaction puts is stored exactly as written (it is atomic, so
        then it was applied). A transaction without puts cannot be told apart and reports its failure."""
        puts = [op for op in operations if isinstance(op, Put)]
        if not puts:
            return False
        for op in puts:
            spec = self.spec(op.table)
            out = self._client.get_item(TableName=op.table, Key=to_item(c.op_key(spec, op)), ConsistentRead=True)
            if not _same(out.get("Item"), to_item(op.item)):
                return False
        return True


def _retried(exc: BaseException) -> bool:
    response = getattr(exc, "response", None) or {}
    return int(response.get("ResponseMetadata", {}).get("RetryAttempts", 0) or 0) > 0


def _retried_condition_failure(exc: BaseException) -> bool:
    return _error_code(exc) == "ConditionalCheckFailedException" and _retried(exc)


def _same(stored: Mapping[str, Any] | None, written: Mapping[str, Any]) -> bool:
    # compared decoded: DynamoDB normalises numbers ("1.0" is stored as "1")
    return stored is not None and from_item(stored) == from_item(written)


def _key_schema(pk: str, sk: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": pk, "KeyType": "HASH"}]
    if sk:
        schema.append({"AttributeName": sk, "KeyType": "RANGE"})
    return schema
