"""The forward-only state machines of charges and refunds, as pure functions.

Charge::

    PENDING --(an attempt succeeds)--------------------------------> SUCCEEDED
    PENDING --(every planned agreement declined or closed)----------> FAILED

Attempt (one per agreement tried, ``out_trade_no`` = "<charge_id>-<n>")::

    CALLING --SUCCESS--> SUCCEEDED
    CALLING --FAIL-----> DECLINED   (definite decline: the next agreement may be tried)
    CALLING --CLOSED---> CLOSED     (the channel never took it and we closed it: also definite)
    CALLING --PROCESSING / no answer--> CALLING (query again later; never charge again)

Facts arrive from the synchronous answer, the query after a timeout, channel callbacks (duplicated,
reordered) and the sweeper; each is applied with ``apply_trade``, which is idempotent and never moves
a record backwards. A status change is appended to ``history`` exactly once.

Refund: PENDING -> SUCCEEDED | FAILED. ``charge.refund_reserved`` counts refunds accepted and not
failed, so the sum of refunds can never exceed the charge, even while some are in flight.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from bianjie.pay.channels import RefundAnswer, TradeAnswer, TradeState
from bianjie.pay.models import (
    Attempt,
    AttemptState,
    Channel,
    Charge,
    ChargeStatus,
    Refund,
    RefundStatus,
)

DEFINITE_NO = {AttemptState.DECLINED, AttemptState.CLOSED}


@dataclass(frozen=True)
class Change:
    charge: Charge
    status_changed: bool  # PENDING -> SUCCEEDED/FAILED happened in this change
    needs_call: bool  # a new attempt was opened and must be sent to its channel


def out_trade_no(charge_id: str, n: int) -> str:
    return f"{charge_id}-{n}"


def charge_id_of(out_trade_no: str) -> str:
    return out_trade_no.rsplit("-", 1)[0]


def _transition(charge: Charge, status: ChargeStatus, now: float, source: str, code: str | None = None) -> None:
    charge.history.append({"from": charge.status.value, "to": status.value, "at": now, "source": source})
    charge.status = status
    charge.next_check_at = None
    if code:
        charge.failure_code = code


def apply_trade(
    charge: Charge,
    trade_no: str,
    answer: TradeAnswer,
    now: float,
    source: str,
    *,
    open_next: bool = True,
    called: bool = True,
) -> Change | None:
    """The charge after learning ``answer`` about ``trade_no``; None when it changes nothing.

    ``open_next``: on a definite decline of the current attempt, open the next planned agreement's
    attempt (``called`` says whether the caller is about to send it right away).
    """
    attempt = charge.attempt_by_trade(trade_no)
    if attempt is None or answer.state in (TradeState.PROCESSING, TradeState.NOTFOUND):
        return None
    if attempt.state is not AttemptState.CALLING:
        if answer.state is TradeState.SUCCESS and attempt.state in DEFINITE_NO:
            # the channel contradicts a definite answer it gave: money may have moved; reconciliation
            # and an operator must look (recorded once)
            return _anomaly(charge, attempt, "SUCCESS_AFTER_DEFINITE_NO", now)
        return None

    new = copy.deepcopy(charge)
    att = new.attempt_by_trade(trade_no)
    assert att is not None
    status_changed = False
    needs_call = False
    if answer.state is TradeState.SUCCESS:
        att.state = AttemptState.SUCCEEDED
        att.channel_trade_no = answer.channel_trade_no
        att.success_time = answer.success_time or now
        if new.status is ChargeStatus.PENDING:
            _transition(new, ChargeStatus.SUCCEEDED, now, source)
            status_changed = True
        else:
            new.anomalies.append({"code": "SECOND_SUCCESS", "out_trade_no": trade_no, "at": now})
    else:  # FAIL or CLOSED: definite, nothing was charged on this attempt
        att.state = AttemptState.DECLINED if answer.state is TradeState.FAIL else AttemptState.CLOSED
        att.decline_code = answer.fail_code or answer.state.value
        att.channel_trade_no = answer.channel_trade_no
        if new.status is ChargeStatus.PENDING and att is new.current:
            if open_next and len(new.attempts) < len(new.plan):
                _open_attempt(new, called)
                needs_call = called
            elif len(new.attempts) >= len(new.plan):
                _transition(new, ChargeStatus.FAILED, now, source, code=att.decline_code)
                status_changed = True
    new.version += 1
    new.updated_at = now
    return Change(new, status_changed, needs_call)


def _open_attempt(charge: Charge, called: bool) -> Attempt:
    """Opens the attempt for the next planned agreement."""
    n = len(charge.attempts) + 1
    step = charge.plan[n - 1]
    attempt = Attempt(
        n=n,
        channel=Channel(step["channel"]),
        agreement_id=step["agreement_id"],
        out_trade_no=out_trade_no(charge.charge_id, n),
    )
    charge.attempts.append(attempt)
    if not called:
        charge.next_check_at = 0.0  # due now: the sweeper sends it
    return attempt


def skip_attempt(charge: Charge, code: str, now: float, source: str) -> Change:
    """The current attempt cannot be sent (agreement terminated meanwhile): a definite no, nothing sent."""
    current = charge.current
    assert current is not None and current.state is AttemptState.CALLING
    return apply_trade(
        charge, current.out_trade_no, TradeAnswer(TradeState.CLOSED, fail_code=code), now, source
    ) or Change(charge, False, False)


def _anomaly(charge: Charge, attempt: Attempt, code: str, now: float) -> Change | None:
    if any(a.get("out_trade_no") == attempt.out_trade_no and a.get("code") == code for a in charge.anomalies):
        return None
    new = copy.deepcopy(charge)
    new.anomalies.append({"code": code, "out_trade_no": attempt.out_trade_no, "at": now})
    new.version += 1
    new.updated_at = now
    return Change(new, False, False)


def apply_refund(refund: Refund, charge: Charge, answer: RefundAnswer, now: float) -> tuple[Refund, Charge] | None:
    """Refund and charge after learning ``answer``; None when nothing changes (forward-only)."""
    if refund.status is not RefundStatus.PENDING or answer.state in (TradeState.PROCESSING, TradeState.NOTFOUND):
        return None
    r = copy.deepcopy(refund)
    c = copy.deepcopy(charge)
    if answer.state is TradeState.SUCCESS:
        r.status = RefundStatus.SUCCEEDED
        r.channel_refund_no = answer.channel_refund_no
        r.success_time = answer.success_time or now
        c.refunded += r.amount
    else:
        r.status = RefundStatus.FAILED
        r.failure_code = answer.fail_code or answer.state.value
        c.refund_reserved -= r.amount
    r.next_check_at = None
    r.version += 1
    r.updated_at = now
    c.version += 1
    c.updated_at = now
    return r, c
