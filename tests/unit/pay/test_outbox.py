"""Pay's final states through the kit's transactional outbox: the hospital webhook and the domain event
commit with the transition, a crash or a queue outage between the commit and the send leaves them
PENDING, and the relay sends them later; delivery is at least once with a stable id, and state never
holds a second intent or transition."""

from __future__ import annotations

from typing import Any

import pytest
from bianjie.contracts import REGISTRY
from bianjie.kit.documents.port import ConditionFailed, TransactionCanceled
from bianjie.kit.outbox import RELAY_BACKOFF, RELAY_GRACE
from bianjie.pay.charges import RefundRequest
from bianjie.pay.models import Channel, ChargeStatus

from tests.unit.pay.conftest import HOSPITAL, World, patient

OK = "6222000000001234"
ASYNC_OK = "6222000000000070"


def queued_ids(world: World) -> list[str]:
    return [m["event"]["id"] for m, _ in world.webhooks.messages]


def test_intent_commits_with_the_transition_and_is_queued_at_once(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    charge = world.charge("p")
    assert charge.status is ChargeStatus.SUCCEEDED
    (item,) = world.outbox_items()
    assert item["event_id"] == f"ev-{charge.charge_id}-charge.succeeded"
    assert item["status"] == "SENT" and "pending" not in item and item["expires_at"] > world.clock()
    assert queued_ids(world) == [item["event_id"]]
    (message,) = world.webhooks.take()
    assert message["url"] == "https://his.example/notify" and message["event"]["data"]["status"] == "SUCCEEDED"
    world.clock.advance(RELAY_GRACE + 1)
    assert world.outbox_port.relay() == {"due": 0, "sent": 0, "failed": 0}


def test_the_domain_event_commits_and_goes_out_with_the_webhook(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    charge = world.charge("p", 1234, order_no="INV-EV-1", visit="V-77")
    (row,) = world.outbox_items("events")
    assert row["status"] == "SENT" and row["event_id"] == f"ev-{charge.charge_id}-charge.succeeded"
    (envelope,) = world.events.of_type("pay.charge.succeeded")
    assert (envelope.source, envelope.dataversion, envelope.id) == ("bianjie.pay", 1, row["event_id"])
    event = REGISTRY.parse(envelope)
    assert event.model_dump(exclude={"paid_at"}) == {
        "charge_id": charge.charge_id,
        "hospital": "hospital-1",
        "order_no": "INV-EV-1",
        "visit_id": "V-77",
        "amount_fen": 1234,
        "channel": "UNIONPAY",
    }
    assert "patient_id" not in envelope.data  # the patient is the hospital's to know


def test_no_notify_url_no_webhook_but_the_event(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    assert world.charge("p", notify=False).status is ChargeStatus.SUCCEEDED
    assert world.outbox_items() == [] and world.webhooks.messages == []
    assert [e.type for e in world.events.sent] == ["pay.charge.succeeded"]


@pytest.mark.parametrize("failure", ["queue_down", "process_died"])
def test_crash_window_the_relay_delivers_later(world: World, failure: str, monkeypatch: Any) -> None:
    """State saved + intent present + the queue send failing (or never happening) -> the relay queues it."""
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    if failure == "queue_down":
        world.webhooks.down = True
    else:  # the process dies right after the commit: dispatch never runs
        monkeypatch.setattr(world.outbox_port, "dispatch", lambda intents: 0)
    charge = world.charge("p")
    saved = world.store.charge(charge.charge_id)
    assert saved.status is ChargeStatus.SUCCEEDED and len(saved.history) == 1
    (item,) = world.outbox_items()
    assert item["status"] == "PENDING" and world.webhooks.messages == []
    monkeypatch.undo()
    world.webhooks.down = False

    # within the grace period the relay leaves it to the writer
    assert world.outbox_port.relay()["due"] == 0
    world.clock.advance(RELAY_GRACE + 1)
    sent = world.outbox_port.relay()
    assert sent == (
        {"due": 1, "sent": 1, "failed": 0} if failure == "queue_down" else {"due": 2, "sent": 2, "failed": 0}
    )
    assert queued_ids(world) == [f"ev-{charge.charge_id}-charge.succeeded"]
    (message,) = world.webhooks.take()
    assert message == item["message"]  # the message as it was when the transition committed
    assert world.outbox_items()[0]["status"] == "SENT"
    assert [e.type for e in world.events.sent] == ["pay.charge.succeeded"]
    world.clock.advance(3600)
    assert world.outbox_port.relay()["due"] == 0 and world.webhooks.messages == []
    after = world.store.charge(charge.charge_id)
    assert len(after.history) == 1 and after.version == saved.version


def test_relay_backs_off_while_the_queue_stays_down(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    world.webhooks.down = True
    world.charge("p")
    world.clock.advance(RELAY_GRACE + 1)
    assert world.outbox_port.relay() == {"due": 1, "sent": 0, "failed": 1}
    (item,) = world.outbox_items()
    assert item["status"] == "PENDING" and item["relay_attempts"] == 1
    world.webhooks.down = False
    world.clock.advance(RELAY_BACKOFF[0] - 5)
    assert world.outbox_port.relay()["due"] == 0  # not yet: backing off
    world.clock.advance(10)
    assert world.outbox_port.relay() == {"due": 1, "sent": 1, "failed": 0}
    assert len(world.webhooks.messages) == 1


def test_crash_after_send_before_mark_repeats_with_the_same_id(world: World, monkeypatch: Any) -> None:
    """At least once: the hospital may see a webhook twice, always with one id; state holds it once."""
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)

    real_put = world.docs.put

    def lost_mark(table: str, item: dict[str, Any], condition: Any = None) -> None:
        if table == "outbox" and item.get("status") == "SENT":
            raise ConnectionError("store unreachable (injected)")
        real_put(table, item, condition=condition)

    monkeypatch.setattr(world.docs, "put", lost_mark)
    charge = world.charge("p")
    monkeypatch.undo()
    assert len(world.webhooks.messages) == 1 and world.outbox_items()[0]["status"] == "PENDING"
    world.clock.advance(RELAY_GRACE + 1)
    assert world.outbox_port.relay()["sent"] == 2  # the webhook and the event, each again
    assert [e.id for e in world.events.sent] == [f"ev-{charge.charge_id}-charge.succeeded"] * 2
    first, second = (m for m, _ in world.webhooks.messages)
    assert first["event"] == second["event"] and first["event"]["id"] == f"ev-{charge.charge_id}-charge.succeeded"
    assert len(world.outbox_items()) == 1
    assert len(world.store.charge(charge.charge_id).history) == 1


def test_repeated_facts_never_write_a_second_intent(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, ASYNC_OK)
    charge = world.charge("p")
    assert charge.status is ChargeStatus.PENDING and world.outbox_items() == []
    notes = world.notifications()
    for channel, headers, body in notes * 3:  # the same notification three times
        world.callbacks.handle(channel, headers, body)
    world.clock.advance(31)
    world.charges.sweep()  # and the sweeper's query of an already settled charge
    trade_no = charge.attempts[0].out_trade_no
    answer = world.channels[Channel.UNIONPAY].query_trade(trade_no)
    world.charges.apply(charge.charge_id, trade_no, answer, "test")  # a late fact from another path
    assert len(world.outbox_items()) == 1 and len(world.webhooks.messages) == 1
    assert len(world.store.charge(charge.charge_id).history) == 1


def test_a_second_intent_for_one_transition_cannot_commit(world: World) -> None:
    """The id derives from the transition and the intent is put only if absent: a stale writer that
    somehow got past the version check still could not announce the transition twice."""
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    charge = world.charge("p")
    (item,) = world.outbox_items()
    again = world.outbox_port.charge_final(world.store.charge(charge.charge_id), world.clock())
    assert item["outbox_id"] in [world.kit_outbox.outbox_id(i) for i in again]
    for put in world.outbox_port.puts(again):
        with pytest.raises((ConditionFailed, TransactionCanceled)):
            world.store.commit([put])


def test_refund_webhook_goes_through_the_outbox(world: World) -> None:
    world.agreements.sign(patient("p"), Channel.UNIONPAY, OK)
    charge = world.charge("p", 1000)
    world.webhooks.take()
    world.webhooks.down = True
    refund = world.charges.refund(HOSPITAL, charge.charge_id, RefundRequest("r1", 300, ""))
    assert refund.status.value == "SUCCEEDED" and world.webhooks.messages == []
    world.webhooks.down = False
    world.clock.advance(RELAY_GRACE + 1)
    assert world.outbox_port.relay()["sent"] == 1
    (message,) = world.webhooks.take()
    assert message["event"]["id"] == f"ev-{refund.out_refund_no}-refund.succeeded"
    (event,) = world.events.of_type("pay.refund.succeeded")  # the topic was up: sent at once
    assert (event.data["refund_no"], event.data["refund_fen"], event.data["amount_fen"]) == ("r1", 300, 1000)
    assert message["event"]["data"] == {
        "charge_id": charge.charge_id,
        "refund_no": "r1",
        "amount": 300,
        "status": "SUCCEEDED",
    }
