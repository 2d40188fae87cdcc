"""The event pump's delivery semantics against an in-memory SQS fake: deletes, partial batch failures,
whole-batch failure, S3 test events, retry delay."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bianjie.runtime.invoke import Function
from bianjie.runtime.pump import EventPump, Source
from bianjie.runtime.template import FunctionSpec


class FakeSqs:
    def __init__(self) -> None:
        self.deleted: list[str] = []
        self.visibility: list[tuple[str, int]] = []

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:
        self.deleted += [e["ReceiptHandle"] for e in Entries]

    def change_message_visibility(self, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int) -> None:
        self.visibility.append((ReceiptHandle, VisibilityTimeout))


class ScriptedFunction(Function):
    def __init__(self, behaviour: Any) -> None:
        super().__init__(FunctionSpec("F", Path("."), "app.f", "python3.11", 3, 128, {}, []), "cn-north-1")
        self.behaviour = behaviour
        self.events: list[dict[str, Any]] = []

    def invoke(self, event: dict[str, Any], request_id: str | None = None) -> Any:
        self.events.append(event)
        return self.behaviour(event)


def messages(*bodies: str) -> list[dict[str, Any]]:
    return [{"MessageId": f"m{i}", "ReceiptHandle": f"r{i}", "Body": b, "Attributes": {}} for i, b in enumerate(bodies)]


def pump_for(fn: ScriptedFunction, kind: str = "sqs", report: bool = True, retry: int | None = None) -> tuple:
    sqs = FakeSqs()
    pump = EventPump([], _deployment(), sqs, retry_delay=retry)
    source = Source(fn, "url", "arn:aws-cn:sqs:cn-north-1:123456789012:q", 10, report, 0, kind)
    return pump, source, sqs


def _deployment() -> Any:
    from bianjie.runtime.deployment import Deployment

    return Deployment("s", "cn-north-1", None)


def test_success_deletes_the_whole_batch_and_builds_lambda_records() -> None:
    fn = ScriptedFunction(lambda e: None)
    pump, source, sqs = pump_for(fn)
    pump.deliver(source, messages("a", "b"))
    assert sqs.deleted == ["r0", "r1"]
    record = fn.events[0]["Records"][0]
    assert record["messageId"] == "m0" and record["body"] == "a" and record["eventSource"] == "aws:sqs"
    assert record["awsRegion"] == "cn-north-1"


def test_reported_failures_are_kept_others_deleted() -> None:
    fn = ScriptedFunction(lambda e: {"batchItemFailures": [{"itemIdentifier": "m1"}]})
    pump, source, sqs = pump_for(fn, retry=0)
    pump.deliver(source, messages("a", "b", "c"))
    assert sqs.deleted == ["r0", "r2"]
    assert sqs.visibility == [("r1", 0)]


def test_reported_failures_ignored_without_the_response_type() -> None:
    fn = ScriptedFunction(lambda e: {"batchItemFailures": [{"itemIdentifier": "m1"}]})
    pump, source, sqs = pump_for(fn, report=False)
    pump.deliver(source, messages("a", "b"))
    assert sqs.deleted == ["r0", "r1"]


def test_exception_keeps_every_message_for_redelivery() -> None:
    def boom(event: Any) -> None:
        raise RuntimeError("handler bug")

    fn = ScriptedFunction(boom)
    pump, source, sqs = pump_for(fn)
    pump.deliver(source, messages("a", "b"))
    assert sqs.deleted == [] and sqs.visibility == []  # the queue's visibility timeout decides
    assert pump.stats[source.label].failures == 1


def test_s3_source_skips_test_events_and_sends_one_record_per_invocation() -> None:
    fn = ScriptedFunction(lambda e: None)
    pump, source, sqs = pump_for(fn, kind="s3")
    two = json.dumps({"Records": [{"s3": {"object": {"key": "a"}}}, {"s3": {"object": {"key": "b"}}}]})
    pump.deliver(source, messages(json.dumps({"Event": "s3:TestEvent"}), two))
    assert [len(e["Records"]) for e in fn.events] == [1, 1]
    assert sqs.deleted == ["r0", "r1"]
