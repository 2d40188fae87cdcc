"""The channel queues: one kit queue per channel (``bianjie.kit.queues``). Messages carry the dedup key
only; the notification record holds the rest, so no patient data sits in a queue."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ChannelQueues:
    def __init__(self, senders: Mapping[str, Any]) -> None:
        self.senders = dict(senders)  # channel -> bianjie.kit.queues.QueueSender

    def send(self, channel: str, key: str) -> None:
        self.senders[channel].send({"key": key, "channel": channel})


class MemoryNotificationQueue:
    """For unit tests: what was queued, per channel, in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, channel: str, key: str) -> None:
        self.sent.append((channel, key))

    def drain(self) -> list[tuple[str, str]]:
        out, self.sent = self.sent, []
        return out
