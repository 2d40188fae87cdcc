"""The state machine: each transition, and hypothesis-driven random sequences of operations that must
never move a prescription backwards, dispense it twice, after revocation or after expiry, or exceed its uses."""

from __future__ import annotations

import pytest
from bianjie.kit.errors import AppError
from bianjie.rx import states
from bianjie.rx.states import Lifecycle
from hypothesis import given, settings
from hypothesis import strategies as st

DAY = 86400.0


def fresh(**kw: object) -> Lifecycle:
    base: dict[str, object] = {"status": "precheck", "valid_end": 3 * DAY, "circulation": True}
    base.update(kw)
    return Lifecycle(**base)  # type: ignore[arg-type]


def refused(fn: object, *args: object, **kwargs: object) -> str:
    with pytest.raises(AppError) as err:
        fn(*args, **kwargs)  # type: ignore[operator]
    return err.value.code


def test_external_path() -> None:
    lc = states.upload(states.sign(fresh(), 0), 1)
    lc = states.release(lc, 2)
    lc = states.authorize(lc, 3, "P1", 3 + 3600)
    lc = states.review(lc, 4, "P1", True)
    lc = states.dispense(lc, 5, "P1")
    assert (lc.status, lc.uses, lc.finished) == ("dispensed", 1, True)
    assert refused(states.dispense, lc, 6, "P1") == "RX_ALREADY_DISPENSED"
    assert refused(states.revoke, lc, 6, by_issuer=True) == "RX_USED"
    assert refused(states.expire, lc, 4 * DAY) == "RX_CLOSED"


def test_in_hospital_and_channel() -> None:
    lc = states.confirm_in_hospital(states.upload(states.sign(fresh(), 0), 1), 2)
    assert (lc.status, lc.channel, lc.uses) == ("dispensed", "in_hospital", 1)
    released = states.release(states.upload(states.sign(fresh(), 0), 1), 2)
    assert refused(states.confirm_in_hospital, released, 3) == "RX_NOT_VALID"


def test_hold_and_takeover() -> None:
    lc = states.authorize(states.release(states.upload(states.sign(fresh(), 0), 1), 2), 3, "P1", 100)
    assert refused(states.authorize, lc, 50, "P2", 200) == "RX_HELD"
    assert refused(states.review, lc, 50, "P2", True) == "RX_NOT_AUTHORIZED"
    assert refused(states.revoke, lc, 50, by_issuer=True) == "RX_IN_USE"
    taken = states.authorize(lc, 101, "P2", 300)  # A's hold lapsed
    assert taken.holder == "P2"
    assert refused(states.review, taken, 102, "P1", True) == "RX_NOT_AUTHORIZED"


def test_reuse_interval_and_limit() -> None:
    lc = fresh(reusable=True, max_uses=2, min_interval_s=7 * DAY, valid_end=28 * DAY)
    lc = states.confirm_in_hospital(states.upload(states.sign(lc, 0), 1), 2)
    assert refused(states.reopen, lc, 3 * DAY) == "RX_INTERVAL"
    lc = states.reopen(lc, 7 * DAY + 2)
    assert (lc.status, lc.cycle) == ("valid", 1)
    lc = states.confirm_in_hospital(lc, 8 * DAY)
    assert lc.finished and refused(states.reopen, lc, 20 * DAY) == "RX_ALREADY_DISPENSED"


def test_expiry_and_revocation() -> None:
    lc = states.upload(states.sign(fresh(), 0), 1)
    assert refused(states.release, lc, 3 * DAY) == "RX_EXPIRED"
    assert states.expire(lc, 3 * DAY).status == "expired"
    assert refused(states.expire, lc, 2 * DAY) == "RX_NOT_DUE"
    assert refused(states.revoke, lc, 5, by_issuer=False) == "NOT_ISSUING_DOCTOR"
    gone = states.revoke(lc, 5, by_issuer=True)
    assert refused(states.release, gone, 6) == "RX_REVOKED"
    assert states.CENTER_STATUS[gone.status] == "3"


