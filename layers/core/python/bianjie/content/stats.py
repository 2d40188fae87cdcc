"""Statistics of the website and the official account (issue 19, items 6 and 7): counters, never a row
per view, and no personal data.

ContentTable rows (pk, sk); days are Beijing calendar days (``YYYY-MM-DD``):
    stats#<day> / view#<item id>#<shard>   views of one article or video that day (``n``), with its
                                           ``kind``, ``column`` and ``title`` (copied once, at the first view)
    stats#<day> / col#<column>#<shard>     views of a column's list page (or the home page: ``home``)
    stats#<day> / vis#<shard>              distinct visitors that day
    stats#<day> / q#<term>#<shard>         searches for one (normalised) term
    stats#<day> / oa                       the official account's day, copied from datacube (followers,
                                           new and cancelled follows, article reads and shares)
    stats-vis#<day> / <hash>               a visitor seen that day: HMAC-SM3 of address and browser under
                                           that day's random salt; expires 2 days later (TTL ``expires_at``)
    stats-salt / <day>                     that day's salt (random, 32 bytes), expires 2 days later

A counter is a read and a conditional write on ``n``; on contention the write moves to another of
``SHARDS`` rows, so a spike on one page spreads over a few rows. Readers sum the shards. Once a day's
salt and visitor rows have expired nobody, us included, can tell whether an address visited: only the
count remains. Recording never fails a page: a counter that cannot be written is dropped and logged.
"""

from __future__ import annotations

import logging
import random
import secrets
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol

from bianjie.kit.crypto import hmac_sm3
from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore, KeyCond
from bianjie.kit.errors import AppError
from bianjie.kit.timefmt import beijing_day

log = logging.getLogger("bianjie.content.stats")

SHARDS = 4
ATTEMPTS = 6
MAX_RANGE_DAYS = 92
KEEP_VISITOR_S = 2 * 86400
TERM_MAX = 50
TOP = 10
OA_FIELDS = ("followers", "new_followers", "lost_followers", "reads", "shares")


def normalise_term(text: str) -> str:
    """NFKC, lower case, one space between words, at most 50 characters; '' for nothing."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())[:TERM_MAX]


def days_between(start: str, end: str) -> list[str]:
    first, last = date.fromisoformat(start), date.fromisoformat(end)
    return [(first + timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]


class RangeError(AppError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message, code=code, status=422)


def check_range(start: str, end: str, today: str, *, max_days: int = MAX_RANGE_DAYS) -> list[str]:
    """The days from ``start`` to ``end`` (both ``YYYY-MM-DD``, inclusive), or a 422 with a stable code."""
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise RangeError("日期格式应为 YYYY-MM-DD", "RANGE_INVALID") from None
    if first > last:
        raise RangeError("开始日期不能晚于结束日期", "RANGE_INVALID")
    if last > date.fromisoformat(today):
        raise RangeError("结束日期不能晚于今天", "RANGE_INVALID")
    if (last - first).days + 1 > max_days:
        raise RangeError(f"一次最多查询 {max_days} 天", "RANGE_TOO_LONG")
    return days_between(start, end)


class ItemInfo(Protocol):
    def __call__(self, item_id: str) -> dict[str, Any] | None:
        """The item's ``kind``, ``column`` and ``title``, read once per item per day."""
        ...


@dataclass(frozen=True)
class Visit:
    address: str
    agent: str


