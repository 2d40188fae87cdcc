"""Statistics: counters per item and day (sharded under contention), visitors by a daily-salted hash
that is never an address, search terms, the range rules of GET /content/stats, and the nightly copy of
the official account's datacube through the stand-in (with WeChat's span limits)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from bianjie.content.stats import (
    MAX_RANGE_DAYS,
    OaStatsCopier,
    RangeError,
    Recorder,
    StatsService,
    StatsStore,
    Visit,
    check_range,
    normalise_term,
)
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.documents.port import ConditionFailed, KeyCond
from bianjie.kit.tables import table_spec
from bianjie_dev.content.wechat_standin import datacube

from tests.unit.content.conftest import Rig

DAY = "2026-06-03"  # NOON of the rig is 12:00 Beijing on this day


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _rig() -> tuple[MemoryDocumentStore, StatsStore, Recorder, Clock]:
    clock = Clock(datetime(2026, 6, 3, 4, 0, tzinfo=UTC).timestamp())
    db = MemoryDocumentStore(table_spec("CONTENT_TABLE", "content"), clock=clock)  # TTL on the test's clock
    store = StatsStore(db, "content")
    info = {"a-1": {"kind": "article", "column": "science", "title": "中风的早期识别"},
            "v-1": {"kind": "video", "column": "video", "title": "康复训练"}}  # fmt: skip
    return db, store, Recorder(store, info.get, clock), clock


def _rows(db: MemoryDocumentStore, pk: str) -> list[dict[str, Any]]:
    return db.query("content", KeyCond.of("pk", pk), limit=1000).items


def test_views_are_one_counter_per_item_per_day_not_a_row_per_view() -> None:
    db, _store, recorder, _clock = _rig()
    for _ in range(25):
        recorder.item_view("a-1", Visit("203.0.113.9", "Mozilla/5.0"))
    recorder.item_view("v-1", Visit("203.0.113.10", "Mozilla/5.0"))
    rows = _rows(db, f"stats#{DAY}")
    views = {r["sk"]: r for r in rows if r["sk"].startswith("view#")}
    assert set(views) == {"view#a-1#0", "view#v-1#0"}
    assert views["view#a-1#0"]["n"] == 25
    assert views["view#a-1#0"]["column"] == "science" and views["view#a-1#0"]["title"] == "中风的早期识别"
    assert {r["sk"]: r["n"] for r in rows if r["sk"].startswith("vis#")} == {"vis#0": 2}


def test_visitors_are_counted_once_a_day_and_no_address_is_kept() -> None:
    db, _store, recorder, clock = _rig()
    for _ in range(3):
        recorder.item_view("a-1", Visit("198.51.100.7", "Mozilla/5.0 (iPhone)"))
    recorder.page_view("home", Visit("198.51.100.7", "Mozilla/5.0 (iPhone)"))
    recorder.page_view("home", Visit("198.51.100.7", "Mozilla/5.0 (Windows)"))  # another browser, another visitor
    kept = [_rows(db, p) for p in (f"stats#{DAY}", f"stats-vis#{DAY}", "stats-salt")]
    everything = json.dumps(kept, ensure_ascii=False, default=str)
    assert "198.51.100.7" not in everything
    marks = _rows(db, f"stats-vis#{DAY}")
    assert len(marks) == 2 and all(len(m["sk"]) == 32 for m in marks)
    assert all(m["expires_at"] <= clock.now + 2 * 86400 for m in marks)
    salt = _rows(db, "stats-salt")
    assert len(salt) == 1 and salt[0]["expires_at"] <= clock.now + 2 * 86400
    assert sum(r["n"] for r in _rows(db, f"stats#{DAY}") if r["sk"].startswith("vis#")) == 2
    # the next day has its own salt: the same browser is not recognisable across days
    clock.now += 86400
    recorder.page_view("home", Visit("198.51.100.7", "Mozilla/5.0 (iPhone)"))
    next_marks = _rows(db, "stats-vis#2026-06-04")
    assert len(next_marks) == 1 and next_marks[0]["sk"] not in {m["sk"] for m in marks}


def test_a_contended_counter_moves_to_another_shard_and_readers_sum_them() -> None:
    db, store, recorder, clock = _rig()
    real_put = db.put
    fails = {"left": 3}

    def put(table: str, item: dict[str, Any], *, condition: Any = None) -> None:
        if item["sk"].startswith("view#") and fails["left"]:
            fails["left"] -= 1
            real_put(table, item, condition=condition)  # another writer got there first with the same count
            raise ConditionFailed("another writer")
        real_put(table, item, condition=condition)

    recorder.item_view("a-1", None)  # shard 0 exists
    db.put = put  # type: ignore[method-assign]
    assert store.add(DAY, "view#a-1")
    db.put = real_put  # type: ignore[method-assign]
    report = StatsService(store, clock).report(DAY, DAY)
    total = sum(int(r["n"]) for r in _rows(db, f"stats#{DAY}") if r["sk"].startswith("view#a-1#"))
    assert report["days"][0]["views"] == total == report["top_items"][0]["views"]


def test_a_counter_that_cannot_be_written_never_fails_the_page() -> None:
    db, _store, recorder, _clock = _rig()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database down")

    db.put = broken  # type: ignore[method-assign]
    db.get = broken  # type: ignore[method-assign]
    recorder.item_view("a-1", Visit("203.0.113.9", "x"))
    recorder.search("中风")


def test_search_terms_are_normalised_and_counted_per_day() -> None:
    _db, store, recorder, clock = _rig()
    for text in ("中风", " 中风 ", "ＴＮＢ", "tnb", "", "   "):
        recorder.search(text)
    report = StatsService(store, clock).report(DAY, DAY)
    assert report["top_terms"] == [{"term": "tnb", "count": 2}, {"term": "中风", "count": 2}]
    assert normalise_term("  高血压   饮食 ") == "高血压 饮食"
    assert len(normalise_term("长" * 80)) == 50


def test_the_report_per_day_with_tops_and_columns() -> None:
    _db, store, recorder, clock = _rig()
    for _ in range(3):
        recorder.item_view("a-1", Visit("203.0.113.1", "a"))
    clock.now += 86400
    recorder.item_view("v-1", Visit("203.0.113.2", "a"))
    recorder.page_view("science", Visit("203.0.113.2", "a"))
    report = StatsService(store, clock).report("2026-06-02", "2026-06-04")
    assert [(d["day"], d["views"], d["visitors"]) for d in report["days"]] == [
        ("2026-06-02", 0, 0), ("2026-06-03", 3, 1), ("2026-06-04", 1, 1)]  # fmt: skip
    assert [i["id"] for i in report["top_items"]] == ["a-1", "v-1"]
    assert report["top_columns"][0] == {"column": "science", "label": "科普知识", "views": 3, "page_views": 1}
    assert report["totals"]["views"] == 4 and report["totals"]["visitors"] == 2


@pytest.mark.parametrize(
    ("start", "end", "code"),
    [
        ("2026-06-03", "2026-06-01", "RANGE_INVALID"),  # inverted
        ("2026-02-30", "2026-03-01", "RANGE_INVALID"),  # no such day
        ("2026-06-01", "2026-06-09", "RANGE_INVALID"),  # after today
        ("2026-01-01", "2026-06-03", "RANGE_TOO_LONG"),
    ],
)
def test_bad_or_too_long_ranges_are_refused_with_a_code(start: str, end: str, code: str) -> None:
    with pytest.raises(RangeError) as refused:
        check_range(start, end, "2026-06-03")
    assert refused.value.code == code and refused.value.status == 422


def test_the_longest_range_is_accepted() -> None:
    days = check_range("2026-03-04", "2026-06-03", "2026-06-03")
    assert len(days) == MAX_RANGE_DAYS and days[0] == "2026-03-04"


# -- datacube ------------------------------------------------------------------------------------


NOW = datetime(2026, 6, 3, 4, 0, tzinfo=UTC).timestamp()


def test_the_standin_keeps_wechats_datacube_limits() -> None:
    assert datacube("getusersummary", {"begin_date": "2026-05-27", "end_date": "2026-06-02"}, NOW)["list"]
    assert datacube("getusersummary", {"begin_date": "2026-05-26", "end_date": "2026-06-02"}, NOW)["errcode"] == 61501
    assert datacube("getusercumulate", {"begin_date": "2026-06-02", "end_date": "2026-06-03"}, NOW)["errcode"] == 61501
    assert (
        datacube("getarticlesummary", {"begin_date": "2026-06-01", "end_date": "2026-06-02"}, NOW)["errcode"] == 61501
    )
    assert (
        datacube("getarticlesummary", {"begin_date": "2026/06/01", "end_date": "2026-06-01"}, NOW)["errcode"] == 61500
    )
    assert datacube("getusersummary", {"begin_date": "2026-06-02", "end_date": "2026-06-01"}, NOW)["errcode"] == 61501
    one = datacube("getarticlesummary", {"begin_date": "2026-06-01", "end_date": "2026-06-01"}, NOW)
    assert one == datacube("getarticlesummary", {"begin_date": "2026-06-01", "end_date": "2026-06-01"}, NOW)
    assert all({"int_page_read_count", "share_count", "msgid"} <= set(r) for r in one["list"])


def test_the_nightly_copy_stores_followers_reads_and_shares(rig: Rig) -> None:
    rig.tokens.refresh()
    calls: list[tuple[str, dict[str, Any]]] = []

    def transport(method: str, path: str, query: dict[str, str], body: dict[str, Any] | None) -> dict[str, Any]:
        calls.append((path, body or {}))
        return rig.standin(method, path, query, body)

    store = StatsStore(rig.documents, "content")
    copied = OaStatsCopier(store, rig.tokens.current, transport, rig.clock).copy()
    assert copied["days"][0] == "2026-05-27" and copied["days"][-1] == "2026-06-02"
    assert [p for p, _ in calls[:2]] == ["/datacube/getusersummary", "/datacube/getusercumulate"]
    articles = [b for p, b in calls if p == "/datacube/getarticlesummary"]
    assert len(articles) == 7 and all(b["begin_date"] == b["end_date"] for b in articles)
    report = StatsService(store, rig.clock).report("2026-05-27", "2026-06-02")
    oa = [d["oa"] for d in report["days"]]
    assert all(o and o["followers"] > 180_000 and o["reads"] > 0 and o["shares"] > 0 for o in oa)
    assert report["totals"]["followers"] == oa[-1]["followers"] == copied["followers"]
    assert oa[-1]["followers"] > oa[0]["followers"]


def test_the_copy_waits_for_a_token_and_fails_loudly_on_a_refusal(rig: Rig) -> None:
    from bianjie.content.oa import WechatApiError

    store = StatsStore(rig.documents, "content")
    assert OaStatsCopier(store, rig.tokens.current, rig.standin, rig.clock).copy() == {
        "days": [], "skipped": "no access token stored yet"}  # fmt: skip
    rig.tokens.refresh()
    with pytest.raises(WechatApiError) as refused:  # a token WeChat does not accept
        OaStatsCopier(store, lambda: "not-the-token", rig.standin, rig.clock).copy()
    assert refused.value.errcode == 40001
