"""The kit's transactional outbox on every documents adapter (memory, DynamoDB on moto, PostgreSQL):
an intent commits with its change or not at all, a crash between commit and send is healed by the
relay, and every copy of one fact carries one id."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from bianjie.contracts.rx import RxDispensedV1
from bianjie.kit.documents.port import Cond, Put, TableSpec, TransactionCanceled
from bianjie.kit.events import MemorySink
from bianjie.kit.outbox import EVENTS, RELAY_BACKOFF, RELAY_GRACE, Outbox, TopicSink
from bianjie.kit.tables import table_spec

from tests.contract.conftest import Backend

RX = {
    "rx_id": "R1",
    "hospital": "h",
    "patient_ref": "ref",
    "visit_id": "V1",
    "status": "dispensed",
    "valid_end": "2026-11-25T08:00:00Z",
    "uses": 1,
}


class Clock:
    def __init__(self) -> None:
        self.t = time.time()  # near the stores' own clock, which judges TTL

    def __call__(self) -> float:
        return self.t


class Topic(MemorySink):
    down = False

    def send(self, envelope: Any) -> None:
        if self.down:
            raise ConnectionError("topic unreachable (injected)")
        super().send(envelope)


@pytest.fixture
def world(backend: Backend) -> Any:
    suffix = uuid.uuid4().hex[:8]
    state = backend.table(TableSpec(f"state_{suffix}", "pk", key_types={"pk": "S"}))
    outbox_table = backend.table(table_spec("OUTBOX_TABLE", f"outbox_{suffix}"))
    clock, topic = Clock(), Topic()
    box = Outbox(backend.store, outbox_table, "rx", {EVENTS: TopicSink(topic)}, clock=clock)
    return backend, state, box, clock, topic


def change(state: str, version: int) -> Put:
    """A state change conditioned on the version it read (as every producer writes)."""
    cond = Cond.absent() if version == 1 else Cond.eq("version", version - 1)
    return Put(state, {"pk": "R1", "version": version}, cond)


def intent(box: Outbox, version: int) -> Any:
    return box.event(RxDispensedV1(**RX), subject="R1", event_id=f"R1-{version}")


def test_commit_then_send_marks_the_row_sent(world: Any) -> None:
    _, state, box, clock, topic = world
    box.commit([change(state, 1)], [intent(box, 1)])
    assert [e.id for e in topic.sent] == ["R1-1"] and box.pending() == []
    row = box.get("rx#events#R1-1")
    assert row["status"] == "SENT" and "pending" not in row and row["expires_at"] > clock()
    clock.t += RELAY_GRACE + 5
    assert box.relay() == {"due": 0, "sent": 0, "failed": 0}


def test_a_crash_between_commit_and_send_is_sent_by_the_relay(world: Any) -> None:
    backend, state, box, clock, topic = world
    first = intent(box, 1)
    backend.store.transact([change(state, 1), *box.puts([first])])  # committed; the process dies here
    assert topic.sent == [] and [r["event_id"] for r in box.pending()] == ["R1-1"]
    assert box.relay()["due"] == 0  # within the grace period the writer's own dispatch may still come
    clock.t += RELAY_GRACE + 1
    assert box.relay() == {"due": 1, "sent": 1, "failed": 0}
    [envelope] = topic.sent
    assert envelope.model_dump(mode="json") == first.message  # what committed is what goes out
    assert box.pending() == []


def test_a_rolled_back_change_has_no_event(world: Any) -> None:
    _, state, box, clock, topic = world
    box.commit([change(state, 1)], [intent(box, 1)])
    with pytest.raises(TransactionCanceled):  # a stale writer: its version check fails
        box.commit([change(state, 1)], [intent(box, 2)])
    clock.t += 3600
    assert box.relay()["due"] == 0 and [e.id for e in topic.sent] == ["R1-1"]
    assert box.get("rx#events#R1-2") is None


def test_one_fact_cannot_be_announced_twice_and_copies_share_the_id(world: Any) -> None:
    backend, state, box, _, topic = world
    box.commit([change(state, 1)], [intent(box, 1)])
    with pytest.raises(TransactionCanceled):
        box.commit([change(state, 2)], [intent(box, 1)])  # same fact id: refused with the change
    assert backend.store.get(state, {"pk": "R1"})["version"] == 1
    # at least once: a lost mark sends the same envelope again, with the same id
    box.dispatch([intent(box, 1)])
    assert [e.id for e in topic.sent] == ["R1-1", "R1-1"]


def test_the_relay_backs_off_while_the_sink_refuses(world: Any) -> None:
    _, state, box, clock, topic = world
    topic.down = True
    box.commit([change(state, 1)], [intent(box, 1)])
    assert len(box.pending()) == 1
    clock.t += RELAY_GRACE + 1
    assert box.relay() == {"due": 1, "sent": 0, "failed": 1}
    assert box.pending()[0]["relay_attempts"] == 1
    topic.down = False
    clock.t += RELAY_BACKOFF[0] - 5
    assert box.relay()["due"] == 0
    clock.t += 10
    assert box.relay() == {"due": 1, "sent": 1, "failed": 0} and len(topic.sent) == 1


def test_an_intent_alone_commits_as_a_single_put_and_services_keep_their_own_partition(world: Any) -> None:
    backend, _, box, clock, topic = world
    topic.down = True
    box.commit([], [intent(box, 1)])
    other = Outbox(backend.store, box.table, "film", {EVENTS: TopicSink(topic)}, clock=clock)
    assert other.pending() == [] and len(box.pending()) == 1
