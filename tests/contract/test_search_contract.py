"""Content search: the same contract for every backend (SQLite FTS5 as an object, PostgreSQL full text on
premises): quality on the labelled query set (P@10 >= 0.9, recall 1.0), filters and facets that add up,
browsing and listing, queries that are not words, and an index that holds exactly what it was last given."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from bianjie.content.adapters.postgres_search import PostgresSearch, tsvector_literal
from bianjie.content.adapters.sqlite_search import ObjectIndex
from bianjie.content.search import tokenizer
from bianjie.kit.objects import MemoryObjectStore
from bianjie_dev.content.testdata import labelled, library, precision_recall

DOCS = library(600)
NAMES = {"E11": "糖尿病", "E11.5": "糖尿病足", "I10": "高血压"}


@pytest.fixture(scope="module")
def pg_pool(postgres_dsn: str) -> Iterator[Any]:
    from bianjie.kit.documents.postgres import open_pool

    pool = open_pool(postgres_dsn, max_size=2)
    pool.wait(10)
    yield pool
    pool.close()


@pytest.fixture(params=["sqlite", "postgres"])
def make_index(request: pytest.FixtureRequest) -> Any:
    """A factory of empty indexes of one backend (each on its own object key or table)."""

    def make() -> Any:
        if request.param == "sqlite":
            return ObjectIndex(MemoryObjectStore(), "site", tokenizer())
        pool = request.getfixturevalue("pg_pool")
        return PostgresSearch(pool, tokenizer(), table="search_" + uuid.uuid4().hex[:10])

    return make


@pytest.fixture
def full(make_index: Any) -> Any:
    index = make_index()
    assert index.replace(DOCS, NAMES) == len(DOCS)
    return index


def test_labelled_queries_reach_the_targets(full: Any) -> None:
    full = full.current()
    scores = {}
    for case in labelled(DOCS):
        assert case.relevant, case.query
        ids = [h.id for h in full.search(case.query, limit=len(DOCS)).hits]
        scores[case.query] = precision_recall(ids, ids, case.relevant)
    for query, (p10, recall) in scores.items():
        assert p10 >= 0.9 and recall == 1.0, (query, p10, recall)


def test_the_title_outranks_the_summary(make_index: Any) -> None:
    [a, b] = DOCS[:2]
    in_title = replace(a, id="v-00000000000000aa", title="痛风的饮食", summary="专家讲解")
    in_summary = replace(b, id="v-00000000000000bb", title="专家讲解", summary="痛风的饮食")
    index = make_index()
    index.replace([in_summary, in_title], {})
    assert [h.id for h in index.current().search("痛风").hits] == [in_title.id, in_summary.id]


def test_filters_and_facets_add_up(full: Any) -> None:
    full = full.current()
    every = full.search("糖尿病", limit=1000)
    by_hospital = dict(every.facets["hospital"])
    assert every.total == sum(by_hospital.values()) == len(every.hits)
    hospital = every.facets["hospital"][0][0]
    narrowed = full.search("糖尿病", hospital=hospital, limit=1000)
    assert narrowed.total == by_hospital[hospital] and all(h.hospital == hospital for h in narrowed.hits)
    foot = full.search("糖尿病", disease="E11.5", limit=1000)
    assert foot.total == dict(every.facets["disease"])["E11.5"] > 0
    assert full.search("糖尿病", kind="article").total == 0
    assert every.facets["kind"] == [("video", every.total)]
    assert full.search("糖尿病", limit=3).total == every.total and len(full.search("糖尿病", limit=3).hits) == 3


def test_browse_and_listing(full: Any) -> None:
    index, full = full, full.current()
    assert sum(c for _, c in full.browse("disease")) == len(DOCS)
    assert sum(c for _, c in full.browse("hospital", kind="video")) == len(DOCS)
    newest = full.listing(kind="video", disease="I10", limit=5)
    assert len(newest) == 5 and all(h.id in {d.id for d in DOCS if "I10" in d.diseases} for h in newest)
    dates = {d.id: d.published_at for d in DOCS}
    assert [dates[h.id] for h in newest] == sorted((dates[h.id] for h in newest), reverse=True)
    assert index.disease_names() == NAMES


def test_queries_that_are_not_words_find_nothing_and_do_not_break(full: Any) -> None:
    full = full.current()
    for query in ['"', "'", "\\", "AND OR NOT", "*", "!!!", '糖尿病"OR"', "NEAR(a b)", "a & b | !c", "x:*", "':1A"]:
        full.search(query)  # no FTS5 or tsquery syntax error escapes
    assert full.search("！？").total == 0
    assert full.search("的").total == 0


def test_replace_holds_exactly_the_last_set(make_index: Any) -> None:
    index = make_index()
    first = DOCS[:50]
    index.replace(first, NAMES)
    retitled = replace(first[0], title="哮喘的居家护理")
    second = [retitled, *first[2:], DOCS[60]]  # one changed, one gone, one new
    assert index.replace(second, {"J45": "哮喘"}) == len(second)
    searcher = index.current()
    ids = {h.id for h in searcher.listing(limit=1000)}
    assert ids == {d.id for d in second}
    assert retitled.id in {h.id for h in searcher.search("哮喘 护理", limit=100).hits}
    assert index.disease_names() == {"J45": "哮喘"}
    assert index.replace([], {}) == 0 and index.current().listing() == []


def test_tsvector_literal_keeps_weights_and_quotes() -> None:
    literal = tsvector_literal([("A", "糖尿病 o'neil"), ("D", "糖尿病")])
    assert literal == "'糖尿病':1A,3D 'o''neil':2A"
