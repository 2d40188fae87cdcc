"""The charge algorithm against stand-in channels: priority, fall-through, timeouts, refunds, sweeper."""

from __future__ import annotations

from dataclasses import replace

import pytest
from bianjie.kit.actor import Actor
from bianjie.kit.errors import AppError
from bianjie.pay.charges import RefundRequest
from bianjie.pay.models import AgreementStatus, Channel, ChargeStatus

from tests.unit.pay.conftest import HOSPITAL, World, patient

OK = "6222000000001234"


def trades(world: World, channel: Channel) -> list[dict]:
    return [
        i for (t, _), i in world.docs._tables["standin"].items.items() if str(t).startswith(f"TRADE#{channel.value}")
    ]


def trade_calls(world: World, channel: Channel) -> list[str]:
    return [c for c in world.transports[channel].calls if not c.startswith("/v1/agreements/")]


def test_default_priority_puts_bank_card_and_huimin_before_credit(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.YIBAO_CREDIT, "YB00000001")
    world.agreements.sign(patient("p"), Channel.HUIMIN, "HM00000001")
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    assert [a.channel for a in world.agreements.active("p")] == [Channel.UNIONPAY, Channel.HUIMIN, Channel.YIBAO_CREDIT]
    assert [a.priority for a in world.agreements.active("p")] == [1, 2, 3]


def test_charge_uses_the_first_agreement(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    world.agreements.sign(patient("p"), Channel.HUIMIN, "HM00000001")
    charge = world.charge("p", 1234)
    assert charge.status is ChargeStatus.SUCCEEDED and len(charge.attempts) == 1
    assert charge.attempts[0].channel is Channel.UNIONPAY
    assert [h["to"] for h in charge.history] == ["SUCCEEDED"]
    # one webhook for the final state
    assert [m["event"]["type"] for m, _ in world.webhooks.messages] == ["charge.succeeded"]


def test_definite_decline_falls_through_in_priority_order(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, "6222000000000051")
    world.agreements.sign(patient("p"), Channel.HUIMIN, "HM00000005")  # ends 0005: frozen
    world.agreements.sign(patient("p"), Channel.YIBAO_CREDIT, "YB00000001")
    charge = world.charge("p")
    assert charge.status is ChargeStatus.SUCCEEDED
    assert [(a.channel, a.state.value, a.decline_code) for a in charge.attempts] == [
        (Channel.UNIONPAY, "DECLINED", "INSUFFICIENT_FUNDS"),
        (Channel.HUIMIN, "DECLINED", "ACCOUNT_FROZEN"),
        (Channel.YIBAO_CREDIT, "SUCCEEDED", None),
    ]


def test_all_declined_fails_once(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, "6222000000000051")
    charge = world.charge("p")
    assert charge.status is ChargeStatus.FAILED and charge.failure_code == "INSUFFICIENT_FUNDS"
    assert len(charge.history) == 1
    with pytest.raises(AppError) as err:
        world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest("r1", 1, ""))
    assert err.value.code == "CHARGE_NOT_REFUNDABLE"


def test_lost_answer_is_queried_not_recharged(world: World) -> None:
    """The channel charged but its answer timed out: we query, find SUCCESS, and stop there."""
    world.agreements.sign(patient("p"), Channel.UNIONPAY, "6222000000000091")
    world.agreements.sign(patient("p"), Channel.HUIMIN, "HM00000001")
    charge = world.charge("p")
    assert charge.status is ChargeStatus.SUCCEEDED and charge.succeeded_attempt.channel is Channel.UNIONPAY
    assert trade_calls(world, Channel.UNIONPAY) == ["/v1/trades/charge", "/v1/trades/query"]
    assert trade_calls(world, Channel.HUIMIN) == []  # never tried: the first one was not a definite no
    assert len(trades(world, Channel.UNIONPAY)) == 1


def test_lost_request_is_closed_then_falls_through(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, "6222000000000092")
    world.agreements.sign(patient("p"), Channel.HUIMIN, "HM00000001")
    charge = world.charge("p")
    assert trade_calls(world, Channel.UNIONPAY) == ["/v1/trades/charge", "/v1/trades/query", "/v1/trades/close"]
    assert [a.state.value for a in charge.attempts] == ["CLOSED", "SUCCEEDED"]
    # the closed number can never succeed later at the channel
    late = world.channels[Channel.UNIONPAY].query_trade(charge.attempts[0].out_trade_no)
    assert late.state.value == "CLOSED"


