"""Chinese search over the published articles and videos: one tokenizer (rjieba with the medical
dictionary, the synonym table, pinyin and initials through pypinyin) that every backend shares, and the
port the search functions use. The SQLite FTS5 backend is ``bianjie.content.adapters.sqlite_search``.

Documents are indexed as ``cut_for_search`` tokens (so 妊娠糖尿病 is found by 糖尿病) plus the canonical
term of every synonym they contain; the pinyin column holds each Chinese token's full pinyin and its
initials (糖尿病 -> tangniaobing, tnb). A query is cut precisely; each term matches itself or its
synonyms, all terms must match; a query in Latin letters is read as pinyin or initials.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bianjie.content.lexicon import MEDICAL_WORDS, PINYIN_OVERRIDES, STOPWORDS, SYNONYMS

_HAN = re.compile(r"[\u3400-\u9fff]")
_WORD = re.compile(r"[\w\u3400-\u9fff]+")
_LATIN = re.compile(r"[a-z0-9 ]+")
FIELDS = ("title", "summary", "tags", "body", "py")
# bm25 weights per column (title counts most, then tags, summary, body, pinyin)
WEIGHTS = (8.0, 2.0, 4.0, 1.0, 2.0)


@dataclass(frozen=True)
class SearchDoc:
    """What the index holds of one published item."""

    id: str
    kind: str  # article | video
    column: str
    hospital: str
    title: str
    summary: str
    body: str
    tags: Sequence[str]
    diseases: Sequence[str]  # ICD-10 codes
    url: str
    published_at: str


@dataclass(frozen=True)
class Hit:
    id: str
    kind: str
    column: str
    hospital: str
    title: str
    summary: str
    url: str
    score: float


@dataclass(frozen=True)
class Results:
    terms: list[str]
    total: int
    hits: list[Hit]
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class Searcher(Protocol):
    def search(
        self,
        query: str,
        *,
        kind: str | None = None,
        hospital: str | None = None,
        disease: str | None = None,
        limit: int = 10,
    ) -> Results: ...


class Tokenizer:
    def __init__(self) -> None:
        import rjieba

        self._jieba = rjieba.Jieba()
        for word in (*MEDICAL_WORDS, *SYNONYMS, *SYNONYMS.values()):
            self._jieba.add_word(word, 200000, None)

    @staticmethod
    def _normal(text: str) -> str:
        return unicodedata.normalize("NFKC", text).lower()

    def _keep(self, tokens: Iterable[str]) -> list[str]:
        return [t for t in tokens if _WORD.fullmatch(t) and t not in STOPWORDS]

    def index_terms(self, text: str) -> list[str]:
        tokens = self._keep(self._jieba.cut_for_search(self._normal(text), True))
        tokens += [SYNONYMS[t] for t in tokens if t in SYNONYMS]
        return tokens

    def pinyin_terms(self, tokens: Iterable[str]) -> list[str]:
        out: list[str] = []
        for token in tokens:
            if _HAN.search(token):
                full, initials = _pinyin(token)
                out += [full, initials]
                if token in PINYIN_OVERRIDES:
                    out.append(PINYIN_OVERRIDES[token])
        return out

    def query_terms(self, query: str) -> list[list[str]]:
        """Each term with its alternatives (a synonym's canonical term and the aliases that fold into it)."""
        text = self._normal(query).strip()
        if _LATIN.fullmatch(text):
            return [[t] for t in text.split() if t]
        terms: list[list[str]] = []
        for token in self._keep(self._jieba.cut(text, True)):
            canonical = SYNONYMS.get(token, token)
            alternatives = [token] if canonical == token else [token, canonical]
            terms.append(alternatives)
        return terms

    def document(self, doc: SearchDoc) -> dict[str, str]:
        """The segmented columns of a document (space-joined tokens)."""
        title = self.index_terms(doc.title)
        summary = self.index_terms(doc.summary)
        tags = self.index_terms(" ".join(doc.tags))
        body = self.index_terms(doc.body)
        return {
            "title": " ".join(title),
            "summary": " ".join(summary),
            "tags": " ".join(tags),
            "body": " ".join(body),
            "py": " ".join(self.pinyin_terms([*title, *tags, *summary])),
        }


@functools.lru_cache(maxsize=65536)
def _pinyin(token: str) -> tuple[str, str]:
    from pypinyin import Style, lazy_pinyin

    syllables = [s for s in lazy_pinyin(token, style=Style.NORMAL, errors="ignore") if s.isascii()]
    return "".join(syllables), "".join(s[0] for s in syllables if s)


@functools.cache
def tokenizer() -> Tokenizer:
    """One per process: loading the dictionary costs ~0.15 s, so it is done once."""
    return Tokenizer()


def doc_of(record: dict[str, Any]) -> SearchDoc:
    """A published record as the index sees it."""
    diseases = record.get("diseases") or []
    tags = [*(d["name"] for d in diseases), *(a for d in diseases for a in d.get("aliases", []))]
    tags += list(record.get("departments") or [])
    if record.get("topic"):
        tags.append(record["topic"])
    kind = record["kind"]
    return SearchDoc(
        id=record["id"],
        kind=kind,
        column=record["column"],
        hospital=record["hospital"],
        title=record["title"],
        summary=record.get("summary") or "",
        body=record.get("body") or "",
        tags=tags,
        diseases=[d["code"] for d in diseases],
        url=f"/content/site/{'articles' if kind == 'article' else 'videos'}/{record['id']}",
        published_at=record.get("published_at") or "",
    )
