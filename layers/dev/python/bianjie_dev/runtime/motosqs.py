"""moto's SQS without a pass over the whole queue for each message (fix 13 of ``motoserver``).

moto builds a queue's attribute dict (``Queue.attributes``) to read one setting: on every SendMessage
(``ContentBasedDeduplication``, also through SNS's fan-out) and for every message a ReceiveMessage hands
out (``MessageRetentionPeriod``). Building it counts the queue's messages three times (visible, delayed,
in flight), reading the clock through ``datetime`` twice per message. A consumer that falls behind (guide's
domain-events queue during the rx benchmark: thousands of messages) so made every later send and receive
slower, and the consumer fell further behind: a py-spy profile of the moto server during
``scripts/bench/rx.py --count 400`` found 15% of its busy samples in those counts.

What changes:
- On the send and receive paths the counts are not computed: the attribute dict built there holds 0 for
  the three ``ApproximateNumberOfMessages*`` entries, which those paths never read (GetQueueAttributes
  still counts, on its own thread).
- Where moto does count (``messages``, the three counts), the clock is read once per pass instead of
  twice per message: the same test (``now > visible_at``, ``now < delayed_until``) with one ``now``.
- DeleteMessage finds and removes its message in one pass instead of two.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

_local = threading.local()  # set while a send or a receive runs on this thread


@contextlib.contextmanager
def _uncounted() -> Iterator[None]:
    previous = getattr(_local, "uncounted", False)
    _local.uncounted = True
    try:
        yield
    finally:
        _local.uncounted = previous


def _without_counts(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _uncounted():
            return method(*args, **kwargs)

    wrapper._bianjie_uncounted = True  # type: ignore[attr-defined]
    return wrapper


def tune_sqs() -> None:
    """Fix 13 to moto's SQS in this process (idempotent)."""
    from moto.core.utils import unix_time_millis
    from moto.sqs.exceptions import ReceiptHandleIsInvalid
    from moto.sqs.models import Queue, SQSBackend

    if getattr(SQSBackend.send_message, "_bianjie_uncounted", False):
        return

    def visible_messages(self: Any) -> list[Any]:
        now = unix_time_millis()
        return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]

    def number_visible(self: Any) -> int:
        return 0 if getattr(_local, "uncounted", False) else len(visible_messages(self))

    def number_delayed(self: Any) -> int:
        if getattr(_local, "uncounted", False):
            return 0
        now = unix_time_millis()
        return sum(1 for m in self._messages if now < m.delayed_until)

    def number_not_visible(self: Any) -> int:
        if getattr(_local, "uncounted", False):
            return 0
        now = unix_time_millis()
        return sum(1 for m in self._messages if not now > m.visible_at)

    Queue.messages = property(visible_messages)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages = property(number_visible)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_delayed = property(number_delayed)  # type: ignore[assignment,method-assign]
    Queue.approximate_number_of_messages_not_visible = property(number_not_visible)  # type: ignore[assignment,method-assign]

    for name in ("send_message", "send_message_batch", "receive_message"):
        setattr(SQSBackend, name, _without_counts(getattr(SQSBackend, name)))
    Queue.add_message = _without_counts(Queue.add_message)  # type: ignore[method-assign]

    def delete_message(self: Any, receipt_handle: str) -> None:
        # moto 5.2.5's Queue.delete_message, its "any" test and its rebuild in one pass
        if receipt_handle in self.deleted_messages:
            return  # already deleted: SQS accepts it again
        kept = []
        found = False
        for message in self._messages:
            if message.had_receipt_handle(receipt_handle):
                found = True
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)
                continue
            kept.append(message)
        if not found:
            raise ReceiptHandleIsInvalid()
        self._messages = kept

    Queue.delete_message = delete_message  # type: ignore[method-assign]