class StatsStore:
    def __init__(self, documents: DocumentStore, table: str) -> None:
        self.documents = documents
        self.table = table

    def add(self, day: str, name: str, by: int = 1, extra: Callable[[], dict[str, Any]] | None = None) -> bool:
        """Adds ``by`` to counter ``name`` of ``day`` (shard 0 first, another on contention)."""
        pk = f"stats#{day}"
        shard = 0
        for _ in range(ATTEMPTS):
            key = {"pk": pk, "sk": f"{name}#{shard}"}
            held = self.documents.get(self.table, key)
            try:
                if held is None:
                    item = {**key, "n": by, **(extra() if extra else {})}
                    self.documents.put(self.table, item, condition=Cond.absent())
                else:
                    item = {**held, "n": int(held["n"]) + by}
                    self.documents.put(self.table, item, condition=Cond.eq("n", held["n"]))
                return True
            except ConditionFailed:
                shard = random.randrange(SHARDS)
        return False

    def day(self, day: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while True:
            page = self.documents.query(self.table, KeyCond.of("pk", f"stats#{day}"), limit=500, cursor=cursor)
            items.extend(page.items)
            cursor = page.cursor
            if not cursor:
                return items

    def put_oa(self, day: str, doc: dict[str, Any]) -> None:
        self.documents.put(self.table, {"pk": f"stats#{day}", "sk": "oa", **doc})

    def salt(self, day: str, now: float) -> bytes:
        key = {"pk": "stats-salt", "sk": day}
        held = self.documents.get(self.table, key)
        if held is None:
            fresh: dict[str, Any] = {**key, "salt": secrets.token_hex(32), "expires_at": int(now) + KEEP_VISITOR_S}
            try:
                self.documents.put(self.table, fresh, condition=Cond.absent())
                held = fresh
            except ConditionFailed:
                held = self.documents.get(self.table, key)
                assert held is not None
        return bytes.fromhex(str(held["salt"]))

    def first_visit(self, day: str, digest: str, now: float) -> bool:
        try:
            self.documents.put(
                self.table,
                {"pk": f"stats-vis#{day}", "sk": digest, "expires_at": int(now) + KEEP_VISITOR_S},
                condition=Cond.absent(),
            )
            return True
        except ConditionFailed:
            return False


class Recorder:
    """What the site and search functions call on each page they serve."""

    def __init__(self, store: StatsStore, item_info: ItemInfo, clock: Callable[[], float]) -> None:
        self.store = store
        self.item_info = item_info
        self.clock = clock
        self._salts: dict[str, bytes] = {}

    def _safely(self, what: str, fn: Callable[[], Any]) -> None:
        try:
            fn()
        except Exception as exc:  # a counter never fails the page it counts
            log.warning("content stats: %s not counted (%s)", what, type(exc).__name__)

    def _visitor(self, day: str, visit: Visit | None, now: float) -> None:
        if visit is None or not visit.address:
            return
        salt = self._salts.get(day)
        if salt is None:
            salt = self.store.salt(day, now)
            self._salts = {day: salt}
        digest = hmac_sm3(salt, f"{visit.address}\n{visit.agent[:200]}".encode()).hex()[:32]
        if self.store.first_visit(day, digest, now):
            self.store.add(day, "vis")

    def item_view(self, item_id: str, visit: Visit | None) -> None:
        now = self.clock()
        day = beijing_day(now)

        def info() -> dict[str, Any]:
            found = self.item_info(item_id) or {}
            return {k: found[k] for k in ("kind", "column", "title") if k in found}

        self._safely("view", lambda: self.store.add(day, f"view#{item_id}", extra=info))
        self._safely("visitor", lambda: self._visitor(day, visit, now))

    def page_view(self, column: str, visit: Visit | None) -> None:
        now = self.clock()
        day = beijing_day(now)
        self._safely("page", lambda: self.store.add(day, f"col#{column}"))
        self._safely("visitor", lambda: self._visitor(day, visit, now))

    def search(self, text: str) -> None:
        term = normalise_term(text)
        if term:
            day = beijing_day(self.clock())
            self._safely("search", lambda: self.store.add(day, f"q#{term}"))


# -- reading ------------------------------------------------------------------------------------------


def _name(sk: str) -> tuple[str, str]:
    """``view#a-1#0`` -> (``view``, ``a-1``); the shard suffix dropped."""
    head, _, rest = sk.partition("#")
    return head, rest.rpartition("#")[0] if "#" in rest else rest


def summarise(days: Sequence[str], rows_of: Callable[[str], list[dict[str, Any]]],
              column_label: Callable[[str], str]) -> dict[str, Any]:  # fmt: skip
    """The answer of ``GET /content/stats``: per day, the tops of the range, and the totals."""
    per_day: list[dict[str, Any]] = []
    items: dict[str, dict[str, Any]] = {}
    columns: dict[str, int] = defaultdict(int)
    pages: dict[str, int] = defaultdict(int)
    terms: dict[str, int] = defaultdict(int)
    for day in days:
        views = visitors = 0
        oa: dict[str, Any] | None = None
        for row in rows_of(day):
            if row["sk"] == "oa":
                oa = {
                    k: int(row.get(k, 0)) for k in ("followers", "new_followers", "lost_followers", "reads", "shares")
                }
                continue
            kind, name = _name(row["sk"])
            n = int(row.get("n", 0))
            if kind == "view":
                views += n
                entry = items.setdefault(name, {"id": name, "views": 0})
                entry["views"] += n
                for k in ("kind", "column", "title"):
                    if row.get(k) and k not in entry:
                        entry[k] = row[k]
                columns[row.get("column") or "?"] += n
            elif kind == "col":
                pages[name] += n
            elif kind == "vis":
                visitors += n
            elif kind == "q":
                terms[name] += n
        per_day.append({"day": day, "views": views, "visitors": visitors, "oa": oa})
    top_items = sorted(items.values(), key=lambda e: (-e["views"], e["id"]))[:TOP]
    top_columns = [
        {"column": c, "label": column_label(c), "views": n, "page_views": pages.get(c, 0)}
        for c, n in sorted(columns.items(), key=lambda kv: (-kv[1], kv[0]))
    ]
    top_terms = [{"term": t, "count": n} for t, n in sorted(terms.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP]]
    oa_days = [d["oa"] for d in per_day if d["oa"]]
    return {
        "from": days[0],
        "to": days[-1],
        "days": per_day,
        "top_items": top_items,
        "top_columns": top_columns,
        "top_terms": top_terms,
        "totals": {
            "views": sum(d["views"] for d in per_day),
            "visitors": sum(d["visitors"] for d in per_day),
            "home_views": pages.get("home", 0),
            "reads": sum(o["reads"] for o in oa_days),
            "shares": sum(o["shares"] for o in oa_days),
            "followers": oa_days[-1]["followers"] if oa_days else None,
        },
    }


class StatsService:
    """``GET /content/stats``: checks the range, reads each day's counters and sums them."""

    def __init__(self, store: StatsStore, clock: Callable[[], float]) -> None:
        self.store = store
        self.clock = clock

    def report(self, start: str, end: str) -> dict[str, Any]:
        from bianjie.content.model import COLUMNS

        days = check_range(start, end, beijing_day(self.clock()))
        labels = {**COLUMNS, "video": "科普视频", "home": "首页"}
        return summarise(days, self.store.day, lambda c: labels.get(c, c))


# -- the official account's statistics (datacube) ---------------------------------------------------


class Transport(Protocol):
    def __call__(
        self, method: str, path: str, query: dict[str, str], body: dict[str, Any] | None
    ) -> dict[str, Any]: ...


class OaStatsCopier:
    """The nightly copy of the official account's datacube into ``stats#<day> / oa``. WeChat limits a
    request's span: ``getusersummary`` and ``getusercumulate`` 7 days, ``getarticlesummary`` 1 day, the
    latest day being yesterday."""

    USER_SPAN = 7

    def __init__(self, store: StatsStore, token: Callable[[], str], transport: Transport,
                 clock: Callable[[], float]) -> None:  # fmt: skip
        self.store = store
        self.token = token
        self.transport = transport
        self.clock = clock

    def _call(self, path: str, begin: str, end: str) -> list[dict[str, Any]]:
        from bianjie.content.oa import _checked

        answer = _checked(
            self.transport("POST", f"/datacube/{path}", {"access_token": self.token()},
                           {"begin_date": begin, "end_date": end})
        )  # fmt: skip
        found: list[dict[str, Any]] = answer.get("list") or []
        return found

    def copy(self, days: int = USER_SPAN) -> dict[str, Any]:
        """The last ``days`` (≤ 7) days up to yesterday: users in one request each, articles a day at a time."""
        from bianjie.content.oa import WechatApiError

        try:
            self.token()
        except WechatApiError as exc:  # the refresh schedule has not stored a token yet: try again tomorrow
            log.warning("content stats: datacube not copied (%s)", exc)
            return {"days": [], "skipped": "no access token stored yet"}
        yesterday = date.fromisoformat(beijing_day(self.clock())) - timedelta(days=1)
        span = [(yesterday - timedelta(days=i)).isoformat() for i in reversed(range(min(days, self.USER_SPAN)))]
        summary = self._call("getusersummary", span[0], span[-1])
        cumulate = self._call("getusercumulate", span[0], span[-1])
        out: dict[str, dict[str, int]] = {d: {"followers": 0, "new_followers": 0, "lost_followers": 0,
                                              "reads": 0, "shares": 0} for d in span}  # fmt: skip
        for row in summary:
            if row.get("ref_date") in out:
                out[row["ref_date"]]["new_followers"] += int(row.get("new_user", 0))
                out[row["ref_date"]]["lost_followers"] += int(row.get("cancel_user", 0))
        for row in cumulate:
            if row.get("ref_date") in out:
                out[row["ref_date"]]["followers"] = int(row.get("cumulate_user", 0))
        for day in span:
            for row in self._call("getarticlesummary", day, day):
                out[day]["reads"] += int(row.get("int_page_read_count", 0))
                out[day]["shares"] += int(row.get("share_count", 0))
        for day, doc in out.items():
            self.store.put_oa(day, doc)
        return {"days": span, "followers": out[span[-1]]["followers"]}
