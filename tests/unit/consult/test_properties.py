"""Property tests of the state machine (hypothesis): whatever sequence of steps is tried, progress never
goes backwards, and a case is completed only when every invitee who accepted has a final report."""

from __future__ import annotations

from bianjie.consult import states
from bianjie.kit.errors import AppError
from hypothesis import given, settings
from hypothesis import strategies as st

INVITEES = ["b/1", "b/2", "c/3"]
STEP = st.one_of(
    st.tuples(st.just("consent"), st.none()),
    st.tuples(st.just("submit"), st.none()),
    st.tuples(st.just("accept"), st.sampled_from(INVITEES)),
    st.tuples(st.just("decline"), st.sampled_from(INVITEES)),
    st.tuples(st.just("join"), st.sampled_from([*INVITEES, "applicant"])),
    st.tuples(st.just("finish"), st.none()),
    st.tuples(st.just("final"), st.sampled_from(INVITEES)),
    st.tuples(st.just("cancel"), st.none()),
    st.tuples(st.just("lapse"), st.none()),
)


def apply(lc: states.Lifecycle, step: str, who: str | None) -> states.Lifecycle:
    if step == "consent":
        return states.record_consent(lc)
    if step == "submit":
        return states.submit(lc, INVITEES)
    if step in ("accept", "decline"):
        assert who
        return states.respond(lc, who, step == "accept")
    if step == "join":
        assert who
        return states.join(lc, who, applicant=who == "applicant")
    if step == "finish":
        return states.finish(lc)
    if step == "final":
        assert who
        return states.finalise(lc, who)
    if step == "cancel":
        return states.cancel(lc)
    return states.lapse(lc)


@settings(max_examples=400, deadline=None)
@given(st.lists(STEP, max_size=40))
def test_never_backwards_and_completed_only_with_every_accepted_final(steps: list[tuple[str, str | None]]) -> None:
    lc = states.Lifecycle(status="draft")
    for step, who in steps:
        try:
            new = apply(lc, step, who)
        except AppError as refused:
            assert refused.status in (403, 409) and refused.code
            continue
        assert states.progress(new) >= states.progress(lc), (step, lc, new)
        if lc.terminal:
            assert new.status == lc.status  # nothing leaves completed or cancelled
        if new.status == "completed":
            assert new.accepted and new.accepted <= new.finals
        lc = new


@given(st.lists(st.sampled_from(INVITEES), min_size=1, max_size=3, unique=True))
def test_reports_complete_the_case_exactly_when_the_last_accepted_signs(accepting: list[str]) -> None:
    lc = states.submit(states.record_consent(states.Lifecycle(status="draft")), INVITEES)
    for who in INVITEES:
        lc = states.respond(lc, who, who in accepting)
    lc = states.finish(states.join(lc, "applicant", applicant=True))
    for i, who in enumerate(accepting):
        lc = states.finalise(lc, who)
        assert (lc.status == "completed") == (i == len(accepting) - 1)
