"""The documents port's contract (see ``bianjie/kit/documents/port.py``), held against every adapter:
memory, DynamoDB (moto) and PostgreSQL (a real server). A test here states what domain code may rely
on, whichever adapter runs underneath.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from bianjie.kit.documents import (
    MAX_TRANSACT_OPERATIONS,
    Check,
    Cond,
    ConditionFailed,
    Delete,
    IndexSpec,
    KeyCond,
    Page,
    Put,
    TableNotFound,
    TableSpec,
    TransactionCanceled,
)
from bianjie.kit.encoding import b64url
from bianjie.kit.errors import InvalidCursor

from tests.contract.conftest import Backend

CCF = "ConditionalCheckFailed"


def name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def spec(
    *,
    sort_type: str = "S",
    ttl: bool = True,
    indexes: tuple[IndexSpec, ...] = (),
    index_types: dict[str, str] | None = None,
    sort_key: str | None = "sk",
) -> TableSpec:
    types = {"pk": "S", **({"sk": sort_type} if sort_key else {}), **(index_types or {})}
    return TableSpec(name(), "pk", sort_key, types, indexes, "expires_at" if ttl else None)  # type: ignore[arg-type]


def past() -> int:
    return int(time.time()) - 3600


def future() -> int:
    return int(time.time()) + 3600


def all_pages(fetch: Callable[[str | None], Page]) -> list[Page]:
    pages = [fetch(None)]
    while pages[-1].cursor is not None:
        pages.append(fetch(pages[-1].cursor))
        assert len(pages) < 1000, "cursor never ends"
    return pages


# --- get / put / delete -------------------------------------------------------------------


def test_get_missing_is_none(backend: Backend) -> None:
    t = backend.table(spec())
    assert backend.store.get(t, {"pk": "nobody", "sk": "x"}) is None


def test_put_get_delete(backend: Backend) -> None:
    t = backend.table(spec())
    store = backend.store
    store.put(t, {"pk": "a", "sk": "1", "v": "first"})
    assert store.get(t, {"pk": "a", "sk": "1"}) == {"pk": "a", "sk": "1", "v": "first"}
    store.put(t, {"pk": "a", "sk": "1", "w": 2})  # replaces the whole item
    assert store.get(t, {"pk": "a", "sk": "1"}) == {"pk": "a", "sk": "1", "w": 2}
    store.delete(t, {"pk": "a", "sk": "1"})
    assert store.get(t, {"pk": "a", "sk": "1"}) is None
    store.delete(t, {"pk": "a", "sk": "1"})  # deleting what is gone is not an error


def test_table_without_sort_key(backend: Backend) -> None:
    t = backend.table(spec(sort_key=None))
    store = backend.store
    store.put(t, {"pk": "only", "v": 1})
    assert store.get(t, {"pk": "only"}) == {"pk": "only", "v": 1}
    page = store.query(t, KeyCond.of("pk", "only"))
    assert page == Page([{"pk": "only", "v": 1}], None)
    store.put(t, {"pk": "only", "v": 2}, condition=Cond.eq("v", 1))
    store.delete(t, {"pk": "only"}, condition=Cond.exists())
    assert store.get(t, {"pk": "only"}) is None


VALUES: dict[str, Any] = {
    "int": 42,
    "negative": -7,
    "zero": 0,
    "big_int": 2**62 + 1,
    "float": 3.14159,
    "tenth": 0.1,
    "tiny": 1.5e-7,
    "precise": 0.30000000000000004,
    "many_digits": 123456.789012345,
    "neg_float": -2.5,
    "true": True,
    "false": False,
    "none": None,
    "text": "挂号 café ✓ 𝄞",
    "empty_text": "",
    "empty_list": [],
    "empty_map": {},
    "list": [1, 2.5, "x", None, True, [1, [2]], {"k": "v"}],
    "nested": {"a": {"b": {"c": [1, {"d": None, "e": False, "f": 0.5}]}}, "n": -1},
}


def test_values_round_trip_exactly(backend: Backend) -> None:
    t = backend.table(spec())
    item = {"pk": "v", "sk": "1", **VALUES}
    backend.store.put(t, item)
    got = backend.store.get(t, {"pk": "v", "sk": "1"})
    assert got == item
    assert _types(got) == _types(item)  # bool stays bool, int stays int, float stays float
    assert backend.store.query(t, KeyCond.of("pk", "v")).items == [item]


def _types(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__


def test_integral_floats_come_back_as_int(backend: Backend) -> None:
    """DynamoDB keeps no int/float distinction; every adapter normalises as it does."""
    t = backend.table(spec())
    backend.store.put(t, {"pk": "f", "sk": "1", "a": 2.0, "b": [1.0, -0.0], "c": 1.25e20})
    got = backend.store.get(t, {"pk": "f", "sk": "1"})
    assert got == {"pk": "f", "sk": "1", "a": 2, "b": [1, 0], "c": 125 * 10**18}
    assert type(got["a"]) is int and type(got["c"]) is int  # type: ignore[index]


def test_returned_items_are_copies(backend: Backend) -> None:
    t = backend.table(spec())
    item = {"pk": "c", "sk": "1", "list": [1], "map": {"k": 1}}
    backend.store.put(t, item)
    item["list"].append(2)  # type: ignore[attr-defined]
    got = backend.store.get(t, {"pk": "c", "sk": "1"})
    assert got is not None
    got["map"]["k"] = 99
    assert backend.store.get(t, {"pk": "c", "sk": "1"}) == {"pk": "c", "sk": "1", "list": [1], "map": {"k": 1}}


# --- conditions ---------------------------------------------------------------------------

LIVE_ITEM = {"pk": "k", "sk": "1", "status": "new", "n": 1, "flag": True, "nul": None, "tags": ["a", 1], "m": {"x": 1}}

# (condition, holds on a missing item, holds on the live item, holds on an expired item)
CONDITIONS: list[tuple[str, Cond, bool, bool, bool]] = [
    ("absent", Cond.absent(), True, False, True),
    ("exists", Cond.exists(), False, True, False),
    ("eq", Cond.eq("status", "new"), False, True, False),
    ("eq-other-value", Cond.eq("status", "old"), False, False, False),
    ("eq-missing-attr", Cond.eq("nope", "new"), False, False, False),
    ("eq-number-by-value", Cond.eq("n", 1.0), False, True, False),
    ("eq-bool-is-not-number", Cond.eq("n", True), False, False, False),
    ("eq-number-is-not-bool", Cond.eq("flag", 1), False, False, False),
    ("eq-bool", Cond.eq("flag", True), False, True, False),
    ("eq-type-matters", Cond.eq("n", "1"), False, False, False),
    ("eq-map", Cond.eq("m", {"x": 1.0}), False, True, False),
    ("eq-null", Cond.eq("nul", None), False, True, False),
    ("eq-null-vs-value", Cond.eq("status", None), False, False, False),
    ("ne-null", Cond.ne("nul", None), False, False, False),
    ("ne-null-vs-value", Cond.ne("status", None), False, True, False),
    ("eq-list", Cond.eq("tags", ["a", 1]), False, True, False),
    ("ne", Cond.ne("status", "old"), False, True, False),
    ("ne-same-value", Cond.ne("status", "new"), False, False, False),
    ("ne-missing-attr", Cond.ne("nope", "x"), False, True, False),
    ("ne-number-by-value", Cond.ne("n", 1.0), False, False, False),
    ("ne-bool-vs-number", Cond.ne("n", True), False, True, False),
    ("ne-list", Cond.ne("tags", ["a", 2]), False, True, False),
    ("attr-absent", Cond.attr_absent("nope"), False, True, False),
    ("attr-absent-present", Cond.attr_absent("status"), False, False, False),
    ("attr-absent-null-is-present", Cond.attr_absent("nul"), False, False, False),
    ("and", Cond.eq("status", "new") & Cond.attr_absent("nope") & Cond.ne("n", 2), False, True, False),
    ("and-one-false", Cond.eq("status", "new") & Cond.ne("n", 1), False, False, False),
    ("and-exists", Cond.exists() & Cond.eq("n", 1), False, True, False),
    ("absent-and-exists", Cond.absent() & Cond.exists(), False, False, False),
    ("absent-and-eq", Cond.absent() & Cond.eq("status", "new"), False, False, False),
    ("absent-and-absent", Cond.absent() & Cond.absent(), True, False, True),
]
STATES = ["missing", "live", "expired"]
each_condition = pytest.mark.parametrize(
    ("cond", "on_missing", "on_live", "on_expired"), [pytest.param(*case[1:], id=case[0]) for case in CONDITIONS]
)


def _setup_state(backend: Backend, state: str) -> tuple[str, dict[str, Any] | None]:
    t = backend.table(spec())
    before: dict[str, Any] | None = None
    if state == "live":
        before = {**LIVE_ITEM, "expires_at": future()}
    elif state == "expired":
        before = {**LIVE_ITEM, "expires_at": past()}
    if before is not None:
        backend.store.put(t, before)
    return t, before


def _raw(backend: Backend, t: str) -> dict[str, Any] | None:
    """The stored item, expired or not."""
    return backend.peek(t, {"pk": "k", "sk": "1"})


@pytest.mark.parametrize("state", STATES)
@each_condition
def test_conditional_put(
    backend: Backend, state: str, cond: Cond, on_missing: bool, on_live: bool, on_expired: bool
) -> None:
    holds = {"missing": on_missing, "live": on_live, "expired": on_expired}[state]
    t, _ = _setup_state(backend, state)
    before = _raw(backend, t)
    new = {"pk": "k", "sk": "1", "status": "written"}
    if holds:
        backend.store.put(t, new, condition=cond)
        assert _raw(backend, t) == new
    else:
        with pytest.raises(ConditionFailed):
            backend.store.put(t, new, condition=cond)
        assert _raw(backend, t) == before  # unchanged


@pytest.mark.parametrize("state", STATES)
@each_condition
def test_conditional_delete(
    backend: Backend, state: str, cond: Cond, on_missing: bool, on_live: bool, on_expired: bool
) -> None:
    holds = {"missing": on_missing, "live": on_live, "expired": on_expired}[state]
    t, _ = _setup_state(backend, state)
    before = _raw(backend, t)
    if holds:
        backend.store.delete(t, {"pk": "k", "sk": "1"}, condition=cond)
        assert _raw(backend, t) is None  # an expired item that met the condition is gone, not hidden
    else:
        with pytest.raises(ConditionFailed):
            backend.store.delete(t, {"pk": "k", "sk": "1"}, condition=cond)
        assert _raw(backend, t) == before


@pytest.mark.parametrize("state", STATES)
@each_condition
def test_check_in_transaction(
    backend: Backend, state: str, cond: Cond, on_missing: bool, on_live: bool, on_expired: bool
) -> None:
    holds = {"missing": on_missing, "live": on_live, "expired": on_expired}[state]
    t, _ = _setup_state(backend, state)
    before = _raw(backend, t)
    ops = [Check(t, {"pk": "k", "sk": "1"}, cond), Put(t, {"pk": "other", "sk": "1"})]
    if holds:
        backend.store.transact(ops)
        assert backend.store.get(t, {"pk": "other", "sk": "1"}) == {"pk": "other", "sk": "1"}
    else:
        with pytest.raises(TransactionCanceled) as err:
            backend.store.transact(ops)
        assert err.value.reasons == [CCF, None]
        assert backend.store.get(t, {"pk": "other", "sk": "1"}) is None
    assert _raw(backend, t) == before  # a check never writes


# --- TTL ----------------------------------------------------------------------------------


def test_expired_items_are_invisible(backend: Backend) -> None:
    idx = IndexSpec("by_owner", "owner", "sk")
    t = backend.table(spec(indexes=(idx,), index_types={"owner": "S"}))
    store = backend.store
    store.put(t, {"pk": "p", "sk": "old", "owner": "o", "expires_at": past()})
    store.put(t, {"pk": "p", "sk": "new", "owner": "o", "expires_at": future()})
    store.put(t, {"pk": "p", "sk": "plain", "owner": "o"})
    store.put(t, {"pk": "p", "sk": "float", "owner": "o", "expires_at": time.time() - 1.5})
    assert store.get(t, {"pk": "p", "sk": "old"}) is None
    assert store.get(t, {"pk": "p", "sk": "float"}) is None
    assert store.get(t, {"pk": "p", "sk": "new"}) is not None
    assert [i["sk"] for i in store.query(t, KeyCond.of("pk", "p")).items] == ["new", "plain"]
    assert [i["sk"] for i in store.query(t, KeyCond.of("owner", "o"), index="by_owner").items] == ["new", "plain"]


def test_absent_succeeds_over_an_expired_item(backend: Backend) -> None:
    """A nonce or idempotency key can be reused once its TTL has passed."""
    t = backend.table(spec())
    store = backend.store
    store.put(t, {"pk": "nonce", "sk": "n1", "expires_at": past()})
    store.put(t, {"pk": "nonce", "sk": "n1", "expires_at": future(), "round": 2}, condition=Cond.absent())
    with pytest.raises(ConditionFailed):
        store.put(t, {"pk": "nonce", "sk": "n1", "expires_at": future(), "round": 3}, condition=Cond.absent())
    assert store.get(t, {"pk": "nonce", "sk": "n1"})["round"] == 2  # type: ignore[index]


def test_paging_skips_expired_items_without_short_pages(backend: Backend) -> None:
    t = backend.table(spec(sort_type="N"))
    for i in range(40):
        backend.store.put(t, {"pk": "p", "sk": i, "expires_at": past() if i % 3 else future()})
    live = [i for i in range(40) if i % 3 == 0]
    pages = all_pages(lambda cur: backend.store.query(t, KeyCond.of("pk", "p"), limit=4, cursor=cur))
    assert [len(p.items) for p in pages] == [4, 4, 4, 2]
    assert [i["sk"] for p in pages for i in p.items] == live


def test_table_without_ttl_never_expires(backend: Backend) -> None:
    t = backend.table(spec(ttl=False))
    backend.store.put(t, {"pk": "p", "sk": "1", "expires_at": past()})
    assert backend.store.get(t, {"pk": "p", "sk": "1"}) is not None
    with pytest.raises(ConditionFailed):
        backend.store.put(t, {"pk": "p", "sk": "1"}, condition=Cond.absent())


# --- query --------------------------------------------------------------------------------

STRING_KEYS = ["a", "ab", "abc", "b", "ba", "c", "d", "e"]
INT_KEYS = [-5, 0, 2, 3, 10, 11, 100, 250]
# (label, build the KeyCond's sort part, predicate on a sort value), for str and int keys.
SORT_CASES_S: list[tuple[str, Callable[[KeyCond, str], KeyCond], Callable[[Any], bool]]] = [
    ("none", lambda k, a: k, lambda v: True),
    ("eq", lambda k, a: k.eq(a, "b"), lambda v: v == "b"),
    ("lt", lambda k, a: k.lt(a, "b"), lambda v: v < "b"),
    ("le", lambda k, a: k.le(a, "b"), lambda v: v <= "b"),
    ("gt", lambda k, a: k.gt(a, "b"), lambda v: v > "b"),
    ("ge", lambda k, a: k.ge(a, "b"), lambda v: v >= "b"),
    ("between", lambda k, a: k.between(a, "ab", "ba"), lambda v: "ab" <= v <= "ba"),
    ("begins_with", lambda k, a: k.begins_with(a, "ab"), lambda v: v.startswith("ab")),
]
SORT_CASES_N: list[tuple[str, Callable[[KeyCond, str], KeyCond], Callable[[Any], bool]]] = [
    ("none", lambda k, a: k, lambda v: True),
    ("eq", lambda k, a: k.eq(a, 10), lambda v: v == 10),
    ("lt", lambda k, a: k.lt(a, 10), lambda v: v < 10),
    ("le", lambda k, a: k.le(a, 10), lambda v: v <= 10),
    ("gt", lambda k, a: k.gt(a, 10), lambda v: v > 10),
    ("ge", lambda k, a: k.ge(a, 10), lambda v: v >= 10),
    ("between", lambda k, a: k.between(a, 0, 11), lambda v: 0 <= v <= 11),
]


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_query_table_every_sort_operator(backend: Backend, descending: bool) -> None:
    t_s = backend.table(spec())
    t_n = backend.table(spec(sort_type="N"))
    store = backend.store
    for k in STRING_KEYS:
        store.put(t_s, {"pk": "p", "sk": k})
        store.put(t_s, {"pk": "q", "sk": k})  # another partition, never returned
    for k in INT_KEYS:
        store.put(t_n, {"pk": "p", "sk": k})
    for table, keys, cases in ((t_s, STRING_KEYS, SORT_CASES_S), (t_n, INT_KEYS, SORT_CASES_N)):
        for label, build, pred in cases:
            page = store.query(table, build(KeyCond.of("pk", "p"), "sk"), descending=descending)
            want = sorted((k for k in keys if pred(k)), reverse=descending)
            assert [i["sk"] for i in page.items] == want, label
            assert page.cursor is None


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_query_index_every_sort_operator(backend: Backend, descending: bool) -> None:
    by_s = IndexSpec("by_owner_name", "owner", "name")
    by_n = IndexSpec("by_owner_rank", "owner", "rank")
    t = backend.table(spec(indexes=(by_s, by_n), index_types={"owner": "S", "name": "S", "rank": "N"}))
    store = backend.store
    for i, (s, n) in enumerate(zip(STRING_KEYS, INT_KEYS, strict=True)):
        store.put(t, {"pk": f"item{i}", "sk": "x", "owner": "o", "name": s, "rank": n})
        store.put(t, {"pk": f"other{i}", "sk": "x", "owner": "other", "name": s, "rank": n})
    for index, attr, keys, cases in (
        ("by_owner_name", "name", STRING_KEYS, SORT_CASES_S),
        ("by_owner_rank", "rank", INT_KEYS, SORT_CASES_N),
    ):
        for label, build, pred in cases:
            page = store.query(t, build(KeyCond.of("owner", "o"), attr), index=index, descending=descending)
            want = sorted((k for k in keys if pred(k)), reverse=descending)
            assert [i[attr] for i in page.items] == want, f"{index} {label}"
            assert all(i["owner"] == "o" for i in page.items)


def test_index_is_sparse(backend: Backend) -> None:
    idx = IndexSpec("by_owner", "owner", "when")
    t = backend.table(spec(indexes=(idx,), index_types={"owner": "S", "when": "N"}))
    store = backend.store
    store.put(t, {"pk": "1", "sk": "x", "owner": "o", "when": 1})
    store.put(t, {"pk": "2", "sk": "x", "owner": "o"})  # no sort key of the index
    store.put(t, {"pk": "3", "sk": "x", "when": 3})  # no partition key of the index
    page = store.query(t, KeyCond.of("owner", "o"), index="by_owner")
    assert [i["pk"] for i in page.items] == ["1"]


def test_index_keys_need_not_be_unique(backend: Backend) -> None:
    idx = IndexSpec("by_day", "day", "slot")
    t = backend.table(spec(indexes=(idx,), index_types={"day": "S", "slot": "N"}))
    for i in range(30):
        backend.store.put(t, {"pk": f"p{i:02}", "sk": "x", "day": "d", "slot": i % 3})
    for descending in (False, True):
        pages = all_pages(
            lambda cur, d=descending: backend.store.query(
                t, KeyCond.of("day", "d"), index="by_day", limit=4, cursor=cur, descending=d
            )
        )
        items = [i for p in pages for i in p.items]
        assert sorted(i["pk"] for i in items) == [f"p{i:02}" for i in range(30)]  # each exactly once
        slots = [i["slot"] for i in items]
        assert slots == sorted(slots, reverse=descending)


def test_index_keyed_by_table_keys(backend: Backend) -> None:
    """Indexes that reuse the table's own keys, like an inverted index (sk, pk) or (kind, pk)."""
    inverted = IndexSpec("inverted", "sk", "pk")
    by_kind = IndexSpec("by_kind", "kind", "pk")
    t = backend.table(spec(indexes=(inverted, by_kind), index_types={"kind": "S"}))
    for p in ("c", "a", "b", "d"):
        for s_ in ("2", "1"):
            backend.store.put(t, {"pk": p, "sk": s_, "kind": "k"})
    pages = all_pages(
        lambda cur: backend.store.query(t, KeyCond.of("sk", "1").gt("pk", "a"), index="inverted", limit=2, cursor=cur)
    )
    assert [i["pk"] for p in pages for i in p.items] == ["b", "c", "d"]
    pages = all_pages(lambda cur: backend.store.query(t, KeyCond.of("kind", "k"), index="by_kind", limit=3, cursor=cur))
    items = [(i["pk"], i["sk"]) for p in pages for i in p.items]
    assert sorted(items) == [(p, s_) for p in "abcd" for s_ in "12"]  # each exactly once
    assert [pk for pk, _ in items] == sorted(pk for pk, _ in items)


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
@pytest.mark.parametrize("limit", [50, 7])
def test_paging_over_250_items(backend: Backend, limit: int, descending: bool) -> None:
    idx = IndexSpec("by_group", "group", "seq")
    t = backend.table(spec(sort_type="N", indexes=(idx,), index_types={"group": "S", "seq": "N"}))
    store = backend.store
    for i in range(250):
        store.put(t, {"pk": "p", "sk": i, "group": "g", "seq": 1000 - i})
    want = sorted(range(250), reverse=descending)
    for index, key in ((None, KeyCond.of("pk", "p")), ("by_group", KeyCond.of("group", "g"))):
        pages = all_pages(
            lambda cur, i=index, k=key: store.query(t, k, index=i, limit=limit, cursor=cur, descending=descending)
        )
        assert [len(p.items) for p in pages] == [limit] * (250 // limit) + ([250 % limit] if 250 % limit else [])
        got = [i["sk"] for p in pages for i in p.items]
        assert got == (want if index is None else sorted(range(250), reverse=not descending)), index


def test_cursor_is_none_exactly_at_the_end(backend: Backend) -> None:
    t = backend.table(spec(sort_type="N"))
    for i in range(10):
        backend.store.put(t, {"pk": "p", "sk": i})
    first = backend.store.query(t, KeyCond.of("pk", "p"), limit=5)
    assert first.cursor is not None
    second = backend.store.query(t, KeyCond.of("pk", "p"), limit=5, cursor=first.cursor)
    assert [i["sk"] for i in second.items] == [5, 6, 7, 8, 9]
    assert second.cursor is None
    assert backend.store.query(t, KeyCond.of("pk", "p"), limit=10).cursor is None
    assert backend.store.query(t, KeyCond.of("pk", "p"), limit=11).cursor is None
    assert backend.store.query(t, KeyCond.of("pk", "nobody")) == Page([], None)


@pytest.mark.parametrize(
    "cursor",
    [
        "abc",  # not base64url JSON
        "%%%",
        b64url(b"[]"),  # JSON of the wrong shape
        b64url(b'{"x": 1}'),
        b64url(b'["one", "two", "three"]'),
        b64url(b'[{"pk": "p"}]'),
    ],
)
def test_a_cursor_this_listing_did_not_hand_out_is_refused(backend: Backend, cursor: str) -> None:
    t = backend.table(spec(sort_type="N"))
    for i in range(4):
        backend.store.put(t, {"pk": "p", "sk": i})
    with pytest.raises(InvalidCursor):
        backend.store.query(t, KeyCond.of("pk", "p"), limit=2, cursor=cursor)


def test_a_cursor_of_another_listing_is_refused(backend: Backend) -> None:
    numbers = backend.table(spec(sort_type="N"))
    words = backend.table(spec(sort_type="S"))
    for i in range(4):
        backend.store.put(numbers, {"pk": "p", "sk": i})
        backend.store.put(words, {"pk": "p", "sk": f"w{i}"})
    foreign = backend.store.query(words, KeyCond.of("pk", "p"), limit=2).cursor
    assert foreign is not None
    with pytest.raises(InvalidCursor):  # a string where the listing's sort key is a number
        backend.store.query(numbers, KeyCond.of("pk", "p"), limit=2, cursor=foreign)


def test_cursor_works_on_a_fresh_store_instance(backend: Backend) -> None:
    t = backend.table(spec(sort_type="N"))
    for i in range(6):
        backend.store.put(t, {"pk": "p", "sk": i})
    first = backend.store.query(t, KeyCond.of("pk", "p"), limit=3)
    rest = backend.fresh().query(t, KeyCond.of("pk", "p"), limit=3, cursor=first.cursor)
    assert [i["sk"] for i in rest.items] == [3, 4, 5]


# Byte order of UTF-8: "Z" (5A) < "a" (61) < "é" (C3 A9) < "中" (E4 B8 AD) < "ｚ" (EF BD 9A), and a
# supplementary character (F0 ...) sorts last, unlike UTF-16 order, where it sorts before "ｚ".
UNICODE_KEYS = ["中", "a", "Z", "é", "aa", "a b", "𝄞", "ｚ", "A", "中国", "0", "~", "ä"]


@pytest.mark.parametrize("descending", [False, True], ids=["asc", "desc"])
def test_string_sort_keys_order_by_utf8_bytes(backend: Backend, descending: bool) -> None:
    idx = IndexSpec("by_owner", "owner", "label")
    t = backend.table(spec(indexes=(idx,), index_types={"owner": "S", "label": "S"}))
    for i, k in enumerate(UNICODE_KEYS):
        backend.store.put(t, {"pk": "p", "sk": k, "owner": "o", "label": k, "i": i})
    want = sorted(UNICODE_KEYS, key=lambda s: s.encode("utf-8"), reverse=descending)
    page = backend.store.query(t, KeyCond.of("pk", "p"), descending=descending)
    assert [i["sk"] for i in page.items] == want
    page = backend.store.query(t, KeyCond.of("owner", "o"), index="by_owner", descending=descending)
    assert [i["label"] for i in page.items] == want
    page = backend.store.query(t, KeyCond.of("pk", "p").between("sk", "Z", "é"), descending=descending)
    assert [i["sk"] for i in page.items] == [k for k in want if b"Z" <= k.encode() <= "é".encode()]
    page = backend.store.query(t, KeyCond.of("pk", "p").begins_with("sk", "中"))
    assert [i["sk"] for i in page.items] == ["中", "中国"]
    page = backend.store.query(t, KeyCond.of("pk", "p").gt("sk", "中"))
    assert [i["sk"] for i in page.items] == ["中国", "ｚ", "𝄞"]


def test_begins_with_edges(backend: Backend) -> None:
    t = backend.table(spec())
    keys = ["a", "a%b", "a_b", "axb", "a\ud7ff", "a\ud7ffz", "a\ue000", "a\U0010ffff", "a\U0010ffffz", "b"]
    for k in keys:
        backend.store.put(t, {"pk": "p", "sk": k})

    def starting(prefix: str) -> list[str]:
        return [i["sk"] for i in backend.store.query(t, KeyCond.of("pk", "p").begins_with("sk", prefix)).items]

    assert starting("a_") == ["a_b"]  # no LIKE wildcards
    assert starting("a%") == ["a%b"]
    assert starting("a\ud7ff") == ["a\ud7ff", "a\ud7ffz"]  # the next code point skips the surrogates
    assert starting("a\U0010ffff") == ["a\U0010ffff", "a\U0010ffffz"]  # no code point above
    assert starting("b") == ["b"]
    assert starting("c") == []


def test_int_sort_keys_order_numerically(backend: Backend) -> None:
    idx = IndexSpec("by_owner", "owner", "rank")
    t = backend.table(spec(sort_type="N", indexes=(idx,), index_types={"owner": "S", "rank": "N"}))
    keys = [10, 2, 1, -5, 100, 0, 9, 2**40]
    for k in keys:
        backend.store.put(t, {"pk": "p", "sk": k, "owner": "o", "rank": k})
    assert [i["sk"] for i in backend.store.query(t, KeyCond.of("pk", "p")).items] == sorted(keys)
    got = backend.store.query(t, KeyCond.of("owner", "o"), index="by_owner").items
    assert [i["rank"] for i in got] == sorted(keys)
    assert [i["sk"] for i in backend.store.query(t, KeyCond.of("pk", "p").lt("sk", 10)).items] == [-5, 0, 1, 2, 9]


# --- transactions -------------------------------------------------------------------------


def test_transact_applies_everything(backend: Backend) -> None:
    t1 = backend.table(spec())
    t2 = backend.table(spec(sort_type="N"))
    store = backend.store
    store.put(t1, {"pk": "a", "sk": "1", "v": 1})
    store.put(t1, {"pk": "b", "sk": "1", "v": 1})
    store.put(t2, {"pk": "c", "sk": 1, "state": "open"})
    store.transact(
        [
            Put(t1, {"pk": "a", "sk": "1", "v": 2}, Cond.eq("v", 1)),
            Put(t1, {"pk": "new", "sk": "1"}, Cond.absent()),
            Delete(t1, {"pk": "b", "sk": "1"}, Cond.exists()),
            Check(t2, {"pk": "c", "sk": 1}, Cond.eq("state", "open")),
            Put(t2, {"pk": "d", "sk": 2}),
        ]
    )
    assert store.get(t1, {"pk": "a", "sk": "1"}) == {"pk": "a", "sk": "1", "v": 2}
    assert store.get(t1, {"pk": "new", "sk": "1"}) == {"pk": "new", "sk": "1"}
    assert store.get(t1, {"pk": "b", "sk": "1"}) is None
    assert store.get(t2, {"pk": "d", "sk": 2}) == {"pk": "d", "sk": 2}


def test_transact_is_atomic_and_reports_each_operation(backend: Backend) -> None:
    t = backend.table(spec())
    store = backend.store
    store.put(t, {"pk": "a", "sk": "1", "v": 1})
    store.put(t, {"pk": "b", "sk": "1", "v": 1})
    store.put(t, {"pk": "c", "sk": "1", "v": 1})
    ops = [
        Put(t, {"pk": "a", "sk": "1", "v": 2}, Cond.eq("v", 1)),  # would succeed
        Put(t, {"pk": "b", "sk": "1", "v": 2}, Cond.absent()),  # fails: b exists
        Delete(t, {"pk": "c", "sk": "1"}),  # would succeed
        Put(t, {"pk": "d", "sk": "1"}),  # would succeed
        Check(t, {"pk": "c", "sk": "2"}, Cond.exists()),  # fails: no such item
    ]
    with pytest.raises(TransactionCanceled) as err:
        store.transact(ops)
    assert err.value.reasons == [None, CCF, None, None, CCF]
    assert store.get(t, {"pk": "a", "sk": "1"}) == {"pk": "a", "sk": "1", "v": 1}
    assert store.get(t, {"pk": "b", "sk": "1"}) == {"pk": "b", "sk": "1", "v": 1}
    assert store.get(t, {"pk": "c", "sk": "1"}) == {"pk": "c", "sk": "1", "v": 1}
    assert store.get(t, {"pk": "d", "sk": "1"}) is None


def test_transact_of_puts_only_is_atomic_and_reports_each_put(backend: Backend) -> None:
    # puts only is the hot path (a record with its audit append and its outbox intents): PostgreSQL runs
    # it as one statement, so which put failed must still come back in the operations' own order
    t = backend.table(spec())
    store = backend.store
    store.put(t, {"pk": "z", "sk": "1", "v": 1})
    store.put(t, {"pk": "a", "sk": "1", "v": 1})
    ops = [
        Put(t, {"pk": "z", "sk": "1", "v": 2}, Cond.eq("v", 1)),  # would succeed (sorts last)
        Put(t, {"pk": "a", "sk": "1", "v": 2}, Cond.absent()),  # fails: a exists
        Put(t, {"pk": "m", "sk": "1"}),  # would succeed
        Put(t, {"pk": "n", "sk": "1", "v": 2}, Cond.eq("v", 1)),  # fails: no such item
    ]
    with pytest.raises(TransactionCanceled) as err:
        store.transact(ops)
    assert err.value.reasons == [None, CCF, None, CCF]
    assert store.get(t, {"pk": "z", "sk": "1"}) == {"pk": "z", "sk": "1", "v": 1}
    assert store.get(t, {"pk": "a", "sk": "1"}) == {"pk": "a", "sk": "1", "v": 1}
    assert store.get(t, {"pk": "m", "sk": "1"}) is None
    assert store.get(t, {"pk": "n", "sk": "1"}) is None
    store.transact([ops[0], ops[2], Put(t, {"pk": "a", "sk": "1", "v": 3}, Cond.eq("v", 1))])
    assert store.get(t, {"pk": "z", "sk": "1"}) == {"pk": "z", "sk": "1", "v": 2}
    assert store.get(t, {"pk": "m", "sk": "1"}) == {"pk": "m", "sk": "1"}
    assert store.get(t, {"pk": "a", "sk": "1"}) == {"pk": "a", "sk": "1", "v": 3}


def test_transact_limits(backend: Backend) -> None:
    t = backend.table(spec())
    many = [Put(t, {"pk": "p", "sk": str(i)}) for i in range(MAX_TRANSACT_OPERATIONS + 1)]
    with pytest.raises(ValueError):
        backend.store.transact(many)
    backend.store.transact(many[:MAX_TRANSACT_OPERATIONS])
    assert len(backend.store.query(t, KeyCond.of("pk", "p")).items) == MAX_TRANSACT_OPERATIONS
    with pytest.raises(ValueError):
        backend.store.transact([Put(t, {"pk": "x", "sk": "1"}), Delete(t, {"pk": "x", "sk": "1"})])
    with pytest.raises(ValueError):
        backend.store.transact([])


# --- concurrency --------------------------------------------------------------------------


def _race(n: int, attempt: Callable[[int], None]) -> list[int]:
    """Run ``attempt(i)`` for i in range(n) on n threads released together; return who succeeded."""
    barrier = threading.Barrier(n)
    winners: list[int] = []
    failures: list[BaseException] = []
    guard = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            attempt(i)
        except (ConditionFailed, TransactionCanceled):
            return
        except BaseException as exc:  # surfaced below: any other error fails the test
            with guard:
                failures.append(exc)
            return
        with guard:
            winners.append(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert not failures, failures
    return winners


def test_concurrent_conditional_puts_have_one_winner(backend: Backend) -> None:
    t = backend.table(spec())
    store = backend.store

    def attempt(i: int) -> None:
        store.put(t, {"pk": "race", "sk": "1", "owner": i, "expires_at": future()}, condition=Cond.absent())

    winners = _race(20, attempt)
    assert len(winners) == 1
    assert store.get(t, {"pk": "race", "sk": "1"})["owner"] == winners[0]  # type: ignore[index]


def test_concurrent_puts_over_an_expired_item_have_one_winner(backend: Backend) -> None:
    t = backend.table(spec())
    store = backend.store
    store.put(t, {"pk": "race", "sk": "1", "owner": -1, "expires_at": past()})

    def attempt(i: int) -> None:
        store.put(t, {"pk": "race", "sk": "1", "owner": i, "expires_at": future()}, condition=Cond.absent())

    winners = _race(20, attempt)
    assert len(winners) == 1
    assert store.get(t, {"pk": "race", "sk": "1"})["owner"] == winners[0]  # type: ignore[index]


def test_concurrent_compare_and_set_has_one_winner(backend: Backend) -> None:
    t = backend.table(spec())
    store = backend.store
    store.put(t, {"pk": "c", "sk": "1", "version": 0})

    def attempt(i: int) -> None:
        store.put(t, {"pk": "c", "sk": "1", "version": 1, "by": i}, condition=Cond.eq("version", 0))

    winners = _race(20, attempt)
    assert len(winners) == 1
    assert store.get(t, {"pk": "c", "sk": "1"}) == {"pk": "c", "sk": "1", "version": 1, "by": winners[0]}


def test_concurrent_transactions_have_one_winner(backend: Backend) -> None:
    t = backend.table(spec())
    store = backend.store

    def attempt(i: int) -> None:
        store.transact(
            [
                Put(t, {"pk": "claim", "sk": "1", "by": i}, Cond.absent()),
                Put(t, {"pk": "log", "sk": f"{i:02}"}),
            ]
        )

    winners = _race(20, attempt)
    assert len(winners) == 1
    assert store.get(t, {"pk": "claim", "sk": "1"}) == {"pk": "claim", "sk": "1", "by": winners[0]}
    assert [i["sk"] for i in store.query(t, KeyCond.of("pk", "log")).items] == [f"{winners[0]:02}"]


def test_write_skew_is_impossible(backend: Backend) -> None:
    """Two transactions that each check the other's key is absent and write their own: at most one
    commits, as in DynamoDB's serializable transactions."""
    t = backend.table(spec())
    store = backend.store
    for round_ in range(5):
        a, b = {"pk": f"a{round_}", "sk": "1"}, {"pk": f"b{round_}", "sk": "1"}

        def attempt(i: int, a: dict[str, Any] = a, b: dict[str, Any] = b) -> None:
            mine, theirs = (a, b) if i % 2 == 0 else (b, a)
            store.transact([Check(t, theirs, Cond.absent()), Put(t, mine, Cond.absent())])

        _race(2, attempt)
        present = [store.get(t, a) is not None, store.get(t, b) is not None]
        assert present.count(True) <= 1, present


# --- schema and misuse --------------------------------------------------------------------


def test_ensure_table_is_idempotent_and_a_fresh_store_learns_the_schema(backend: Backend) -> None:
    idx = IndexSpec("by_owner", "owner", "sk")
    s = spec(indexes=(idx,), index_types={"owner": "S"})
    t = backend.table(s)
    backend.store.ensure_table(s)
    backend.store.put(t, {"pk": "p", "sk": "old", "owner": "o", "expires_at": past()})
    backend.store.put(t, {"pk": "p", "sk": "new", "owner": "o"})
    fresh = backend.fresh()
    assert fresh.get(t, {"pk": "p", "sk": "old"}) is None  # it knows the TTL attribute
    assert [i["sk"] for i in fresh.query(t, KeyCond.of("owner", "o"), index="by_owner").items] == ["new"]
    fresh.put(t, {"pk": "p", "sk": "old"}, condition=Cond.absent())


def test_unknown_table(backend: Backend) -> None:
    with pytest.raises(TableNotFound):
        backend.store.get(name("missing"), {"pk": "x"})
    with pytest.raises(TableNotFound):
        backend.store.put(name("missing"), {"pk": "x"})


@pytest.mark.parametrize(
    "item",
    [
        {"sk": "1"},  # no partition key
        {"pk": "p"},  # no sort key
        {"pk": 1, "sk": "1"},  # partition key of the wrong type
        {"pk": "p", "sk": 1},  # sort key of the wrong type
        {"pk": "", "sk": "1"},  # empty key string
        {"pk": True, "sk": "1"},  # bool is not a key type
        {"pk": "p", "sk": "1", "owner": 5},  # index key of the wrong type
        {"pk": "p", "sk": "1", "expires_at": "tomorrow"},  # TTL must be a number
        {"pk": "p", "sk": "1", "v": float("nan")},
        {"pk": "p", "sk": "1", "v": float("inf")},
        {"pk": "p", "sk": "1", "v": {1, 2}},
        {"pk": "p", "sk": "1", "v": "nul\x00byte"},  # jsonb cannot hold NUL
        {"pk": "p", "sk": "1", "v": "lone \ud800 surrogate"},  # not UTF-8
        {"pk": "p", "sk": "1", "v": {"k\x00": 1}},
        {"pk": "p", "sk": "1", 1: "non-str name"},
        {"pk": "p", "sk": "1", "v": b"bytes"},
    ],
    ids=lambda item: repr(item)[:40],
)
def test_invalid_items_are_rejected(backend: Backend, item: dict[str, Any]) -> None:
    t = backend.table(spec(indexes=(IndexSpec("by_owner", "owner", "sk"),), index_types={"owner": "S"}))
    with pytest.raises(ValueError):
        backend.store.put(t, item)
    with pytest.raises(ValueError):
        backend.store.transact([Put(t, item)])


def test_invalid_keys_and_queries_are_rejected(backend: Backend) -> None:
    t = backend.table(spec(sort_type="N", indexes=(IndexSpec("by_owner", "owner", "sk"),), index_types={"owner": "S"}))
    store = backend.store
    for key in ({"pk": "p"}, {"pk": "p", "sk": 1, "extra": 1}, {"pk": "p", "sk": "1"}):
        with pytest.raises(ValueError):
            store.get(t, key)
        with pytest.raises(ValueError):
            store.delete(t, key)
    bad_queries: list[tuple[KeyCond, str | None]] = [
        (KeyCond.of("sk", 1), None),  # not the partition key
        (KeyCond.of("pk", "p").eq("other", 1), None),  # not the sort key
        (KeyCond.of("pk", "p").begins_with("sk", "1"), None),  # begins_with on a number
        (KeyCond.of("pk", "p").between("sk", 5, 1), None),  # empty range
        (KeyCond.of("pk", "p").gt("sk", "1"), None),  # wrong type
        (KeyCond.of("pk", "p"), "by_owner"),  # index has another partition key
    ]
    for key, index in bad_queries:
        with pytest.raises(ValueError):
            store.query(t, key, index=index)
    with pytest.raises(ValueError):
        store.query(t, KeyCond.of("pk", "p"), limit=0)
    with pytest.raises(ValueError):
        store.query(t, KeyCond.of("pk", "p"), cursor="not a cursor!")
    with pytest.raises(KeyError):
        store.query(t, KeyCond.of("owner", "o"), index="no_such_index")


# --- adapter specifics --------------------------------------------------------------------
# Not part of the contract: what one adapter adds (PostgreSQL migrates, names and purges tables).


def test_postgres_migrates_names_and_purges(postgres_dsn: str) -> None:
    from bianjie.kit.documents.postgres import PostgresDocumentStore

    store = PostgresDocumentStore(postgres_dsn, max_connections=2)
    try:
        # Physical names from CloudFormation can exceed PostgreSQL's 63-byte identifiers.
        long_name = f"bianjie-prod-PrescriptionsTable-{uuid.uuid4().hex}.v2-{'x' * 40}"
        base = TableSpec(long_name, "pk", "sk", {"pk": "S", "sk": "N"})
        store.ensure_table(base)
        store.put(long_name, {"pk": "p", "sk": 1, "it's %s": "a", "exp": time.time() - 10})
        store.put(long_name, {"pk": "p", "sk": 2, "it's %s": "b", "exp": time.time() + 3600})
        assert len(store.query(long_name, KeyCond.of("pk", "p")).items) == 2  # no TTL yet

        # Later the template adds an index (on an awkward attribute name) and a TTL.
        migrated = TableSpec(
            long_name,
            "pk",
            "sk",
            {"pk": "S", "sk": "N", "it's %s": "S"},
            (IndexSpec("odd", "it's %s", "sk"),),
            "exp",
        )
        store.ensure_table(migrated)
        fresh = PostgresDocumentStore(postgres_dsn, max_connections=1)
        try:
            assert [i["sk"] for i in fresh.query(long_name, KeyCond.of("pk", "p")).items] == [2]
            assert [i["sk"] for i in fresh.query(long_name, KeyCond.of("it's %s", "b"), index="odd").items] == [2]
        finally:
            fresh.close()
        with pytest.raises(ValueError):
            store.ensure_table(TableSpec(long_name, "pk", None, {"pk": "S"}))
        assert store.purge_expired(long_name) == 1
        assert store.query(long_name, KeyCond.of("pk", "p")).items[0]["sk"] == 2
    finally:
        store.close()


def test_dynamodb_register_spares_the_describe_calls(moto_dynamodb: Any) -> None:
    from bianjie.kit.documents.dynamodb import DynamoDocumentStore

    s = spec()
    DynamoDocumentStore(moto_dynamodb).ensure_table(s)
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    moto_dynamodb.meta.events.register("before-call.dynamodb.*", record)
    try:
        store = DynamoDocumentStore(moto_dynamodb, known=[s])
        store.put(s.name, {"pk": "p", "sk": "1"}, condition=Cond.absent())
        assert store.get(s.name, {"pk": "p", "sk": "1"}) == {"pk": "p", "sk": "1"}
    finally:
        moto_dynamodb.meta.events.unregister("before-call.dynamodb.*", record)
    assert calls == ["PutItem", "GetItem"]
