"""Properties of understanding over generated text: it never fails on any input, an emergency phrase
anywhere in a message wins over everything else, and a published entry's own question finds it."""

from __future__ import annotations

from bianjie.assistant import kb
from bianjie.assistant.understand import Understander
from hypothesis import given, settings
from hypothesis import strategies as st

U = Understander(kb.base())
EMERGENCIES = ["胸口疼得厉害", "突然呼吸困难", "我想自杀", "老人昏迷了", "大出血"]
ENTRY_QUESTIONS = [e.question for e in kb.base()]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500))
def test_any_text_is_understood_without_error(text: str) -> None:
    u = U.understand(text)
    assert u.kind in ("emergency", "handoff", "refusal", "intent", "faq", "clarify", "unknown")
    assert 0.0 <= u.confidence <= 1.0
    assert u.source


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.sampled_from(EMERGENCIES), st.text(max_size=40), st.sampled_from(ENTRY_QUESTIONS))
def test_an_emergency_anywhere_comes_first(before: str, phrase: str, after: str, question: str) -> None:
    assert U.understand(f"{question}{before}{phrase}{after}").kind == "emergency"


def test_every_entry_is_found_by_its_own_alternatives() -> None:
    for entry in kb.base():
        for text in entry.alternatives:
            ranked = [c.entry_id for c in U.rank(text, k=3)]
            assert entry.id in ranked, (entry.id, text, ranked)