# -- property-based: random operations at random times

OPS = st.one_of(
    st.just(("sign",)),
    st.just(("upload",)),
    st.just(("confirm",)),
    st.just(("release",)),
    st.tuples(st.just("authorize"), st.sampled_from(["P1", "P2"])),
    st.tuples(st.just("review"), st.sampled_from(["P1", "P2"]), st.booleans()),
    st.tuples(st.just("dispense"), st.sampled_from(["P1", "P2"])),
    st.just(("reopen",)),
    st.tuples(st.just("revoke"), st.booleans()),
    st.just(("expire",)),
)


def apply(lc: Lifecycle, op: tuple, now: float) -> Lifecycle:
    name = op[0]
    if name == "sign":
        return states.sign(lc, now)
    if name == "upload":
        return states.upload(lc, now)
    if name == "confirm":
        return states.confirm_in_hospital(lc, now)
    if name == "release":
        return states.release(lc, now)
    if name == "authorize":
        return states.authorize(lc, now, op[1], now + 2 * 3600)
    if name == "review":
        return states.review(lc, now, op[1], op[2])
    if name == "dispense":
        return states.dispense(lc, now, op[1])
    if name == "reopen":
        return states.reopen(lc, now)
    if name == "revoke":
        return states.revoke(lc, now, by_issuer=op[1])
    return states.expire(lc, now)


def natural_next(lc: Lifecycle, pharmacy: str, flag: bool) -> tuple:
    """The step a real user would most likely take next, so random runs reach review and dispense."""
    nxt = {
        "precheck": ("sign",),
        "signed": ("upload",),
        "valid": ("release",) if lc.circulation and flag else ("confirm",),
        "released": ("authorize", pharmacy),
        "authorized": ("review", lc.holder or pharmacy, flag),
        "reviewed": ("dispense", lc.holder or pharmacy),
        "review_rejected": ("revoke", True),
        "dispensed": ("reopen",),
    }
    return nxt.get(lc.status, ("expire",))


WAITS = st.one_of(st.floats(0, 3600), st.floats(0, 2 * DAY))


@settings(max_examples=500, deadline=None)
@given(
    reusable=st.booleans(),
    max_uses=st.integers(1, 4),
    interval_days=st.integers(0, 5),
    valid_days=st.integers(1, 30),
    circulation=st.booleans(),
    steps=st.lists(st.tuples(st.integers(0, 9), OPS, WAITS, st.sampled_from(["P1", "P2"]), st.booleans()), max_size=50),
)
def test_random_operations_never_break_the_rules(
    reusable: bool, max_uses: int, interval_days: int, valid_days: int, circulation: bool, steps: list
) -> None:
    lc = fresh(
        reusable=reusable,
        max_uses=max_uses if reusable else 1,
        min_interval_s=interval_days * DAY,
        valid_end=valid_days * DAY,
        circulation=circulation,
    )
    allowed_uses = max_uses if reusable else 1
    now = 0.0
    for dice, random_op, wait, pharmacy, flag in steps:
        now += wait
        op = natural_next(lc, pharmacy, flag) if dice < 7 else random_op
        before = lc
        try:
            lc = apply(lc, op, now)
        except AppError as exc:
            assert 400 <= exc.status < 500 and exc.code.isupper()
            continue
        assert states.progress(lc) >= states.progress(before), (op, before.status, lc.status)
        if lc.uses > before.uses:
            # a use is only ever recorded on a live, in-date prescription, once per cycle
            assert before.status not in ("revoked", "expired", "dispensed")
            assert now < before.valid_end
            assert lc.uses == before.uses + 1 and lc.status == "dispensed"
        if before.status in states.TERMINAL:
            raise AssertionError(f"{op} changed a {before.status} prescription")
        assert lc.uses <= allowed_uses
        if op[0] == "revoke":
            assert before.uses == 0 and op[1]
        if op[0] == "dispense":
            assert before.status == "reviewed" and before.holder == op[1]
