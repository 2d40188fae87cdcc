"""Sources and aggregation (汇聚共享): each hospital's source is fetched on a schedule with conditional
requests (ETag / Last-Modified); an RSS or Atom feed gives the items directly, otherwise a list page's
rule (a pattern over its links) finds the detail pages, whose text and date a well-kept extractor takes
(trafilatura, htmldate: ``adapters/extract.py``). Each new item enters as a draft of the source's
column, attributed to its hospital, for the three reviews. Duplicates never enter twice: the same
normalised text (SHA-256) is the same item, and a cross-post (MinHash over character 3-grams, estimated
Jaccard >= 0.8) is merged into the item it repeats (its URL recorded there). A source that fails (not
reachable, a malformed feed, a rule that suddenly matches nothing: a layout change) fails alone, with the
reason recorded on it; it is never silently empty."""

from __future__ import annotations

import hashlib
import re
import unicodedata
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urljoin

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from bianjie.content.model import HOSPITAL_CODE, ONE_LINE, URL, Column
from bianjie.content.store import ContentStore
from bianjie.kit.actor import Actor
from bianjie.kit.timefmt import utc_iso

MAX_ITEMS_PER_RUN = 20
MINHASH_SEEDS = 64
CROSSPOST_JACCARD = 0.8
RECENT_SIGNATURES = 500


class SourceConfig(BaseModel):
    """One hospital source, as the chief editor configures it."""

    model_config = ConfigDict(extra="forbid")
    hospital: str = Field(pattern=HOSPITAL_CODE)
    name: Annotated[str, Field(min_length=1, max_length=40, pattern=ONE_LINE)]
    kind: Literal["feed", "list"]
    url: Annotated[str, Field(max_length=500, pattern=URL)]
    column: Column = "news"
    link_pattern: Annotated[str, Field(max_length=200, pattern=ONE_LINE)] | None = Field(
        default=None, description="list pages: a regular expression the detail pages' URLs match"
    )
    enabled: StrictBool = True


@dataclass(frozen=True)
class Fetched:
    status: int  # 200, or 304 when unchanged
    body: bytes = b""
    etag: str | None = None
    last_modified: str | None = None


class FetchFailed(Exception):
    """The source could not be fetched (the reason is recorded on the source)."""


class Fetcher(Protocol):
    def __call__(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched: ...


@dataclass(frozen=True)
class Extracted:
    title: str
    text: str
    date: str | None


class Extractor(Protocol):
    def __call__(self, html: str, url: str) -> Extracted | None: ...


@dataclass(frozen=True)
class Candidate:
    url: str
    title: str
    text: str
    date: str | None


@dataclass
class SourceRun:
    source: str
    outcome: Literal["new", "unchanged", "failed", "disabled"]
    new: list[str] = field(default_factory=list)
    duplicates: int = 0
    merged: list[str] = field(default_factory=list)
    reason: str | None = None


class SourceFailed(Exception):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


# -- pure helpers -----------------------------------------------------------------------------------


def normalised(text: str) -> str:
    """What two copies of one item share: NFKC, no whitespace or punctuation, lower case."""
    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if ch.isalnum())


def text_hash(text: str) -> str:
    return hashlib.sha256(normalised(text).encode()).hexdigest()


def minhash(text: str, seeds: int = MINHASH_SEEDS) -> list[int]:
    grams = {normalised(text)[i : i + 3] for i in range(max(1, len(normalised(text)) - 2))}
    return [
        min(int.from_bytes(hashlib.blake2b(g.encode(), digest_size=8, salt=seed.to_bytes(8, "big")).digest(), "big")
            for g in grams)
        for seed in range(seeds)
    ]  # fmt: skip


def similarity(a: Sequence[int], b: Sequence[int]) -> float:
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a) if a and len(a) == len(b) else 0.0


