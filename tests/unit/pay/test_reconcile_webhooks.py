"""Reconciliation on crafted bills; hospital webhook retries and the dead-letter queue; the pure state machine."""

from __future__ import annotations

import json

from bianjie.kit.crypto import sm2_generate_key
from bianjie.kit.timefmt import beijing_day
from bianjie.pay import wire
from bianjie.pay.channels import TradeAnswer, TradeState, WireResponse
from bianjie.pay.charges import RefundRequest
from bianjie.pay.models import Attempt, Channel, Charge, ChargeStatus
from bianjie.pay.reconcile import compare
from bianjie.pay.states import apply_trade
from bianjie.pay.webhooks import RETRY_SCHEDULE, WebhookSender
from hypothesis import given
from hypothesis import strategies as st

from tests.unit.pay.conftest import HOSPITAL, ListQueue, World, patient


def test_compare_reports_the_three_differences() -> None:
    diffs = compare({"a": 100, "b": 200, "c": 300}, {"b": 200, "c": 301, "d": 50})
    assert diffs == {
        "missing_local": [{"out_no": "d", "channel_amount": 50}],
        "missing_remote": [{"out_no": "a", "our_amount": 100}],
        "amount_mismatch": [{"out_no": "c", "our_amount": 300, "channel_amount": 301}],
    }


def test_reconciliation_clean_then_crafted_mismatches(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, "6222000000001234")
    world.agreements.sign(patient("q"), Channel.HUIMIN, "HM00000001")
    c1 = world.charge("p", 1000)
    c2 = world.charge("p", 2000)
    world.charge("q", 3000)
    world.charges.refund(HOSPITAL, c1.charge_id, RefundRequest("r1", 400, ""))
    day = beijing_day(world.clock())
    report = world.reconciler.run(day)
    assert report["clean"], report
    assert report["channels"]["UNIONPAY"]["ours"] == 3 and report["channels"]["HUIMIN"]["ours"] == 1

    union = world.standins[Channel.UNIONPAY]
    union.tamper_amount(c1.attempts[0].out_trade_no, 999)
    union.forget(c2.attempts[0].out_trade_no)
    phantom = world.standins[Channel.HUIMIN].add_phantom(77)
    report = world.reconciler.run(day)
    assert not report["clean"] and report["totals"] == {"missing_local": 1, "missing_remote": 1, "amount_mismatch": 1}
    assert report["channels"]["UNIONPAY"]["amount_mismatch"] == [
        {"out_no": c1.attempts[0].out_trade_no, "our_amount": 1000, "channel_amount": 999}
    ]
    assert report["channels"]["UNIONPAY"]["missing_remote"] == [
        {"out_no": c2.attempts[0].out_trade_no, "our_amount": 2000}
    ]
    assert report["channels"]["HUIMIN"]["missing_local"] == [{"out_no": phantom, "channel_amount": 77}]
    assert world.sink.reports[day] is report
    assert world.store.report(day)["totals"] == report["totals"]


def test_a_bill_whose_hash_does_not_match_is_not_compared(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, "6222000000001234")
    world.charge("p", 1000)

    def corrupt(path: str, response: WireResponse) -> WireResponse:
        if path != "/v1/bills/download":
            return response
        answer = json.loads(response.body)
        answer["hash_value"] = "0" * 64
        body = wire.dumps(answer)
        standin = world.standins[Channel.UNIONPAY]
        return WireResponse(
            200, wire.sign_headers(standin.identity.private_key, "1", (body,), timestamp=int(world.clock())), body
        )

    world.transports[Channel.UNIONPAY].rewrite = corrupt
    report = world.reconciler.run(beijing_day(world.clock()))
    assert report["channels"]["UNIONPAY"]["bill"] == "HASH_MISMATCH" and not report["clean"]


def test_webhook_retries_on_schedule_then_dead_letters() -> None:
    queue, dlq = ListQueue(), ListQueue()
    statuses = iter([500] * (len(RETRY_SCHEDULE) + 1))
    now = [1_000_000.0]
    sender = WebhookSender(sm2_generate_key(), "1", queue, dlq, post=lambda *a: next(statuses), clock=lambda: now[0])
    message = {
        "url": "https://his/x",
        "event": {"id": "ev1", "type": "charge.succeeded", "data": {}},
        "attempt": 0,
        "due": 0,
    }
    outcomes = []
    while message is not None:
        outcomes.append(sender.handle(message))
        if not queue.messages:
            break
        message, delay = queue.messages.pop()
        assert delay <= 900
        now[0] = message["due"]  # the queue hands it back when due
    assert outcomes == ["requeued"] * len(RETRY_SCHEDULE) + ["dead"]
    assert dlq.messages[0][0]["event"]["id"] == "ev1"


def test_webhook_is_signed_over_the_raw_body() -> None:
    key = sm2_generate_key()
    seen = []
    sender = WebhookSender(key, "1", ListQueue(), ListQueue(), post=lambda url, h, b, t: seen.append((h, b)) or 204)
    event = {"id": "ev2", "type": "charge.failed", "data": {"charge_id": "c"}}
    assert sender.handle({"url": "https://his/x", "event": event, "attempt": 0, "due": 0}) == "delivered"
    headers, body = seen[0]
    wire.verify_headers(headers, (), body, lambda s: key.public_key, prefix=wire.WEBHOOK_PREFIX)


ANSWERS = st.sampled_from(
    [TradeState.SUCCESS, TradeState.FAIL, TradeState.PROCESSING, TradeState.CLOSED, TradeState.NOTFOUND]
)


@given(events=st.lists(st.tuples(st.integers(1, 3), ANSWERS), max_size=30))
def test_state_machine_is_forward_only(events: list[tuple[int, TradeState]]) -> None:
    """Whatever facts arrive in whatever order, a charge changes status at most once and never leaves a final one."""
    plan = [{"agreement_id": f"a{i}", "channel": ch.value} for i, ch in enumerate(Channel, start=1)]
    charge = Charge(
        "c", "h", "o", "p", 100, "", ChargeStatus.PENDING, plan, [Attempt(1, Channel.UNIONPAY, "a1", "c-1")], 0, 0
    )
    seen_final = None
    for n, state in events:
        change = apply_trade(charge, f"c-{n}", TradeAnswer(state, success_time=1.0), 1.0, "test")
        if change is None:
            continue
        charge = change.charge
        if seen_final is not None:
            assert charge.status is seen_final
        if charge.status is not ChargeStatus.PENDING:
            seen_final = charge.status
        assert len(charge.history) <= 1
        assert sum(a.state.value == "SUCCEEDED" for a in charge.attempts) <= 1 or charge.anomalies
