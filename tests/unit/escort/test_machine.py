"""The invitation's state machine (property tests): final states stay final, the lock counts exactly
five wrong codes, only a pending invitation can be joined."""

from __future__ import annotations

import pytest
from bianjie.escort.model import FINAL, MAX_CODE_FAILURES, Machine, Status, TransitionRefused, step
from hypothesis import given
from hypothesis import strategies as st

EVENTS = st.sampled_from(["join", "wrong_code", "expire", "revoke", "end"])


def run(events: list[str]) -> list[tuple[Machine, str, Machine | None]]:
    state = Machine(Status.PENDING)
    trace = []
    for event in events:
        try:
            nxt: Machine | None = step(state, event)  # type: ignore[arg-type]
        except TransitionRefused:
            nxt = None
        trace.append((state, event, nxt))
        state = nxt or state
    return trace


@given(st.lists(EVENTS, max_size=40))
def test_final_states_refuse_every_event(events: list[str]) -> None:
    for before, _event, after in run(events):
        if before.status in FINAL:
            assert after is None


@given(st.lists(EVENTS, max_size=40))
def test_failures_never_exceed_the_lock_and_lock_exactly_at_five(events: list[str]) -> None:
    for before, event, after in run(events):
        if after is None:
            continue
        assert after.failures <= MAX_CODE_FAILURES
        if event == "wrong_code":
            assert after.failures == before.failures + 1
            assert (after.status is Status.LOCKED) == (after.failures == MAX_CODE_FAILURES)
        else:
            assert after.failures == before.failures


@given(st.lists(EVENTS, max_size=40))
def test_active_only_by_joining_a_pending_invitation(events: list[str]) -> None:
    for before, event, after in run(events):
        if after is not None and after.status is Status.ACTIVE and before.status is not Status.ACTIVE:
            assert event == "join" and before.status is Status.PENDING


@given(st.lists(EVENTS, max_size=40))
def test_every_reachable_state_is_one_of_the_six(events: list[str]) -> None:
    seen = {Status.PENDING}
    for _before, _event, after in run(events):
        if after is not None:
            seen.add(after.status)
    assert seen <= set(Status)


@pytest.mark.parametrize(
    ("status", "event", "expected"),
    [
        (Status.PENDING, "join", Status.ACTIVE),
        (Status.PENDING, "expire", Status.EXPIRED),
        (Status.PENDING, "revoke", Status.REVOKED),
        (Status.ACTIVE, "revoke", Status.REVOKED),
        (Status.ACTIVE, "end", Status.ENDED),
    ],
)
def test_the_allowed_moves(status: Status, event: str, expected: Status) -> None:
    assert step(Machine(status), event).status is expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "event"),
    [(Status.ACTIVE, "join"), (Status.ACTIVE, "wrong_code"), (Status.PENDING, "end"), (Status.ACTIVE, "expire")],
)
def test_moves_that_cannot_happen_are_refused(status: Status, event: str) -> None:
    with pytest.raises(TransitionRefused):
        step(Machine(status), event)  # type: ignore[arg-type]
