"""What the film domain needs from the world besides the kit's ports (objects: ``bianjie.kit.objects``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class DeadLetters(Protocol):
    """Where poison goes at once, with its reason (``bianjie.kit.batch.DeadLetterQueue``)."""

    def send(self, body: str, reason: str, message: str, extra: Mapping[str, str] | None = None) -> None: ...


class Queue(Protocol):
    """One queue (``bianjie.kit.queues.QueueSender``): a string body as is, anything else as JSON."""

    def send(self, payload: Any, delay_seconds: int = 0, attributes: dict[str, str] | None = None) -> str: ...
