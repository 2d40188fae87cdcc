"""The PostgreSQL full-text search backend, for hospitals that run on premises (the documents already live
in PostgreSQL there, and one shared table serves every gateway worker with no index object to reload).

The tokens are the shared tokenizer's, exactly as in the SQLite backend, so results agree: a row's
``tsvector`` is written as a literal built here (PostgreSQL's own parsers know no Chinese), with the
title at weight A, tags at B, the summary and pinyin at C and the body at D (the order of the SQLite
backend's bm25 weights: title 8, tags 4, summary and pinyin 2, body 1). Pinyin terms carry a ``~``
prefix so that a Latin query matches only pinyin, as it matches only the SQLite ``py`` column.
Ranking is ``ts_rank`` with those weights, normalised by document length (flag 1); a GIN index answers
the match.

``replace`` is incremental: each row keeps a signature of what it was built from, so a publish touches
only the rows that changed (one transaction: a search sees the old index or the new one, never half).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from bianjie.content.search import Hit, Results, SearchDoc, Tokenizer
from bianjie.kit.documents.postgres import Pool

RANK_WEIGHTS = "{0.125,0.25,0.5,1.0}"  # D, C, B, A
MAX_POSITION = 16383  # tsvector positions stop there
PINYIN = "~"
FACET_LIMIT = 40


def _lexeme(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(columns: Sequence[tuple[str, str]]) -> str:
    """``[(weight, space-joined tokens), ...]`` as a tsvector literal: each token with its positions."""
    positions: dict[str, list[str]] = {}
    position = 0
    for weight, text in columns:
        for token in text.split():
            position = min(position + 1, MAX_POSITION)
            positions.setdefault(token, []).append(f"{position}{weight}")
    return " ".join(f"{_lexeme(t)}:{','.join(p[:256])}" for t, p in positions.items())


def tsquery_literal(terms: list[list[str]]) -> str:
    """All terms must match; each matches any of its alternatives. A Latin query is pinyin."""
    if all(t[0].isascii() for t in terms):
        return " & ".join(_lexeme(PINYIN + t[0]) for t in terms)
    return " & ".join("(" + " | ".join(_lexeme(a) for a in alts) + ")" for alts in terms)


class PostgresSearch:
    """Both sides of the index: the publisher's ``replace`` and the search functions' queries."""

    def __init__(self, pool: Pool, tokenizer: Tokenizer, table: str = "content_search") -> None:
        if not table.replace("_", "").isalnum():
            raise ValueError(f"not a table name: {table!r}")
        self.pool = pool
        self.tokenizer = tokenizer
        self.table = table
        self.names_table = table + "_names"
        self._ready = False

    @contextmanager
    def _conn(self) -> Iterator[Any]:
        with self.pool.connection() as conn:
            if not self._ready:
                self._create(conn)
            yield conn

    def _create(self, conn: Any) -> None:
        t, n = self.table, self.names_table
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [t])  # two workers starting at once
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {t} (id text PRIMARY KEY, kind text NOT NULL, col text NOT NULL,"
                " hospital text NOT NULL, title text NOT NULL, summary text NOT NULL, url text NOT NULL,"
                " published_at text NOT NULL, diseases text[] NOT NULL, sig text NOT NULL, tsv tsvector NOT NULL)"
            )
            conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_tsv ON {t} USING gin (tsv)")
            conn.execute(f"CREATE INDEX IF NOT EXISTS {t}_listing ON {t} (published_at DESC)")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {n} (code text PRIMARY KEY, name text NOT NULL)")
        self._ready = True

    # -- the publisher's side ----------------------------------------------------------------------

    @staticmethod
    def _signature(doc: SearchDoc) -> str:
        data = json.dumps([doc.kind, doc.column, doc.hospital, doc.title, doc.summary, doc.body, list(doc.tags),
                           list(doc.diseases), doc.url, doc.published_at], ensure_ascii=False)  # fmt: skip
        return hashlib.sha256(data.encode()).hexdigest()[:32]

    def _row(self, doc: SearchDoc, sig: str) -> list[Any]:
        cols = self.tokenizer.document(doc)
        pinyin = " ".join(PINYIN + p for p in cols["py"].split())
        tsv = tsvector_literal(
            [("A", cols["title"]), ("B", cols["tags"]), ("C", cols["summary"]), ("C", pinyin), ("D", cols["body"])]
        )
        return [doc.id, doc.kind, doc.column, doc.hospital, doc.title, doc.summary, doc.url, doc.published_at,
                list(doc.diseases), sig, tsv]  # fmt: skip

    def replace(self, docs: Sequence[SearchDoc], names: dict[str, str]) -> int:
        t, n = self.table, self.names_table
        wanted = {doc.id: (doc, self._signature(doc)) for doc in docs}
        with self._conn() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [t + ":replace"])
            have = dict(conn.execute(f"SELECT id, sig FROM {t}").fetchall())
            gone = [i for i in have if i not in wanted]
            changed = [self._row(d, s) for i, (d, s) in wanted.items() if have.get(i) != s]
            if gone:
                conn.execute(f"DELETE FROM {t} WHERE id = ANY(%s)", [gone])
            if changed:
                with conn.cursor() as cur:
                    cur.executemany(
                        f"INSERT INTO {t} VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,CAST(%s AS tsvector))"
                        " ON CONFLICT (id) DO UPDATE SET kind=EXCLUDED.kind, col=EXCLUDED.col,"
                        " hospital=EXCLUDED.hospital, title=EXCLUDED.title, summary=EXCLUDED.summary,"
                        " url=EXCLUDED.url, published_at=EXCLUDED.published_at, diseases=EXCLUDED.diseases,"
                        " sig=EXCLUDED.sig, tsv=EXCLUDED.tsv",
                        changed,
                    )
            conn.execute(f"DELETE FROM {n}")
            if names:
                with conn.cursor() as cur:
                    cur.executemany(f"INSERT INTO {n} VALUES (%s, %s)", list(names.items()))
        return len(wanted)

    # -- the search functions' side ----------------------------------------------------------------

    def current(self) -> PostgresSearch:
        return self  # the table is always current: nothing to reload

    def disease_names(self) -> dict[str, str]:
        with self._conn() as conn:
            return {str(c): str(v) for c, v in conn.execute(f"SELECT code, name FROM {self.names_table}")}

    def count(self) -> int:
        with self._conn() as conn:
            return int(conn.execute(f"SELECT count(*) FROM {self.table}").fetchone()[0])

    def search(
        self,
        query: str,
        *,
        kind: str | None = None,
        hospital: str | None = None,
        disease: str | None = None,
        limit: int = 10,
    ) -> Results:
        terms = self.tokenizer.query_terms(query)
        if not terms:
            return Results(terms=[], total=0, hits=[], facets={"hospital": [], "disease": [], "kind": []})
        where, params = self._filters(kind, hospital, disease)
        # One statement: the matches once (the GIN index's), then from them the ranked page, the facet
        # counts and the total, so only a page and the counts cross the wire (a common disease matches
        # a quarter of a library).
        t = self.table
        sql = (
            f"WITH m AS MATERIALIZED (SELECT id, kind, hospital, diseases, ts_rank('{RANK_WEIGHTS}', tsv, q, 1) AS r"
            f" FROM {t}, (SELECT CAST(%s AS tsquery) AS q) s WHERE tsv @@ q{where}),"
            " top AS (SELECT id, r FROM m ORDER BY r DESC, id LIMIT %s)"
            " SELECT 0, x.id, x.kind, x.col, x.hospital, x.title, x.summary, x.url, top.r"
            f" FROM top JOIN {t} x USING (id)"
            " UNION ALL SELECT 1, hospital, NULL, NULL, NULL, NULL, NULL, NULL, count(*) FROM m GROUP BY hospital"
            " UNION ALL SELECT 2, d, NULL, NULL, NULL, NULL, NULL, NULL, count(*)"
            " FROM m, unnest(m.diseases) d GROUP BY d"
            " UNION ALL SELECT 3, kind, NULL, NULL, NULL, NULL, NULL, NULL, count(*) FROM m GROUP BY kind"
        )
        with self._conn() as conn:
            rows = conn.execute(sql, [tsquery_literal(terms), *params, limit]).fetchall()
        page = sorted((r for r in rows if r[0] == 0), key=lambda r: (-r[8], r[1]))
        hits = [Hit(r[1], r[2], r[3], r[4], r[5], r[6], r[7], round(float(r[8]), 6)) for r in page]
        counts: dict[int, Counter[str]] = {1: Counter(), 2: Counter(), 3: Counter()}
        for r in rows:
            if r[0]:
                counts[r[0]][r[1]] = int(r[8])
        return Results(
            terms=[t[0] for t in terms],
            total=sum(counts[3].values()),
            hits=hits,
            facets={
                "hospital": counts[1].most_common(FACET_LIMIT),
                "disease": counts[2].most_common(FACET_LIMIT),
                "kind": sorted(counts[3].items()),
            },
        )

    @staticmethod
    def _filters(kind: str | None, hospital: str | None, disease: str | None) -> tuple[str, list[Any]]:
        where, params = "", []
        if kind:
            where += " AND kind = %s"
            params.append(kind)
        if hospital:
            where += " AND hospital = %s"
            params.append(hospital)
        if disease:
            where += " AND %s = ANY(diseases)"
            params.append(disease)
        return where, params

    def browse(self, facet: str, kind: str | None = None) -> list[tuple[str, int]]:
        """Facet counts over the whole library (by hospital, or by disease code), for browsing pages."""
        value = "hospital" if facet == "hospital" else "unnest(diseases)"
        sql = f"SELECT {value} AS v, count(*) FROM {self.table}" + (" WHERE kind = %s" if kind else "") + " GROUP BY v"
        with self._conn() as conn:
            rows = conn.execute(sql, [kind] if kind else []).fetchall()
        return sorted(((str(v), int(c)) for v, c in rows), key=lambda r: (-r[1], r[0]))

    def listing(
        self, *, kind: str | None = None, hospital: str | None = None, disease: str | None = None, limit: int = 50
    ) -> list[Hit]:
        """Items by facet, newest first (browsing without a query)."""
        where, params = self._filters(kind, hospital, disease)
        sql = (
            f"SELECT id, kind, col, hospital, title, summary, url FROM {self.table} WHERE true{where}"
            " ORDER BY published_at DESC, id LIMIT %s"
        )
        with self._conn() as conn:
            rows = conn.execute(sql, [*params, limit]).fetchall()
        return [Hit(r[0], r[1], r[2], r[3], r[4], r[5], r[6], 0.0) for r in rows]
