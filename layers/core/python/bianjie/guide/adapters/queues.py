"""The channel queues (SQS API: SQS, ElasticMQ, moto). Messages carry the dedup key only; the
notification record holds the rest, so no patient data sits in a queue."""

from __future__ import annotations

import json
from typing import Any


class SqsNotificationQueue:
    def __init__(self, sqs: Any, queue_urls: dict[str, str]) -> None:
        self.sqs = sqs
        self.urls = queue_urls

    def send(self, channel: str, key: str) -> None:
        self.sqs.send_message(QueueUrl=self.urls[channel], MessageBody=json.dumps({"key": key, "channel": channel}))


class MemoryNotificationQueue:
    """For unit tests: what was queued, per channel, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, channel: str, key: str) -> None:
        self.sent.append((channel, key))

    def drain(self) -> list[tuple[str, str]]:
        out, self.sent = self.sent, []
        return out
