"""Evaluation of the bot's understanding over the project's labelled question file
(``eval_questions.jsonl``: colloquial paraphrases written for it, never the entries' own questions,
alternatives or examples). Used by ``scripts/bench/assistant.py`` and by the unit test that holds the
targets (intent accuracy >= 0.95, FAQ R@1 >= 0.9)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from bianjie.assistant.understand import Interpretation, Understander

QUESTIONS = Path(__file__).with_name("eval_questions.jsonl")
TARGETS = {"intent_acc": 0.95, "faq_r1": 0.9}


@dataclass(frozen=True)
class Question:
    text: str
    intent: str | None
    faq: str | None

    @property
    def entry(self) -> str | None:
        return self.faq or self.intent


def questions() -> list[Question]:
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Question(r["text"], r.get("intent"), r.get("faq")) for r in rows]


def answered_intent(u: Interpretation) -> str | None:
    return u.entry.intent if u.entry is not None and u.kind in ("intent", "handoff") else None


def ranking(u: Interpretation) -> list[str]:
    """The entries in the order the bot would use them: the one it answered with (a rule's or
    retrieval's), then the other retrieval candidates."""
    first = [u.entry.id] if u.entry is not None and u.kind in ("intent", "faq", "handoff") else []
    return first + [c.entry_id for c in u.candidates if c.entry_id not in first]


@dataclass(frozen=True)
class Metrics:
    count: int
    intent_acc: float
    faq_r1: float
    faq_r3: float
    mrr: float
    misses: list[tuple[str, str | None, list[str]]]


def evaluate(understander: Understander, items: list[Question] | None = None) -> Metrics:
    items = items if items is not None else questions()
    intent_ok = 0
    r1 = r3 = 0
    rr = 0.0
    ranked_count = 0
    misses = []
    for q in items:
        u = understander.understand(q.text)
        intent_ok += answered_intent(u) == q.intent
        order = ranking(u)
        if q.faq is not None:
            ranked_count += 1
            r1 += order[:1] == [q.faq]
            r3 += q.faq in order[:3]
            rr += 1.0 / (order.index(q.faq) + 1) if q.faq in order else 0.0
        if order[:1] != [q.entry]:
            misses.append((q.text, q.entry, order[:3]))
    n = max(1, ranked_count)
    return Metrics(len(items), intent_ok / max(1, len(items)), r1 / n, r3 / n, rr / n, misses)
