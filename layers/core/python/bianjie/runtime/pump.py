"""The event pump: plays Lambda's SQS event-source mapping, and S3 notifications through queues.

For each ``SQS`` event of a function it long-polls the queue, hands batches to the handler, deletes
what succeeded, and leaves failures for redelivery after the queue's visibility timeout; the queue's
RedrivePolicy moves a message to its dead-letter queue after ``maxReceiveCount`` receives (SQS does
that, not us). With ``ReportBatchItemFailures`` only the reported items are retried.
``S3`` events arrive on a hidden queue the provisioner subscribed to the bucket, one record per
invocation, as S3 invokes Lambda.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from bianjie.runtime.deployment import Deployment, s3_queue_logical_id
from bianjie.runtime.invoke import Function
from bianjie.runtime.template import S3Event, SqsEvent

log = logging.getLogger("bianjie.pump")


@dataclass
class Source:
    function: Function
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    batching_window: int
    kind: str  # "sqs" | "s3"
    concurrency: int = 1

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.queue_arn.rsplit(':', 1)[-1]} -> {self.function.spec.logical_id}"


@dataclass
class PumpStats:
    invocations: int = 0
    failures: int = 0
    deleted: int = 0


class EventPump:
    def __init__(
        self,
        functions: list[Function],
        deployment: Deployment,
        sqs_client: Any,
        *,
        retry_delay: int | None = None,
        wait_seconds: int = 1,
    ) -> None:
        self.sqs = sqs_client
        self.retry_delay = retry_delay
        self.wait_seconds = wait_seconds
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        self.stats: dict[str, PumpStats] = {}
        self.sources: list[Source] = []
        resolver = deployment.resolver()
        arn_to_url = {
            info["attrs"].get("Arn"): info["ref"]
            for info in deployment.resources.values()
            if info.get("type") == "AWS::SQS::Queue"
        }
        for fn in functions:
            for event in fn.spec.events:
                if isinstance(event, SqsEvent) and event.enabled:
                    arn = resolver.resolve(event.queue)
                    self.sources.append(
                        Source(
                            fn,
                            arn_to_url[arn],
                            arn,
                            event.batch_size,
                            event.report_batch_item_failures,
                            event.batching_window_seconds,
                            "sqs",
                            max(1, event.max_concurrency),
                        )
                    )
                elif isinstance(event, S3Event):
                    info = deployment.resources[s3_queue_logical_id(fn.spec.logical_id, event.name)]
                    self.sources.append(Source(fn, info["ref"], info["attrs"]["Arn"], 1, False, 0, "s3"))

    def start(self) -> None:
        for source in self.sources:
            self.stats[source.label] = PumpStats()
            for i in range(source.concurrency):
                t = threading.Thread(target=self._loop, args=(source,), name=f"pump-{source.label}-{i}", daemon=True)
                t.start()
                self.threads.append(t)

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=self.wait_seconds + 5)

    # -- polling ----------------------------------------------------------------------------------

    def _receive(self, source: Source) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + source.batching_window
        while len(messages) < source.batch_size and not self.stop_event.is_set():
            got = self.sqs.receive_message(
                QueueUrl=source.queue_url,
                MaxNumberOfMessages=min(10, source.batch_size - len(messages)),
                WaitTimeSeconds=self.wait_seconds if not messages else 0,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages.extend(got)
            if not got or time.monotonic() >= deadline:
                break
        return messages

    def _loop(self, source: Source) -> None:
        while not self.stop_event.is_set():
            try:
                messages = self._receive(source)
                if messages:
                    self.deliver(source, messages)
            except Exception:  # the pump must outlive a broken handler or a restarting endpoint
                log.exception("pump %s: poll failed", source.label)
                self.stop_event.wait(1.0)

    def deliver(self, source: Source, messages: list[dict[str, Any]]) -> None:
        stats = self.stats.setdefault(source.label, PumpStats())
        if source.kind == "s3":
            for message in messages:
                self._deliver_s3(source, message, stats)
            return
        event = {"Records": [self._record(source, m) for m in messages]}
        stats.invocations += 1
        try:
            result = source.function.invoke(event)
        except Exception:
            stats.failures += 1
            log.exception(
                "function %s failed on a batch of %d; messages will be retried",
                source.function.spec.logical_id,
                len(messages),
            )
            self._release(source, messages)
            return
        failed_ids: set[str] = set()
        if source.report_failures and isinstance(result, dict):
            failed_ids = {f["itemIdentifier"] for f in result.get("batchItemFailures") or []}
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        self._delete(source, done)
        stats.deleted += len(done)
        if failed_ids:
            stats.failures += 1
            self._release(source, [m for m in messages if m["MessageId"] in failed_ids])

    def _deliver_s3(self, source: Source, message: dict[str, Any], stats: PumpStats) -> None:
        body = json.loads(message["Body"])
        records = body.get("Records") or []
        if body.get("Event") == "s3:TestEvent" or not records:
            self._delete(source, [message])
            return
        try:
            for record in records:
                stats.invocations += 1
                source.function.invoke({"Records": [record]})
        except Exception:
            stats.failures += 1
            log.exception("function %s failed on an S3 event", source.function.spec.logical_id)
            self._release(source, [message])
            return
        self._delete(source, [message])
        stats.deleted += 1

    def _record(self, source: Source, message: dict[str, Any]) -> dict[str, Any]:
        attributes = {}
        for name, attr in (message.get("MessageAttributes") or {}).items():
            converted = {"dataType": attr["DataType"], "stringListValues": [], "binaryListValues": []}
            if "StringValue" in attr:
                converted["stringValue"] = attr["StringValue"]
            if "BinaryValue" in attr:
                converted["binaryValue"] = attr["BinaryValue"]
            attributes[name] = converted
        return {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message["Body"],
            "attributes": message.get("Attributes", {}),
            "messageAttributes": attributes,
            "md5OfBody": message.get("MD5OfBody"),
            "eventSource": "aws:sqs",
            "eventSourceARN": source.queue_arn,
            "awsRegion": source.queue_arn.split(":")[3],
        }

    def _delete(self, source: Source, messages: list[dict[str, Any]]) -> None:
        for i in range(0, len(messages), 10):
            chunk = messages[i : i + 10]
            if chunk:
                self.sqs.delete_message_batch(
                    QueueUrl=source.queue_url,
                    Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
                )

    def _release(self, source: Source, messages: list[dict[str, Any]]) -> None:
        """Failed messages wait out the visibility timeout, or ``retry_delay`` when the developer set one."""
        if self.retry_delay is None:
            return
        for m in messages:
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=source.queue_url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=self.retry_delay
                )
            except Exception:
                log.warning("could not shorten visibility of a failed message on %s", source.label)
