"""The SQLite FTS5 search backend (the serverless default): the index is one SQLite database, built by
the publisher from the published records and stored as one object (``ObjectIndex``); search functions
load it into memory (``deserialize``) and reload when its ETag changes. Columns hold the shared
tokenizer's space-joined tokens, so FTS5's ``unicode61`` tokenizer only splits on the spaces; ranking is
bm25 with field weights. The on-premises backend is ``postgres_search``."""

from __future__ import annotations

import heapq
import json
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence

from bianjie.content.search import FIELDS, WEIGHTS, Hit, Results, SearchDoc, Tokenizer
from bianjie.kit.objects import ObjectStore

INDEX_KEY = "search/index.sqlite"
NAMES_KEY = "search/diseases.json"

SCHEMA = """
CREATE VIRTUAL TABLE docs USING fts5(title, summary, tags, body, py, tokenize = 'unicode61 remove_diacritics 0');
CREATE TABLE meta(rowid INTEGER PRIMARY KEY, id TEXT UNIQUE, kind TEXT, col TEXT, hospital TEXT,
                  title TEXT, summary TEXT, url TEXT, published_at TEXT);
CREATE TABLE disease(rowid INTEGER, code TEXT);
CREATE INDEX disease_code ON disease(code, rowid);
CREATE INDEX meta_hospital ON meta(hospital);
"""


def build(docs: Iterable[SearchDoc], tokenizer: Tokenizer) -> bytes:
    """The index database of ``docs``, serialised."""
    db = sqlite3.connect(":memory:")
    db.executescript(SCHEMA)
    for rowid, doc in enumerate(docs, start=1):
        cols = tokenizer.document(doc)
        db.execute(
            "INSERT INTO docs(rowid, title, summary, tags, body, py) VALUES (?,?,?,?,?,?)",
            (rowid, *(cols[f] for f in FIELDS)),
        )
        db.execute(
            "INSERT INTO meta VALUES (?,?,?,?,?,?,?,?,?)",
            (rowid, doc.id, doc.kind, doc.column, doc.hospital, doc.title, doc.summary, doc.url, doc.published_at),
        )
        db.executemany("INSERT INTO disease VALUES (?,?)", [(rowid, code) for code in doc.diseases])
    db.commit()
    data = db.serialize()
    db.close()
    return data


def _quote(term: str) -> str:
    return '"' + term.replace('"', '""') + '"'