def _refuse_entities(body: bytes) -> None:
    lowered = body[:4096].lower()
    if b"<!doctype" in lowered and b"<!entity" in body.lower():
        raise SourceFailed("FEED_INVALID", "订阅源含有实体声明，已拒绝")


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_feed(body: bytes) -> list[Candidate]:
    """RSS 2.0 or Atom entries (title, link, text, date); a malformed feed raises ``SourceFailed``."""
    _refuse_entities(body)
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise SourceFailed("FEED_INVALID", f"订阅源不是有效的 XML（{exc}）") from None
    entries = [e for e in root.iter() if _local(e.tag) in ("item", "entry")]
    if _local(root.tag) not in ("rss", "feed", "RDF"):
        raise SourceFailed("FEED_INVALID", "不是 RSS 或 Atom 订阅源")
    found = []
    for entry in entries:
        fields: dict[str, str] = {}
        for child in entry:
            name = _local(child.tag)
            if name == "link" and child.get("href"):
                fields.setdefault("link", child.get("href") or "")
            elif child.text and name not in fields:
                fields[name] = child.text.strip()
        text = (
            fields.get("encoded") or fields.get("content") or fields.get("description") or fields.get("summary") or ""
        )
        link = fields.get("link", "")
        if fields.get("title") and link:
            found.append(
                Candidate(
                    url=link,
                    title=fields["title"][:64],
                    text=_strip_tags(text),
                    date=fields.get("pubDate") or fields.get("published") or fields.get("updated"),
                )
            )
    return found


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.links.append(href)


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _strip_tags(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return "\n\n".join(p.strip() for p in "".join(parser.parts).split("\n") if p.strip())


def list_links(html: str, base: str, pattern: str) -> list[str]:
    parser = _Links()
    parser.feed(html)
    rule = re.compile(pattern)
    seen: list[str] = []
    for href in parser.links:
        url = urljoin(base, href)
        if rule.search(url) and url not in seen:
            seen.append(url)
    return seen


# -- the use case -----------------------------------------------------------------------------------


class Ingest(Protocol):
    def __call__(self, source_id: str, config: SourceConfig, candidate: Candidate) -> str:
        """Creates the draft; answers its id."""
        ...


class Aggregator:
    def __init__(
        self,
        store: ContentStore,
        fetch: Fetcher,
        extract: Extractor,
        ingest: Ingest,
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.fetch = fetch
        self.extract = extract
        self.ingest = ingest
        self.clock = clock
        self.actor = Actor.system("content-aggregator")

    # sources ---------------------------------------------------------------------------------------

    def configure(self, source_id: str, config: SourceConfig) -> dict[str, Any]:
        if config.kind == "list":
            if not config.link_pattern:
                from bianjie.kit.errors import AppError

                raise AppError("列表页来源须给出详情页链接规则 link_pattern", code="RULE_REQUIRED", status=422)
            try:
                re.compile(config.link_pattern)
            except re.error as exc:
                from bianjie.kit.errors import AppError

                raise AppError(f"link_pattern 不是有效的正则表达式：{exc}", code="RULE_INVALID", status=422) from None
        state = self.store.source(source_id) or {}
        state.update(id=source_id, config=config.model_dump(), updated_at=utc_iso(self.clock()))
        self.store.put_source(source_id, state)
        return state

    def sources(self) -> list[dict[str, Any]]:
        return self.store.sources()

    # runs ------------------------------------------------------------------------------------------

    def run_all(self) -> list[SourceRun]:
        return [self.run(s["id"]) for s in self.store.sources()]

    def run(self, source_id: str) -> SourceRun:
        state = self.store.source(source_id)
        if state is None:
            raise KeyError(source_id)
        config = SourceConfig.model_validate(state["config"])
        if not config.enabled:
            return SourceRun(source_id, "disabled")
        try:
            result = self._run(source_id, config, state)
        except SourceFailed as exc:
            state.update(last_error={"code": exc.code, "reason": exc.reason, "at": utc_iso(self.clock())},
                         status="failing")  # fmt: skip
            self.store.put_source(source_id, state)
            return SourceRun(source_id, "failed", reason=f"{exc.code}: {exc.reason}")
        state.update(status="ok", last_error=None, last_run_at=utc_iso(self.clock()))
        self.store.put_source(source_id, state)
        return result

    def _get(self, url: str, state: dict[str, Any] | None = None) -> Fetched:
        try:
            if state is None:
                return self.fetch(url)
            return self.fetch(url, etag=state.get("etag"), last_modified=state.get("last_modified"))
        except FetchFailed as exc:
            raise SourceFailed("FETCH_FAILED", f"无法获取 {url}：{exc}") from None

    def _run(self, source_id: str, config: SourceConfig, state: dict[str, Any]) -> SourceRun:
        page = self._get(config.url, state)
        if page.status == 304:
            return SourceRun(source_id, "unchanged")
        state.update(etag=page.etag, last_modified=page.last_modified)
        seen = set(state.get("seen_urls") or [])
        if config.kind == "feed":
            candidates = [c for c in parse_feed(page.body) if c.url not in seen]
            if not candidates and not seen:
                raise SourceFailed("FEED_EMPTY", "订阅源没有任何条目")
        else:
            html = page.body.decode("utf-8", "replace")
            links = list_links(html, config.url, config.link_pattern or "")
            if not links:
                raise SourceFailed("LAYOUT_CHANGED", "列表页规则未匹配到任何链接，网站版式可能已改变，请更新规则")
            candidates = []
            for url in [u for u in links if u not in seen][:MAX_ITEMS_PER_RUN]:
                detail = self._get(url)
                extracted = self.extract(detail.body.decode("utf-8", "replace"), url)
                if extracted is None or not extracted.text.strip():
                    raise SourceFailed("LAYOUT_CHANGED", f"详情页 {url} 提取不到正文，网站版式可能已改变")
                candidates.append(Candidate(url, extracted.title[:64], extracted.text, extracted.date))
        run = SourceRun(source_id, "new")
        recent = self.store.signatures(RECENT_SIGNATURES)
        for candidate in candidates[:MAX_ITEMS_PER_RUN]:
            seen.add(candidate.url)
            digest = text_hash(candidate.title + candidate.text)
            if self.store.find_hash(digest):
                run.duplicates += 1
                continue
            signature = minhash(candidate.title + candidate.text)
            twin = next((item for item, sig in recent if similarity(sig, signature) >= CROSSPOST_JACCARD), None)
            if twin is not None:
                self.store.add_crosspost(twin, candidate.url)
                run.merged.append(twin)
                continue
            item_id = self.ingest(source_id, config, candidate)
            self.store.put_hash(digest, item_id)
            self.store.put_signature(item_id, signature, at=utc_iso(self.clock(), "milliseconds"))
            recent.append((item_id, signature))
            run.new.append(item_id)
        state["seen_urls"] = sorted(seen)[-2000:]
        if not run.new and not run.merged and not run.duplicates:
            run.outcome = "unchanged"
        return run
