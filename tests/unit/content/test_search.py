"""Search quality on the labelled query set (P@10 and recall; target P@10 >= 0.9), the tokenizer's
pinyin, initials, synonyms and medical words, filters and facets."""

from __future__ import annotations

import pytest
from bianjie.content.adapters.sqlite_search import SqliteSearch, build
from bianjie.content.search import tokenizer
from bianjie_dev.content.testdata import labelled, library, precision_recall


@pytest.fixture(scope="module")
def index() -> tuple[SqliteSearch, list]:
    docs = library(600)
    return SqliteSearch(build(docs, tokenizer()), tokenizer()), docs


def test_labelled_queries_reach_the_targets(index: tuple[SqliteSearch, list]) -> None:
    searcher, docs = index
    scores = {}
    for case in labelled(docs):
        assert case.relevant, case.query
        results = searcher.search(case.query, limit=len(docs))
        ids = [h.id for h in results.hits]
        scores[case.query] = precision_recall(ids, ids, case.relevant)
    mean_p10 = sum(p for p, _ in scores.values()) / len(scores)
    assert mean_p10 >= 0.9, scores
    for query, (p10, recall) in scores.items():
        assert p10 >= 0.9 and recall == 1.0, (query, p10, recall)


def test_tokenizer_knows_medical_words_pinyin_and_synonyms() -> None:
    t = tokenizer()
    assert "慢阻肺" in t.index_terms("慢阻肺患者的康复")
    assert "脑卒中" in t.index_terms("中风的早期信号")
    assert {"tangniaobing", "tnb"} <= set(t.pinyin_terms(["糖尿病"]))
    assert t.query_terms("中风") == [["中风", "脑卒中"]]
    assert t.query_terms("TNB") == [["tnb"]]
    assert t.query_terms("的") == []


def test_filters_and_facets(index: tuple[SqliteSearch, list]) -> None:
    searcher, docs = index
    every = searcher.search("糖尿病", limit=1000)
    by_hospital = dict(every.facets["hospital"])
    assert sum(by_hospital.values()) == every.total
    hospital = every.facets["hospital"][0][0]
    narrowed = searcher.search("糖尿病", hospital=hospital, limit=1000)
    assert narrowed.total == by_hospital[hospital] and all(h.hospital == hospital for h in narrowed.hits)
    foot = searcher.search("糖尿病", disease="E11.5", limit=1000)
    assert foot.total == dict(every.facets["disease"])["E11.5"]
    assert sum(c for _, c in searcher.browse("disease")) == len(docs)


def test_queries_that_are_not_words_find_nothing_and_do_not_break(index: tuple[SqliteSearch, list]) -> None:
    searcher, _ = index
    for query in ['"', "AND OR NOT", "*", "!!!", '糖尿病"OR"', "NEAR(a b)"]:
        searcher.search(query)  # no FTS5 syntax error escapes
    assert searcher.search("！？").total == 0


@pytest.mark.parametrize(
    ("documents", "chosen", "expected"),
    [
        ("dynamodb", None, "sqlite"),
        ("postgres", None, "postgres"),
        ("postgres", "sqlite", "sqlite"),
        ("dynamodb", "POSTGRES", "postgres"),
    ],
)
def test_the_backend_follows_the_documents_unless_told(
    monkeypatch: pytest.MonkeyPatch, documents: str, chosen: str | None, expected: str
) -> None:
    from bianjie.content import wiring
    from bianjie.kit.config import reset_settings

    monkeypatch.setenv("BIANJIE_DOCUMENTS", documents)
    if chosen is None:
        monkeypatch.delenv("CONTENT_SEARCH", raising=False)
    else:
        monkeypatch.setenv("CONTENT_SEARCH", chosen)
    reset_settings()
    try:
        assert wiring.search_backend() == expected
    finally:
        monkeypatch.undo()
        reset_settings()


def test_an_unknown_backend_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from bianjie.content import wiring

    monkeypatch.setenv("CONTENT_SEARCH", "elastic")
    with pytest.raises(RuntimeError, match="CONTENT_SEARCH must be sqlite or postgres"):
        wiring.search_backend()