def test_no_answer_and_no_query_answer_stays_pending_then_sweeper_settles(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    world.agreements.sign(patient("p"), Channel.HUIMIN, "HM00000001")
    flaky = world.transports[Channel.UNIONPAY]
    flaky.fail_ops = {"/v1/trades/charge": 1, "/v1/trades/query": 1}
    charge = world.charge("p")
    # the charge reached the stand-in? No: the injected timeout hides whether it did; we must not move on
    assert charge.status is ChargeStatus.PENDING and len(charge.attempts) == 1
    assert trade_calls(world, Channel.HUIMIN) == []
    world.clock.advance(31)
    assert world.charges.sweep() == {"checked": 1, "settled": 1, "still_pending": 0}
    after = world.store.charge(charge.charge_id)
    # the injected timeout dropped the request before the stand-in saw it: NOTFOUND -> closed -> next one
    assert after.status is ChargeStatus.SUCCEEDED and after.succeeded_attempt.channel is Channel.HUIMIN
    assert len(after.history) == 1 and after.history[0]["source"] == "answer"


def test_terminated_agreement_is_skipped(world: World) -> None:
    first = world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    world.agreements.sign(patient("p"), Channel.HUIMIN, "HM00000001")
    world.agreements.terminate(patient("p"), first.agreement_id)
    assert world.store.agreement("p", first.agreement_id).status is AgreementStatus.TERMINATED
    charge = world.charge("p")
    assert [a.channel for a in charge.attempts] == [Channel.HUIMIN]


def test_same_order_number_never_charges_twice(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    one = world.charge("p", 500, order_no="INV-1")
    two = world.charge("p", 500, order_no="INV-1")
    assert one.charge_id == two.charge_id and len(trades(world, Channel.UNIONPAY)) == 1
    with pytest.raises(AppError) as err:
        world.charge("p", 501, order_no="INV-1")
    assert err.value.code == "ORDER_NO_REUSED"


def test_refunds_never_exceed_the_charge(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    charge = world.charge("p", 1000)
    r1 = world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest("r1", 600, ""))
    assert r1.status.value == "SUCCEEDED"
    assert world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest("r1", 600, "")) == r1
    with pytest.raises(AppError) as err:
        world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest("r2", 401, ""))
    assert err.value.code == "REFUND_EXCEEDS_CHARGE" and err.value.details == {"amount": 1000, "refundable": 400}
    with pytest.raises(AppError) as err:
        world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest("r1", 400, ""))
    assert err.value.code == "REFUND_NO_REUSED"
    world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest("r3", 400, ""))
    after = world.store.charge(charge.charge_id)
    assert after.refunded == 1000 and after.refund_reserved == 1000
    assert after.status is ChargeStatus.SUCCEEDED  # refunds never move the charge's own state


def test_refund_without_answer_is_queried_by_the_sweeper(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    charge = world.charge("p", 1000)
    world.transports[Channel.UNIONPAY].fail_ops = {"/v1/refunds/create": 1, "/v1/refunds/query": 1}
    refund = world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest("r1", 300, ""))
    assert refund.status.value == "PENDING"
    # the reservation holds while in flight: 701 more would exceed
    with pytest.raises(AppError):
        world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest("r2", 701, ""))
    world.clock.advance(31)
    world.charges.sweep()
    # the injected timeout dropped the refund request: NOTFOUND stays pending (refunds are not closed)
    assert world.store.refund(charge.charge_id, "r1").status.value == "PENDING"


def test_charge_and_its_audit_record_commit_together(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    charge = world.charge("p", 700, order_no="INV-A1")
    (record,) = [r for r in world.audit_records() if r.action.startswith("pay.charge")]
    assert (record.actor, record.action, record.resource) == (
        "partner:hospital-1",
        "pay.charge.create",
        "pay.order:INV-A1",
    )
    assert record.details == {"amount": 700, "agreements": 1, "charge_id": charge.charge_id}
    assert record.patient_ref == world.index.digest("p", "patient_id") and record.patient_ref != "p"


def test_a_lost_order_race_writes_neither_charge_nor_audit_record(world: World) -> None:
    """Two requests for one order number: create does not read the charge first, so the second one's
    transaction (audit append + charge put) is what meets the first's record; it is cancelled as a
    whole, and the second answers the first's charge."""
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    first = world.charge("p", 500, order_no="INV-RACE")
    records = len(world.audit_records())
    second = world.charge("p", 500, order_no="INV-RACE")
    assert second.charge_id == first.charge_id and second.version == first.version
    assert len(world.audit_records()) == records and len(trades(world, Channel.UNIONPAY)) == 1


def test_a_repeated_order_after_every_agreement_ended_answers_the_charge(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    first = world.charge("p", 500, order_no="INV-ENDED")
    for agreement in world.agreements.list("p"):
        world.agreements.terminate(patient("p"), agreement.agreement_id)
    again = world.charge("p", 500, order_no="INV-ENDED")
    assert again.charge_id == first.charge_id and again.status is first.status


def test_no_active_agreement_is_audited_as_a_failure(world: World) -> None:
    with pytest.raises(AppError) as err:
        world.charge("nobody", order_no="INV-NONE")
    assert err.value.code == "NO_ACTIVE_AGREEMENT"
    (record,) = world.audit_records()
    assert record.action == "pay.charge.create" and record.outcome == "failure"
    assert world.store.charge(record.details["charge_id"]) is None


def test_refunds_and_hospital_reads_are_audited(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    charge = world.charge("p", 1000)
    world.charges.refund(replace(HOSPITAL, source_ip="10.0.0.9"), charge.charge_id, RefundRequest("r1", 300, ""))
    world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest("r1", 300, ""))  # a retry: nothing new
    with pytest.raises(AppError):
        world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest("r2", 701, ""))  # refused: no record
    assert world.charges.read(HOSPITAL, charge.charge_id).charge_id == charge.charge_id
    with pytest.raises(AppError):
        world.charges.read(
            Actor.partner("hospital-2"), charge.charge_id
        )  # another hospital: not found, nothing disclosed
    records = {r.action: r for r in world.audit_records() if r.action in ("pay.refund.create", "pay.charge.read")}
    assert len([r for r in world.audit_records() if r.action == "pay.refund.create"]) == 1
    refund = records["pay.refund.create"]
    assert refund.resource == f"pay.charge:{charge.charge_id}" and refund.source_ip == "10.0.0.9"
    assert refund.details == {"refund_no": "r1", "amount": 300}
    assert records["pay.charge.read"].patient_ref == world.index.digest("p", "patient_id")
