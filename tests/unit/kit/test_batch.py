"""The partial-batch helper: success acknowledged, transient failures redelivered, poison dead-lettered
at once with its reason; Chalice's SQSEvent and raw dicts alike; raw and SNS-wrapped bodies."""

from __future__ import annotations

from typing import Any

import pytest
from bianjie.contracts import REGISTRY
from bianjie.kit.batch import DeadLetterQueue, Poison, SqsMessage, messages, process, process_partial_response
from bianjie.kit.events import read
from bianjie.kit.queues import MemoryQueues
from chalice.app import SQSEvent

from tests import events

DLQ = "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/consumer-dlq"


class Flaky:
    """A handler that reads each record's contract and fails transiently on the ids it is told to."""

    def __init__(self, down_for: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.down_for = down_for
        self.seen: list[str] = []

    def __call__(self, message: SqsMessage) -> str:
        envelope, _ = read(message.body, REGISTRY)
        if envelope.id in self.down_for:
            raise ConnectionError("store unreachable (injected)")
        self.seen.append(envelope.id)
        return envelope.type


@pytest.fixture
def dlq() -> tuple[MemoryQueues, DeadLetterQueue]:
    queues = MemoryQueues()
    return queues, DeadLetterQueue(queues, DLQ)


def dead(queues: MemoryQueues) -> list[Any]:
    return list(queues.sent.get(DLQ, []))


def test_the_poison_batch_one_good_three_dead_lettered_with_reasons(dlq: Any) -> None:
    queues, letters = dlq
    handler = Flaky()
    outcome = process(events.poison_batch(), handler, dead_letters=letters, name="test")
    assert outcome.response() == {"batchItemFailures": []}  # nothing is retried: poison cannot succeed
    assert outcome.acknowledged == ["11111111-0000-4000-8000-000000000001"]
    assert [code for _, code in outcome.dead_lettered] == ["EVENT_MALFORMED", "EVENT_VERSION_UNKNOWN", "EVENT_INVALID"]
    sent = dead(queues)
    assert [m.attributes["reason"] for m in sent] == ["EVENT_MALFORMED", "EVENT_VERSION_UNKNOWN", "EVENT_INVALID"]
    assert "visit_id" in sent[2].attributes["message"]  # the operator reads which field
    originals = [r["body"] for r in events.poison_batch()["Records"][1:]]
    assert [m.body for m in sent] == originals  # unchanged, so a redrive replays them as they were


def test_transient_failures_are_reported_and_the_rest_acknowledged(dlq: Any) -> None:
    queues, letters = dlq
    a = events.envelope("rx.released", id="a")
    b = events.envelope("rx.dispensed", id="b")
    c = events.envelope("film.report_published", id="c")
    handler = Flaky(down_for={"b"})
    answer = process_partial_response(events.sqs_batch(a, b, c), handler, dead_letters=letters)
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert handler.seen == ["a", "c"] and dead(queues) == []


@pytest.mark.parametrize("delivery", ["raw", "notification"])
def test_chalice_sqs_events_and_both_sns_deliveries(dlq: Any, delivery: str) -> None:
    _, letters = dlq
    batch = events.sqs_batch(events.envelope("rx.dispensed", id="x"), "{not json", delivery=delivery)  # type: ignore[arg-type]
    handler = Flaky()
    outcome = process(SQSEvent(batch, context=None), handler, dead_letters=letters)
    assert outcome.acknowledged == ["m0"] and outcome.results == {"m0": "rx.dispensed"}
    assert outcome.dead_lettered == [("m1", "EVENT_MALFORMED")] and handler.seen == ["x"]
    # the raw record is kept whole: attributes and the SNS message attributes of a raw delivery
    [first, _] = messages(SQSEvent(batch, context=None))
    assert first.receive_count == 1 and first.source_arn.endswith("bianjie-GuideDomainEventsQueue")
    assert first.attribute("type") == ("rx.dispensed" if delivery == "raw" else None)


def test_validation_errors_and_non_json_bodies_are_poison(dlq: Any) -> None:
    from pydantic import BaseModel

    class Job(BaseModel):
        key: str

    queues, letters = dlq
    outcome = process(
        events.sqs_batch({"key": "k1"}, {"nokey": 1}, "plain text"),
        lambda m: Job.model_validate(m.json()).key,
        dead_letters=letters,
    )
    assert outcome.results == {"m0": "k1"}
    assert outcome.dead_lettered == [("m1", "INVALID_MESSAGE"), ("m2", "BODY_NOT_JSON")]
    assert dead(queues)[0].attributes["message"].startswith("key: Field required")


def test_a_failed_dead_letter_send_leaves_the_record_for_redelivery() -> None:
    class Down:
        def send(self, body: str, reason: str, message: str) -> None:
            raise ConnectionError("DLQ unreachable (injected)")

    def poison(message: SqsMessage) -> None:
        raise Poison("BAD", "never")

    answer = process_partial_response(events.sqs_batch("x"), poison, dead_letters=Down())
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}]}


def test_at_the_last_stop_poison_is_logged_and_dropped(caplog: pytest.LogCaptureFixture) -> None:
    def poison(message: SqsMessage) -> None:
        raise Poison("BAD_DEAD_LETTER", "not a channel job")

    outcome = process(events.sqs_batch("x"), poison, dead_letters=None, name="last")
    assert outcome.response() == {"batchItemFailures": []} and outcome.dead_lettered == [("m0", "BAD_DEAD_LETTER")]
    assert any("last stop" in r.getMessage() for r in caplog.records)


def test_s3_notifications_through_a_queue(dlq: Any) -> None:
    from bianjie.kit.s3events import object_refs

    _, letters = dlq
    batch = events.s3_via_sqs("bucket-a", "hospital-1/study 1/a+b.dcm")
    outcome = process(batch, lambda m: [r.key for r in object_refs(m.body)], dead_letters=letters)
    [keys] = outcome.results.values()
    assert keys == ["hospital-1/study 1/a+b.dcm"]
    assert [r.key for r in object_refs(events.s3_direct("bucket-a", "x y.dcm"))] == ["x y.dcm"]


def test_an_expected_retry_is_redelivered_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    from bianjie.kit.batch import Retry

    def later(message: SqsMessage) -> None:
        raise Retry("the partner said later")

    answer = process_partial_response(events.sqs_batch("x"), later, dead_letters=None, name="r")
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    [record] = [r for r in caplog.records if r.name == "bianjie.kit.batch"]
    assert record.levelname == "WARNING" and record.exc_info is None
