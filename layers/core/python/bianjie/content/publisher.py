"""The publisher: the one consumer of ContentPublishQueue (reserved concurrency 1, so renders and index
builds never race). For a record that was published or taken down it renders the website's pages into
ContentSiteBucket (the record's page, its column, the home page), rebuilds the search index from the
published records, and publishes a newly public article to the official account once per version.
Only records whose status is ``published`` and whose current version passed three reviews are rendered
or indexed: an unreviewed record never reaches a public page, the index or the OA, whatever the queue says.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from bianjie.content import site
from bianjie.content.model import COLUMNS, VIDEO_COLUMN, hospital_name
from bianjie.content.search import SearchDoc, doc_of
from bianjie.content.service import Audit
from bianjie.content.store import Contended, ContentStore
from bianjie.content.workflow import WorkflowStep, reviewed_thrice
from bianjie.kit.actor import Actor
from bianjie.kit.objects import ObjectNotFound, ObjectStore

HTML = "text/html; charset=utf-8"
PAGE_CACHE = "public, max-age=60"
_ID = re.compile(r"[av]-[0-9a-f]{16}")


class IndexWriter(Protocol):
    """Where the search index lives (an object in the site bucket, or a PostgreSQL table on premises):
    ``replace`` makes the index hold exactly ``docs``; it answers how many it holds."""

    def replace(self, docs: Sequence[SearchDoc], names: dict[str, str]) -> int: ...


class OaPublisher(Protocol):
    def publish(self, doc: dict[str, Any]) -> dict[str, str]: ...


def page_key(doc: dict[str, Any]) -> str:
    return f"pages/{'articles' if doc['kind'] == 'article' else 'videos'}/{doc['id']}.html"


def is_public(store: ContentStore, doc: dict[str, Any]) -> bool:
    if doc.get("status") != "published":
        return False
    steps = [WorkflowStep.of(s) for s in store.steps(doc["id"])]
    return reviewed_thrice(steps, doc["version"])


class Publisher:
    def __init__(
        self,
        store: ContentStore,
        objects: ObjectStore,
        site_bucket: str,
        index: IndexWriter,
        official_account: Callable[[], OaPublisher],
        audit: Audit,
    ) -> None:
        self.store = store
        self.objects = objects
        self.site_bucket = site_bucket
        self.index = index
        self.official_account = official_account
        self.audit = audit
        self.actor = Actor.system("content-publisher")

    def handle(self, item_id: str) -> dict[str, Any]:
        if not _ID.fullmatch(item_id):
            raise ValueError("not an item id")
        found = self.store.head(item_id)
        if found is None:
            return {"id": item_id, "outcome": "unknown"}
        doc, rev = found
        public = is_public(self.store, doc)
        key = page_key(doc)
        if public:
            render = site.article(doc) if doc["kind"] == "article" else site.video(doc)
            self.objects.put(self.site_bucket, key, render.encode(), content_type=HTML, cache_control=PAGE_CACHE)
        else:
            self.objects.delete(self.site_bucket, key)
        self.render_lists()
        indexed = self.rebuild_index()
        oa = None
        if public and doc["kind"] == "article" and (doc.get("oa") or {}).get("version") != doc["version"]:
            oa = self.official_account().publish({**doc, "hospital_name": hospital_name(doc["hospital"])})
            doc["oa"] = {**oa, "version": doc["version"]}
            with contextlib.suppress(Contended):  # changed meanwhile (a withdrawal): that change's own job follows
                self.store.save(doc, rev)
            self.audit.record(actor=self.actor, action="content.oa_publish", resource="content:" + item_id, details=oa)
        self.audit.record(
            actor=self.actor,
            action="content.render",
            resource="content:" + item_id,
            details={"public": public, "indexed": indexed},
        )
        return {"id": item_id, "outcome": "published" if public else "removed", "indexed": indexed, "oa": oa}

    def _public(self, column: str) -> list[dict[str, Any]]:
        return [d for d in self.store.public(column) if is_public(self.store, d)]

    def render_lists(self) -> None:
        columns = {key: self._public(key) for key in COLUMNS}
        videos = self._public(VIDEO_COLUMN)
        self.objects.put(self.site_bucket, "assets/site.css", site.CSS.encode(), content_type="text/css; charset=utf-8",
                         cache_control=PAGE_CACHE)  # fmt: skip
        self.objects.put(self.site_bucket, "pages/home.html", site.home(columns, videos).encode(), content_type=HTML,
                         cache_control=PAGE_CACHE)  # fmt: skip
        for key, docs in columns.items():
            self.objects.put(self.site_bucket, f"pages/columns/{key}.html", site.column(key, docs).encode(),
                             content_type=HTML, cache_control=PAGE_CACHE)  # fmt: skip

    def rebuild_index(self) -> int:
        records = [d for key in (*COLUMNS, VIDEO_COLUMN) for d in self._public(key)]
        names = {x["code"]: x["name"] for d in records for x in d.get("diseases") or []}
        return self.index.replace([doc_of(d) for d in records], names)


def read_page(objects: ObjectStore, bucket: str, key: str) -> str | None:
    try:
        return objects.get(bucket, key).decode("utf-8")
    except ObjectNotFound:
        return None
