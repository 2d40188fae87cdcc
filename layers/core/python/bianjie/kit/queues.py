"""Queues port: send messages (singly or in batches of ten) to a queue by URL.

Adapters: ``SqsQueues`` (AWS SQS, ElasticMQ, moto; endpoint from configuration) and ``MemoryQueues``
for unit tests. Receiving is the event pump's job (or Lambda's), not the functions'.

Services hold a ``QueueSender``, one queue of the port (``deps.queue("ENV_NAME")``): its ``send(payload,
delay_seconds=0, attributes=None)`` takes a JSON-able payload (or a ready string body), which is the
one-queue port every service's domain declares (film's emergency and dead-letter queues, pay's webhook
and stand-in queues, guide's channel queues).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Message:
    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    delay_seconds: int = 0
    group_id: str | None = None  # FIFO queues
    dedup_id: str | None = None  # FIFO queues


class QueueError(RuntimeError):
    """Some messages of a batch were not accepted; ``failed`` holds their indexes."""

    def __init__(self, failed: Sequence[int], reasons: Sequence[str]) -> None:
        super().__init__(f"{len(failed)} message(s) not sent: {'; '.join(reasons)}")
        self.failed = list(failed)


class Queues(Protocol):
    def send(self, queue_url: str, message: Message) -> str: ...
    def send_batch(self, queue_url: str, messages: Sequence[Message]) -> list[str]: ...


def json_message(payload: Any, **kwargs: Any) -> Message:
    return Message(json.dumps(payload, ensure_ascii=False, separators=(",", ":")), **kwargs)


def _sqs_args(message: Message) -> dict[str, Any]:
    args: dict[str, Any] = {"MessageBody": message.body}
    if message.attributes:
        args["MessageAttributes"] = {k: {"DataType": "String", "StringValue": v} for k, v in message.attributes.items()}
    if message.delay_seconds:
        args["DelaySeconds"] = message.delay_seconds
    if message.group_id:
        args["MessageGroupId"] = message.group_id
    if message.dedup_id:
        args["MessageDeduplicationId"] = message.dedup_id
    return args


class SqsQueues:
    def __init__(self, sqs_client: Any) -> None:
        self._sqs = sqs_client

    def send(self, queue_url: str, message: Message) -> str:
        return str(self._sqs.send_message(QueueUrl=queue_url, **_sqs_args(message))["MessageId"])

    def send_batch(self, queue_url: str, messages: Sequence[Message]) -> list[str]:
        ids: list[str] = []
        failed: list[int] = []
        reasons: list[str] = []
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            answer = self._sqs.send_message_batch(
                QueueUrl=queue_url, Entries=[{"Id": str(i), **_sqs_args(m)} for i, m in enumerate(chunk)]
            )
            by_id = {int(s["Id"]): s["MessageId"] for s in answer.get("Successful", [])}
            for f in answer.get("Failed", []):
                failed.append(start + int(f["Id"]))
                reasons.append(f.get("Message") or f.get("Code", "failed"))
            ids.extend(by_id.get(i, "") for i in range(len(chunk)))
        if failed:
            raise QueueError(failed, reasons)
        return ids


class QueueSender:
    """One queue of a ``Queues`` port."""

    def __init__(self, queues: Queues, url: str) -> None:
        self.queues = queues
        self.url = url

    def send(self, payload: Any, delay_seconds: int = 0, attributes: dict[str, str] | None = None) -> str:
        """``payload``: a string body as is, anything else as compact JSON. ``delay_seconds`` is clamped
        to SQS's 0-900."""
        body = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
        message = Message(body, attributes=dict(attributes or {}), delay_seconds=max(0, min(900, int(delay_seconds))))
        return self.queues.send(self.url, message)


class MemoryQueues:
    def __init__(self) -> None:
        self.sent: dict[str, list[Message]] = {}
        self._lock = threading.Lock()
        self._n = 0

    def send(self, queue_url: str, message: Message) -> str:
        with self._lock:
            self._n += 1
            self.sent.setdefault(queue_url, []).append(message)
            return f"m{self._n}"

    def send_batch(self, queue_url: str, messages: Sequence[Message]) -> list[str]:
        return [self.send(queue_url, m) for m in messages]

    def sender(self, queue_url: str) -> QueueSender:
        return QueueSender(self, queue_url)

    def bodies(self, queue_url: str) -> list[Any]:
        """What was sent to one queue, JSON bodies decoded."""
        return [json.loads(m.body) for m in self.sent.get(queue_url, [])]
