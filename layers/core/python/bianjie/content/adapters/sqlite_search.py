"""The SQLite FTS5 search backend: the index is one SQLite database, built by the publisher from the
published records and stored as one object; search functions load it into memory (``deserialize``) and
reload when its ETag changes. Columns hold the shared tokenizer's space-joined tokens, so FTS5's
``unicode61`` tokenizer only splits on the spaces; ranking is bm25 with field weights."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable

from bianjie.content.search import FIELDS, WEIGHTS, Hit, Results, SearchDoc, Tokenizer

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
    """Queries one loaded index; safe to share between threads (one connection, a lock)."""

    def __init__(self, data: bytes, tokenizer: Tokenizer) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.deserialize(data)
        self._lock = threading.Lock()
        self._tokenizer = tokenizer

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM meta").fetchone()[0])

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
            return Results(terms=[], total=0, hits=[], facets={})
        latin = all(t[0].isascii() for t in terms)
        if latin:
            match = " AND ".join(f"py : {_quote(t[0])}" for t in terms)
        else:
            match = " AND ".join("(" + " OR ".join(_quote(a) for a in alts) + ")" for alts in terms)
        where = ["docs MATCH ?"]
        params: list[object] = [match]
        if kind:
            where.append("m.kind = ?")
            params.append(kind)
        if hospital:
            where.append("m.hospital = ?")
            params.append(hospital)
        if disease:
            where.append("m.rowid IN (SELECT rowid FROM disease WHERE code = ?)")
            params.append(disease)
        weights = ", ".join(str(w) for w in WEIGHTS)
        base = f"FROM docs JOIN meta m ON m.rowid = docs.rowid WHERE {' AND '.join(where)}"
        with self._lock:
            rows = self._db.execute(
                f"SELECT m.id, m.kind, m.col, m.hospital, m.title, m.summary, m.url, bm25(docs, {weights}) AS s "
                f"{base} ORDER BY s LIMIT ?",
                [*params, limit],
            ).fetchall()
            total = int(self._db.execute(f"SELECT count(*) {base}", params).fetchone()[0])
            hospitals = self._db.execute(
                f"SELECT m.hospital, count(*) {base} GROUP BY m.hospital ORDER BY count(*) DESC LIMIT 40", params
            ).fetchall()
            diseases = self._db.execute(
                "SELECT d.code, count(*) FROM disease d WHERE d.rowid IN "
                f"(SELECT m.rowid {base}) GROUP BY d.code ORDER BY count(*) DESC LIMIT 40",
                params,
            ).fetchall()
            kinds = self._db.execute(f"SELECT m.kind, count(*) {base} GROUP BY m.kind", params).fetchall()
        hits = [Hit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], round(-float(r[7]), 4)) for r in rows]
        return Results(
            terms=[t[0] for t in terms],
            total=total,
            hits=hits,
            facets={
                "hospital": [(h, int(c)) for h, c in hospitals],
                "disease": [(d, int(c)) for d, c in diseases],
                "kind": [(k, int(c)) for k, c in kinds],
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