class SqliteSearch:
    """Queries one loaded index; safe to share between threads (one connection, a lock). The metadata
    (hospital, kind, diseases) is held in memory, so a query is one FTS5 pass: filters, the total and
    the facet counts are counted over its matches in Python (one pass instead of four queries)."""

    def __init__(self, data: bytes, tokenizer: Tokenizer) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.deserialize(data)
        self._lock = threading.Lock()
        self._tokenizer = tokenizer
        self._meta: dict[int, tuple[str, str, str, str, str, str, str]] = {
            int(r[0]): (r[1], r[2], r[3], r[4], r[5], r[6], r[7])
            for r in self._db.execute("SELECT rowid, id, kind, col, hospital, title, summary, url FROM meta")
        }
        self._diseases: dict[int, list[str]] = {}
        for rowid, code in self._db.execute("SELECT rowid, code FROM disease"):
            self._diseases.setdefault(int(rowid), []).append(str(code))

    def count(self) -> int:
        return len(self._meta)

    def search(
        self,
        query: str,
        *,
        kind: str | None = None,
        hospital: str | None = None,
        disease: str | None = None,
        limit: int = 10,
    ) -> Results:
        terms = self._tokenizer.query_terms(query)
        if not terms:
            return Results(terms=[], total=0, hits=[], facets={"hospital": [], "disease": [], "kind": []})
        latin = all(t[0].isascii() for t in terms)
        if latin:
            match = " AND ".join(f"py : {_quote(t[0])}" for t in terms)
        else:
            match = " AND ".join("(" + " OR ".join(_quote(a) for a in alts) + ")" for alts in terms)
        weights = ", ".join(str(w) for w in WEIGHTS)
        with self._lock:
            rows = self._db.execute(
                f"SELECT rowid, bm25(docs, {weights}) FROM docs WHERE docs MATCH ?", [match]
            ).fetchall()
        meta, codes_of = self._meta, self._diseases
        kept: list[tuple[float, int]] = [(score, rowid) for rowid, score in rows]
        if kind:
            kept = [k for k in kept if meta[k[1]][1] == kind]
        if hospital:
            kept = [k for k in kept if meta[k[1]][3] == hospital]
        if disease:
            kept = [k for k in kept if disease in codes_of.get(k[1], ())]
        ids = [rowid for _, rowid in kept]
        hospitals = Counter(meta[r][3] for r in ids)
        kinds = Counter(meta[r][1] for r in ids)
        diseases = Counter(code for r in ids for code in codes_of.get(r, ()))
        top = heapq.nsmallest(limit, kept)
        hits = [Hit(*self._meta[rowid][:3], *self._meta[rowid][3:], round(-float(score), 4)) for score, rowid in top]
        return Results(
            terms=[t[0] for t in terms],
            total=len(kept),
            hits=hits,
            facets={
                "hospital": hospitals.most_common(40),
                "disease": diseases.most_common(40),
                "kind": sorted(kinds.items()),
            },
        )

    def browse(self, facet: str, kind: str | None = None) -> list[tuple[str, int]]:
        """Facet counts over the whole library (by hospital, or by disease code), for browsing pages."""
        with self._lock:
            if facet == "hospital":
                sql = "SELECT hospital, count(*) FROM meta" + (" WHERE kind = ?" if kind else "") + " GROUP BY hospital"
            else:
                sql = (
                    "SELECT d.code, count(*) FROM disease d JOIN meta m ON m.rowid = d.rowid"
                    + (" WHERE m.kind = ?" if kind else "")
                    + " GROUP BY d.code"
                )
            rows = self._db.execute(sql, [kind] if kind else []).fetchall()
        return sorted(((str(v), int(c)) for v, c in rows), key=lambda r: (-r[1], r[0]))

    def listing(
        self, *, kind: str | None = None, hospital: str | None = None, disease: str | None = None, limit: int = 50
    ) -> list[Hit]:
        """Items by facet, newest first (browsing without a query)."""
        where: list[str] = ["1=1"]
        params: list[object] = []
        if kind:
            where.append("kind = ?")
            params.append(kind)
        if hospital:
            where.append("hospital = ?")
            params.append(hospital)
        if disease:
            where.append("rowid IN (SELECT rowid FROM disease WHERE code = ?)")
            params.append(disease)
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, kind, col, hospital, title, summary, url FROM meta WHERE {' AND '.join(where)} "
                "ORDER BY published_at DESC LIMIT ?",
                [*params, limit],
            ).fetchall()
        return [Hit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], 0.0) for r in rows]


class ObjectIndex:
    """The index as one object in the site bucket: the publisher ``replace``s it whole (the publisher is
    the queue's only consumer, so builds never race); a search function's ``current()`` loads it and
    checks for a newer one at most every ``CHECK_EVERY_S`` seconds (a HEAD, not a download)."""

    CHECK_EVERY_S = 5.0

    def __init__(self, objects: ObjectStore, bucket: str, tokenizer: Tokenizer) -> None:
        self.objects = objects
        self.bucket = bucket
        self.tokenizer = tokenizer
        self._lock = threading.Lock()
        self._etag: str | None = None
        self._checked = 0.0
        self._searcher: SqliteSearch | None = None
        self._names: dict[str, str] = {}

    def replace(self, docs: Sequence[SearchDoc], names: dict[str, str]) -> int:
        self.objects.put(self.bucket, INDEX_KEY, build(docs, self.tokenizer), content_type="application/vnd.sqlite3")
        self.objects.put(self.bucket, NAMES_KEY, json.dumps(names, ensure_ascii=False).encode(),
                         content_type="application/json")  # fmt: skip
        with self._lock:
            self._checked = 0.0  # this process reads its own write at once
        return len(docs)

    def current(self) -> SqliteSearch:
        with self._lock:
            now = time.monotonic()
            if self._searcher is not None and now - self._checked < self.CHECK_EVERY_S:
                return self._searcher
            self._checked = now
            info = self.objects.head(self.bucket, INDEX_KEY)
            if info is None:
                empty = SqliteSearch(build([], self.tokenizer), self.tokenizer)
                self._searcher, self._etag, self._names = empty, None, {}
                return self._searcher
            if info.etag != self._etag or self._searcher is None:
                stored = self.objects.fetch(self.bucket, INDEX_KEY)
                self._searcher, self._etag = SqliteSearch(stored.body, self.tokenizer), stored.etag
                names = self.objects.head(self.bucket, NAMES_KEY)
                self._names = json.loads(self.objects.get(self.bucket, NAMES_KEY)) if names else {}
            return self._searcher

    def disease_names(self) -> dict[str, str]:
        self.current()
        return self._names
