"""Channel callbacks: every refusal, and duplicates/reordering (property-based): one transition per charge."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
from bianjie.kit.crypto import sm2_generate_key
from bianjie.kit.errors import AppError
from bianjie.pay import wire
from bianjie.pay.charges import RefundRequest
from bianjie.pay.models import Channel, ChargeStatus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.pay.conftest import HOSPITAL, World, patient

ASYNC_OK = "6222000000000070"
ASYNC_DECLINE = "6222000000000071"


def pending_charge(world: World, patient_id: str = "p", account: str = ASYNC_OK, amount: int = 700):
    world.agreements.sign(patient(patient_id), Channel.UNIONPAY, account)
    charge = world.charge(patient_id, amount)
    assert charge.status is ChargeStatus.PENDING
    return charge


def one_notification(world: World) -> tuple[Channel, dict[str, str], bytes]:
    (note,) = world.notifications()
    return note


def refused(world: World, channel: Channel, headers: dict[str, str], body: bytes) -> str:
    with pytest.raises(AppError) as err:
        world.callbacks.handle(channel, headers, body)
    return err.value.code


def test_a_valid_callback_settles_a_pending_charge(world: World) -> None:
    charge = pending_charge(world)
    channel, headers, body = one_notification(world)
    assert world.callbacks.handle(channel, headers, body)["status"] == "SUCCEEDED"
    assert world.callbacks.handle(channel, headers, body) == {"code": "SUCCESS", "duplicate": True}
    after = world.store.charge(charge.charge_id)
    assert after.status is ChargeStatus.SUCCEEDED and len(after.history) == 1


def test_missing_headers_bad_signature_unknown_serial(world: World) -> None:
    pending_charge(world)
    channel, headers, body = one_notification(world)
    assert refused(world, channel, {}, body) == "CALLBACK_SIGNATURE_MISSING"
    forged = wire.sign_headers(sm2_generate_key(), "1", (body,), timestamp=int(world.clock()))
    assert refused(world, channel, forged, body) == "CALLBACK_SIGNATURE_INVALID"
    assert refused(world, channel, {**headers, "Paychannel-Serial": "9"}, body) == "CALLBACK_KEY_UNKNOWN"
    # another channel's endpoint: that channel's key does not verify it
    assert refused(world, Channel.HUIMIN, headers, body) == "CALLBACK_SIGNATURE_INVALID"


def test_stale_timestamp(world: World) -> None:
    pending_charge(world)
    channel, headers, body = one_notification(world)
    world.clock.advance(301)
    assert refused(world, channel, headers, body) == "CALLBACK_TIMESTAMP_OUT_OF_WINDOW"


def test_tampered_body_fails_the_signature(world: World) -> None:
    pending_charge(world)
    channel, headers, body = one_notification(world)
    tampered = body.replace(b'"TRANSACTION.SUCCESS"', b'"TRANSACTION.FAIL"')
    assert tampered != body
    assert refused(world, channel, headers, tampered) == "CALLBACK_SIGNATURE_INVALID"


def test_tampered_ciphertext_fails_decryption_even_when_signed(world: World) -> None:
    pending_charge(world)
    channel, _, body = one_notification(world)
    note = json.loads(body)
    sealed = bytearray(base64.b64decode(note["resource"]["ciphertext"]))
    sealed[3] ^= 1
    note["resource"]["ciphertext"] = base64.b64encode(bytes(sealed)).decode()
    resigned = wire.dumps(note)
    standin = world.standins[channel]
    headers = wire.sign_headers(standin.identity.private_key, "1", (resigned,), timestamp=int(world.clock()))
    assert refused(world, channel, headers, resigned) == "CALLBACK_DECRYPT_FAILED"


def test_facts_must_match_our_record(world: World) -> None:
    charge = pending_charge(world, amount=700)
    standin = world.standins[Channel.UNIONPAY]
    trade_no = charge.attempts[0].out_trade_no
    base = {
        "out_trade_no": trade_no,
        "trade_state": "SUCCESS",
        "amount": 700,
        "merchant_id": standin.identity.merchant_id,
    }
    cases = {
        "CALLBACK_AMOUNT_MISMATCH": {**base, "amount": 1},
        "CALLBACK_MERCHANT_MISMATCH": {**base, "merchant_id": "SH-other"},
        "CALLBACK_ORDER_UNKNOWN": {**base, "out_trade_no": "chnothere-1"},
    }
    for code, resource in cases.items():
        headers, body = standin.notification(f"N-{code}", "TRANSACTION.SUCCESS", resource)
        assert refused(world, Channel.UNIONPAY, headers, body) == code
    assert world.store.charge(charge.charge_id).status is ChargeStatus.PENDING


def test_async_decline_opens_the_next_agreement_for_the_sweeper(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, ASYNC_DECLINE)
    world.agreements.sign(patient("p"), Channel.HUIMIN, "HM00000001")
    charge = world.charge("p")
    channel, headers, body = one_notification(world)
    world.callbacks.handle(channel, headers, body)
    mid = world.store.charge(charge.charge_id)
    assert mid.status is ChargeStatus.PENDING and [a.state.value for a in mid.attempts] == ["DECLINED", "CALLING"]
    world.charges.sweep()
    after = world.store.charge(charge.charge_id)
    assert after.status is ChargeStatus.SUCCEEDED and after.succeeded_attempt.channel is Channel.HUIMIN


def test_bank_initiated_termination(world: World) -> None:
    agreement = world.agreements.sign(patient("p"), Channel.UNIONPAY, "6222000000001234")
    world.standins[Channel.UNIONPAY].bank_terminate(world.agreements.agreement_no(agreement))
    channel, headers, body = one_notification(world)
    assert world.callbacks.handle(channel, headers, body)["changed"] is True
    ended = world.store.agreement("p", agreement.agreement_id)
    assert ended.status.value == "TERMINATED" and ended.terminated_by == "channel"
    assert world.callbacks.handle(channel, headers, body)["duplicate"] is True


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    outcomes=st.lists(st.sampled_from([ASYNC_OK, ASYNC_DECLINE]), min_size=1, max_size=5),
    copies=st.lists(st.integers(min_value=1, max_value=4), min_size=5, max_size=5),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_duplicated_and_reordered_callbacks_change_each_charge_once(
    outcomes: list[str], copies: list[int], seed: int
) -> None:
    world = World()
    charges = []
    for i, account in enumerate(outcomes):
        world.agreements.sign(patient(f"p{i}"), Channel.UNIONPAY, account)
        charges.append((world.charge(f"p{i}", 100 + i), account))
    notes = world.notifications()
    storm = [note for i, note in enumerate(notes) for _ in range(copies[i % len(copies)])]
    random.Random(seed).shuffle(storm)
    duplicates = 0
    for channel, headers, body in storm:
        duplicates += world.callbacks.handle(channel, headers, body)["duplicate"]
    assert duplicates == len(storm) - len(notes)
    for charge, account in charges:
        after = world.store.charge(charge.charge_id)
        assert len(after.history) == 1
        assert after.status is (ChargeStatus.SUCCEEDED if account == ASYNC_OK else ChargeStatus.FAILED)
    # one webhook per charge, whatever the storm, and one intent in the outbox, already queued
    assert sorted(m["event"]["data"]["charge_id"] for m, _ in world.webhooks.messages) == sorted(
        c.charge_id for c, _ in charges
    )
    intents = world.outbox_items()
    assert len(intents) == len(charges) and {i["status"] for i in intents} == {"QUEUED"}


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32 - 1), refunds=st.lists(st.integers(1, 300), min_size=1, max_size=3)
)
def test_charge_and_refund_callbacks_in_any_order_change_nothing_more(seed: int, refunds: list[int]) -> None:
    world = World()
    world.agreements.sign(patient("p"), Channel.UNIONPAY, "6222000000001234")
    charge = world.charge("p", 1000)
    for i, amount in enumerate(refunds):
        world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest(f"r{i}", amount, ""))
    before = world.store.charge(charge.charge_id)
    notes = world.notifications() * 2
    random.Random(seed).shuffle(notes)
    for channel, headers, body in notes:
        world.callbacks.handle(channel, headers, body)
    after = world.store.charge(charge.charge_id)
    assert after.history == before.history and after.refunded == sum(refunds) == before.refunded


def test_bank_termination_and_its_inbox_record_commit_together(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write failure while handling a termination leaves neither the inbox record nor the change, so
    the channel's resend is handled (not acknowledged as a duplicate of something never applied)."""
    agreement = world.agreements.sign(patient("p"), Channel.UNIONPAY, "6222000000001234")
    world.standins[Channel.UNIONPAY].bank_terminate(world.agreements.agreement_no(agreement))
    channel, headers, body = one_notification(world)
    real = world.docs.transact
    failures = [ConnectionError("store unreachable mid-write (injected)")]

    def flaky(ops: Any) -> None:
        if failures:
            raise failures.pop()
        real(ops)

    monkeypatch.setattr(world.docs, "transact", flaky)
    with pytest.raises(ConnectionError):
        world.callbacks.handle(channel, headers, body)
    assert world.store.agreement("p", agreement.agreement_id).status.value == "ACTIVE"
    outcome = world.callbacks.handle(channel, headers, body)  # the channel resends
    assert outcome["duplicate"] is False and outcome["changed"] is True
    assert world.store.agreement("p", agreement.agreement_id).status.value == "TERMINATED"
    (record,) = [r for r in world.audit_records() if r.action == "pay.agreement.terminated_by_channel"]
    assert record.actor == "system:unionpay" and record.details == {"agreements": [agreement.agreement_id]}


def test_bank_termination_of_an_agreement_already_ended_is_recorded_once(world: World) -> None:
    agreement = world.agreements.sign(patient("p"), Channel.UNIONPAY, "6222000000001234")
    number = world.agreements.agreement_no(agreement)
    world.agreements.terminate(patient("p"), agreement.agreement_id)
    world.standins[Channel.UNIONPAY].bank_terminate(number)
    notes = world.notifications()
    assert len(notes) == 1
    for channel, headers, body in notes:
        assert world.callbacks.handle(channel, headers, body) == {
            "code": "SUCCESS",
            "duplicate": False,
            "changed": False,
        }
        assert world.callbacks.handle(channel, headers, body)["duplicate"] is True
    ended = world.store.agreement("p", agreement.agreement_id)
    assert ended.terminated_by == "patient"
