"""Charges and refunds: the algorithm that settles a hospital bill against a patient's agreements.

``create``:
1. the hospital's order number is claimed together with the charge record (PENDING, first attempt
   recorded as CALLING) before any channel is asked, so a crash leaves something to query;
2. the current attempt is sent; the answer is applied with ``states.apply_trade``:
   SUCCESS -> SUCCEEDED; a definite decline -> the next agreement's attempt is opened and sent;
   PROCESSING -> stays PENDING (callback or sweeper finishes it);
3. no answer (timeout, unverifiable) -> query the trade; NOTFOUND -> close it (then it is definite);
   still unknown -> stays PENDING. The same out_trade_no is never charged twice and a new attempt is
   opened only after a definite no;
4. the whole loop has a time budget; when it runs out the answer is PENDING.

Every write is conditioned on the version read (``PayStore.charge_put``); a writer that loses re-reads
and re-applies its fact, which is idempotent. A final state's hospital webhook is an outbox intent
written in the same transaction as the transition (so a transition and its webhook commit together or
not at all), dispatched right after the commit, and relayed by a schedule if that dispatch never happens.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bianjie.kit.actor import Actor
from bianjie.kit.crypto import sm3
from bianjie.kit.documents.port import ConditionFailed, Operation, TransactionCanceled
from bianjie.kit.errors import AppError, Conflict, NotFound
from bianjie.kit.idempotency import Answer, Idempotency
from bianjie.kit.logging import get_logger
from bianjie.pay import states
from bianjie.pay.agreements import AgreementService, new_id
from bianjie.pay.api import ChargeCreate, ChargeView, charge_view
from bianjie.pay.channels import ChannelPort, ChannelRejected, ChannelUnknown, RefundAnswer, TradeAnswer, TradeState
from bianjie.pay.models import (
    Agreement,
    AgreementStatus,
    Attempt,
    AttemptState,
    Channel,
    Charge,
    ChargeStatus,
    Refund,
    RefundStatus,
)
from bianjie.pay.store import PayStore

log = get_logger("bianjie.pay")

# Sweeper backoff for a charge or refund still pending: seconds after each check.
CHECK_BACKOFF = (30, 60, 120, 300, 600, 1800, 3600)
MAX_WRITE_RETRIES = 20


class ChargeEvents(Protocol):
    """Where final states go (``webhooks.PayEvents``: the hospital webhook and pay's domain event through
    the kit outbox): intents whose rows commit with the transition, dispatched after the commit (a relay
    sends what a crash left behind)."""

    def charge_final(self, charge: Charge, now: float) -> Sequence[Any]: ...
    def refund_final(self, refund: Refund, charge: Charge, now: float) -> Sequence[Any]: ...
    def puts(self, intents: Sequence[Any]) -> Sequence[Operation]: ...
    def dispatch(self, intents: Sequence[Any]) -> int: ...


@dataclass(frozen=True)
class ChargeRequest:
    order_no: str
    patient_id: str
    amount: int
    description: str
    notify_url: str | None = None
    visit_id: str | None = None  # the hospital's visit, passed on in pay's events (guide places them)


@dataclass(frozen=True)
class RefundRequest:
    refund_no: str
    amount: int
    reason: str


def charge_id_for(app_id: str, order_no: str) -> str:
    """The charge id is derived from the hospital's order number, so the charge record's own
    conditional put makes an order number chargeable once (no separate claim, no transaction)."""
    return "ch" + sm3(f"{app_id}\n{order_no}".encode()).hex()[:28]


class ChargeService:
    def __init__(
        self,
        store: PayStore,
        agreements: AgreementService,
        channels: Mapping[Channel, ChannelPort],
        events: ChargeEvents,
        audit: Any,
        blind_index: Any,
        clock: Callable[[], float] = time.time,
        budget_seconds: float = 3.0,
        idempotency: Idempotency | None = None,
        notify_check: Callable[[str, Actor], None] | None = None,
    ) -> None:
        self._idempotency = idempotency
        self._notify_check = notify_check
        self._store = store
        self._agreements = agreements
        self._channels = channels
        self._events = events
        self._audit = audit
        self._index = blind_index
        self._clock = clock
        self._budget = budget_seconds

    # ---------------------------------------------------------------- create

    def submit(self, hospital: Actor, key: str | None, body: ChargeCreate) -> Answer[ChargeView]:
        """``POST /pay/charges``. Key: the ``Idempotency-Key`` header, per hospital (the order number
        alone also never charges twice, see ``charge_id_for``). A refusal binds no key; a replay
        describes the charge as it is now. 202 while the charge is PENDING, 201 once final."""
        if self._idempotency is None:
            raise RuntimeError("ChargeService.submit needs an idempotency store")
        if not key:
            raise AppError(
                "send an Idempotency-Key header (reuse it when retrying)", code="IDEMPOTENCY_KEY_REQUIRED", status=400
            )
        if body.notify_url and self._notify_check is not None:
            self._notify_check(body.notify_url, hospital)  # before anything is written: binds no key
        request = ChargeRequest(
            body.order_no, body.patient_id, body.amount, body.description, body.notify_url, body.visit_id
        )
        answer = self._idempotency.once(
            f"pay.charges#{hospital.id}",
            key,
            body,
            lambda: charge_view(self.create(hospital, request)),
            model=ChargeView,
            current=lambda stored: charge_view(self.get(hospital.id, stored.charge_id)),
        )
        return answer.with_status(202 if answer.value.status == ChargeStatus.PENDING.value else 201)

    def create(self, hospital: Actor, req: ChargeRequest) -> Charge:
        app_id = hospital.id
        charge_id = charge_id_for(app_id, req.order_no)
        # No read of the charge first: a new order number is the common case, and the conditional create
        # below refuses a used one (then the charge is read). The agreements are read anyway.
        active = self._agreements.active(req.patient_id)
        audit = {
            "actor": hospital,
            "action": "pay.charge.create",
            "resource": f"pay.order:{req.order_no}",
            "patient_ref": self._index.digest(req.patient_id, "patient_id"),
            "details": {"amount": req.amount, "agreements": len(active), "charge_id": charge_id},
        }
        if not active:
            existing = self._store.charge(charge_id)
            if existing is not None:  # a repeated order whose patient has since ended every agreement
                return self._same_order(existing, req)
            self._audit.record(**audit, outcome="failure")
            raise AppError(
                "the patient has no active payment agreement; ask them to sign one",
                code="NO_ACTIVE_AGREEMENT",
                status=422,
            )
        now = self._clock()
        first = active[0]
        charge = Charge(
            charge_id=charge_id,
            app_id=app_id,
            order_no=req.order_no,
            patient_id=req.patient_id,
            amount=req.amount,
            description=req.description,
            status=ChargeStatus.PENDING,
            plan=[{"agreement_id": a.agreement_id, "channel": a.channel.value} for a in active],
            attempts=[
                Attempt(1, first.channel, first.agreement_id, states.out_trade_no(charge_id, 1), AttemptState.CALLING)
            ],
            created_at=now,
            updated_at=now,
            notify_url=req.notify_url,
            visit_id=req.visit_id,
            next_check_at=now + CHECK_BACKOFF[0],
        )
        try:
            # the audit record and the charge record commit together (one transaction, one round trip
            # fewer than two writes): a charge never exists without the record of who asked for it
            self._audit.record(**audit, also=[self._store.create_charge_put(charge)])
        except TransactionCanceled as exc:
            if not exc.reasons or not exc.reasons[0]:
                raise
            # a concurrent request with the same order number won
            existing = self._store.charge(charge_id)
            if existing is None:
                raise
            return self._same_order(existing, req)
        return self._drive(
            charge, deadline=time.monotonic() + self._budget, agreements={a.agreement_id: a for a in active}
        )

    def _same_order(self, charge: Charge, req: ChargeRequest) -> Charge:
        if charge.patient_id != req.patient_id or charge.amount != req.amount:
            raise Conflict("this order number was already used for another patient or amount", code="ORDER_NO_REUSED")
        return charge

    def _drive(self, charge: Charge, deadline: float, agreements: dict[str, Agreement] | None = None) -> Charge:
        """Send the current attempt, apply the answer, repeat while a definite no opens another one."""
        sends = 0
        while charge.status is ChargeStatus.PENDING and sends < len(charge.plan):
            attempt = charge.current
            assert attempt is not None
            if attempt.state is not AttemptState.CALLING:
                break
            agreement = (agreements or {}).get(attempt.agreement_id) or self._store.agreement(
                charge.patient_id, attempt.agreement_id
            )
            if agreement is None or agreement.status is not AgreementStatus.ACTIVE:
                charge = self._skip(charge, attempt.out_trade_no, "AGREEMENT_TERMINATED")
                continue
            answer = self._send(charge, attempt, agreement)
            sends += 1
            if answer is None:
                break  # unknown: stays PENDING, the sweeper (or a callback) settles it
            charge = self.apply(charge.charge_id, attempt.out_trade_no, answer, source="answer", current=charge)
            if time.monotonic() > deadline:
                break
        return charge

    def _send(self, charge: Charge, attempt: Attempt, agreement: Agreement) -> TradeAnswer | None:
        port = self._channels[attempt.channel]
        try:
            return port.charge(
                attempt.out_trade_no, self._agreements.agreement_no(agreement), charge.amount, charge.description
            )
        except ChannelRejected as exc:
            # the channel refused the request itself (e.g. agreement unknown there): nothing was charged
            return TradeAnswer(TradeState.FAIL, fail_code=exc.code)
        except ChannelUnknown:
            log.info("charge outcome unknown; querying", extra={"out_trade_no": attempt.out_trade_no})
            return self.resolve(port, attempt.out_trade_no)

    def resolve(self, port: ChannelPort, trade_no: str) -> TradeAnswer | None:
        """What the channel says about a trade whose outcome we do not know; None if it cannot say yet."""
        try:
            answer = port.query_trade(trade_no)
            if answer.state is TradeState.NOTFOUND:
                # never reached the channel: close the number so it cannot succeed later, then it is definite
                answer = port.close_trade(trade_no)
        except (ChannelUnknown, ChannelRejected):
            return None
        return None if answer.state in (TradeState.PROCESSING, TradeState.NOTFOUND) else answer

    def _skip(self, charge: Charge, trade_no: str, code: str) -> Charge:
        return self.apply(
            charge.charge_id, trade_no, TradeAnswer(TradeState.CLOSED, fail_code=code), "skip", current=charge
        )

    # ---------------------------------------------------------------- apply facts

    def apply(
        self,
        charge_id: str,
        trade_no: str,
        answer: TradeAnswer,
        source: str,
        *,
        current: Charge | None = None,
        extra: Sequence[Operation] = (),
        called: bool = True,
    ) -> Charge:
        """Apply a fact about ``trade_no`` with optimistic retries; ``extra`` operations (the callback
        inbox record) commit in the same transaction. Raises ``TransactionCanceled`` with the extra
        operation's reason when one of those fails (a duplicate notification)."""
        charge = current
        for _ in range(MAX_WRITE_RETRIES):
            if charge is None:
                charge = self._store.charge(charge_id)
                if charge is None:
                    raise NotFound("no such charge", code="CHARGE_NOT_FOUND")
            now = self._clock()
            change = states.apply_trade(charge, trade_no, answer, now, source, called=called)
            ops: list[Operation] = list(extra)
            intents: Sequence[Any] = ()
            if change is not None:
                ops.append(self._store.charge_put(change.charge, charge.version))
                if change.status_changed:
                    intents = self._events.charge_final(change.charge, now)
                    ops += self._events.puts(intents)
            if not ops:
                return charge
            try:
                self._store.commit(ops)
            except (ConditionFailed, TransactionCanceled) as exc:
                if change is None or any(getattr(exc, "reasons", [])[: len(extra)]):
                    raise  # an extra operation failed (the notification was seen before)
                charge = None  # someone else moved the charge: re-read, re-apply
                continue
            if change is None:
                return charge
            self._events.dispatch(intents)
            return change.charge
        raise Conflict("the charge is busy; retry shortly", code="IN_PROGRESS")

    # ---------------------------------------------------------------- reads

    def get(self, app_id: str, charge_id: str) -> Charge:
        charge = self._store.charge(charge_id)
        if charge is None or charge.app_id != app_id:
            raise NotFound("no such charge for this hospital", code="CHARGE_NOT_FOUND")
        return charge

    def read(self, hospital: Actor, charge_id: str) -> Charge:
        """``get`` for a hospital's query (代扣查询): the answer names the patient, so it is audited."""
        charge = self.get(hospital.id, charge_id)
        self._audit.record(
            actor=hospital,
            action="pay.charge.read",
            resource=f"pay.charge:{charge_id}",
            patient_ref=self._index.digest(charge.patient_id, "patient_id"),
        )
        return charge

    def refunds(self, charge_id: str) -> list[Refund]:
        return self._store.refunds(charge_id)

    # ---------------------------------------------------------------- refunds

    def refund(self, hospital: Actor, charge_id: str, req: RefundRequest) -> Refund:
        """Key: the hospital's ``refund_no`` (per charge): a retry gets the refund as it is now."""
        for _ in range(MAX_WRITE_RETRIES):
            charge = self.get(hospital.id, charge_id)
            existing = self._store.refund(charge_id, req.refund_no)
            if existing is not None:
                if existing.amount != req.amount:
                    raise Conflict("this refund number was used with another amount", code="REFUND_NO_REUSED")
                return existing
            won = charge.succeeded_attempt
            if charge.status is not ChargeStatus.SUCCEEDED or won is None:
                raise Conflict(f"a {charge.status.value} charge cannot be refunded", code="CHARGE_NOT_REFUNDABLE")
            remaining = charge.amount - charge.refund_reserved
            if req.amount > remaining:
                raise Conflict(
                    "refunds would exceed the charged amount",
                    code="REFUND_EXCEEDS_CHARGE",
                    details={"amount": charge.amount, "refundable": remaining},
                )
            now = self._clock()
            refund = Refund(
                charge_id=charge_id,
                refund_no=req.refund_no,
                out_refund_no=f"{charge_id}-r{new_id('')}",
                amount=req.amount,
                reason=req.reason,
                status=RefundStatus.PENDING,
                channel=won.channel,
                out_trade_no=won.out_trade_no,
                created_at=now,
                updated_at=now,
                next_check_at=now + CHECK_BACKOFF[0],
            )
            reserved = _bump(charge, now, refund_reserved=charge.refund_reserved + req.amount)
            try:
                # reservation, refund record and its audit record in one transaction
                self._audit.record(
                    actor=hospital,
                    action="pay.refund.create",
                    resource=f"pay.charge:{charge_id}",
                    patient_ref=self._index.digest(charge.patient_id, "patient_id"),
                    details={"refund_no": req.refund_no, "amount": req.amount},
                    also=[self._store.refund_put(refund, None), self._store.charge_put(reserved, charge.version)],
                )
            except (ConditionFailed, TransactionCanceled):
                continue  # a concurrent refund: re-read (ours may now exist, or the bound may now bite)
            return self._send_refund(refund, reserved)
        raise Conflict("the charge is busy; retry shortly", code="IN_PROGRESS")

    def _send_refund(self, refund: Refund, charge: Charge) -> Refund:
        port = self._channels[refund.channel]
        answer: RefundAnswer | None
        try:
            answer = port.refund(refund.out_refund_no, refund.out_trade_no, refund.amount)
        except ChannelRejected as exc:
            answer = RefundAnswer(TradeState.FAIL, fail_code=exc.code)
        except ChannelUnknown:
            answer = self.resolve_refund(port, refund.out_refund_no)
            if answer is None:
                return refund
        return self.apply_refund(refund.charge_id, refund.refund_no, answer)

    def resolve_refund(self, port: ChannelPort, out_refund_no: str) -> RefundAnswer | None:
        try:
            answer = port.query_refund(out_refund_no)
        except (ChannelUnknown, ChannelRejected):
            return None
        return None if answer.state in (TradeState.PROCESSING, TradeState.NOTFOUND) else answer

    def apply_refund(
        self, charge_id: str, refund_no: str, answer: RefundAnswer, extra: Sequence[Operation] = ()
    ) -> Refund:
        for _ in range(MAX_WRITE_RETRIES):
            refund = self._store.refund(charge_id, refund_no)
            charge = self._store.charge(charge_id)
            if refund is None or charge is None:
                raise NotFound("no such refund", code="REFUND_NOT_FOUND")
            now = self._clock()
            changed = states.apply_refund(refund, charge, answer, now)
            ops: list[Operation] = list(extra)
            intents: Sequence[Any] = ()
            if changed is not None:
                ops += [
                    self._store.refund_put(changed[0], refund.version),
                    self._store.charge_put(changed[1], charge.version),
                ]
                intents = self._events.refund_final(changed[0], changed[1], now)
                ops += self._events.puts(intents)
            if not ops:
                return refund
            try:
                self._store.commit(ops)
            except (ConditionFailed, TransactionCanceled) as exc:
                if changed is None or any(getattr(exc, "reasons", [])[: len(extra)]):
                    raise
                continue
            if changed is None:
                return refund
            self._events.dispatch(intents)
            return changed[0]
        raise Conflict("the refund is busy; retry shortly", code="IN_PROGRESS")

    # ---------------------------------------------------------------- sweeper

    def sweep(self, limit: int = 100) -> dict[str, int]:
        """Query channels for charges and refunds still pending whose next check is due."""
        now = self._clock()
        counts = {"checked": 0, "settled": 0, "still_pending": 0}
        for item in self._store.due(now, limit=limit):
            counts["checked"] += 1
            if item["sk"] == "CHARGE":
                settled = self._sweep_charge(item["charge_id"])
            else:
                settled = self._sweep_refund(item["charge_id"], item["refund_no"])
            counts["settled" if settled else "still_pending"] += 1
        return counts

    def _sweep_charge(self, charge_id: str) -> bool:
        charge = self._store.charge(charge_id)
        if charge is None or charge.status is not ChargeStatus.PENDING:
            return True
        attempt = charge.current
        assert attempt is not None
        if charge.next_check_at == 0.0:
            # opened by a callback's decline and never sent: claim it by pushing the check out, then send
            claimed = _bump(charge, self._clock(), next_check_at=self._clock() + CHECK_BACKOFF[0])
            try:
                self._store.commit([self._store.charge_put(claimed, charge.version)])
            except ConditionFailed:
                return False
            charge = self._drive(claimed, deadline=time.monotonic() + self._budget)
        else:
            answer = self.resolve(self._channels[attempt.channel], attempt.out_trade_no)
            if answer is not None:
                charge = self.apply(charge_id, attempt.out_trade_no, answer, source="sweeper", called=False)
                if charge.status is ChargeStatus.PENDING and charge.next_check_at == 0.0:
                    return self._sweep_charge(charge_id)
        if charge.status is ChargeStatus.PENDING:
            self._push_check(charge_id)
            return False
        return True

    def _push_check(self, charge_id: str) -> None:
        for _ in range(3):
            charge = self._store.charge(charge_id)
            if charge is None or charge.status is not ChargeStatus.PENDING:
                return
            # back off with the charge's age: checks get rarer the longer a channel stays silent
            age = self._clock() - charge.created_at
            delay = next((d for d in CHECK_BACKOFF if d > age / 4), CHECK_BACKOFF[-1])
            try:
                self._store.commit(
                    [
                        self._store.charge_put(
                            _bump(charge, self._clock(), next_check_at=self._clock() + delay), charge.version
                        )
                    ]
                )
                return
            except ConditionFailed:
                continue

    def _sweep_refund(self, charge_id: str, refund_no: str) -> bool:
        refund = self._store.refund(charge_id, refund_no)
        if refund is None or refund.status is not RefundStatus.PENDING:
            return True
        answer = self.resolve_refund(self._channels[refund.channel], refund.out_refund_no)
        if answer is not None:
            return self.apply_refund(charge_id, refund_no, answer).status is not RefundStatus.PENDING
        age = self._clock() - refund.created_at
        delay = next((d for d in CHECK_BACKOFF if d > age / 4), CHECK_BACKOFF[-1])
        moved = _bump_refund(refund, self._clock(), next_check_at=self._clock() + delay)
        with contextlib.suppress(ConditionFailed):
            self._store.commit([self._store.refund_put(moved, refund.version)])
        return False


def _bump(charge: Charge, now: float, **changes: Any) -> Charge:
    import copy

    new = copy.deepcopy(charge)
    for name, value in changes.items():
        setattr(new, name, value)
    new.version += 1
    new.updated_at = now
    return new


def _bump_refund(refund: Refund, now: float, **changes: Any) -> Refund:
    import copy

    new = copy.deepcopy(refund)
    for name, value in changes.items():
        setattr(new, name, value)
    new.version += 1
    new.updated_at = now
    return new
