"""One partial-batch loop for every SQS-event handler (as Powertools' ``process_partial_response``).

Lambda (and our event pump) hands a function a batch of SQS records and, with
``FunctionResponseTypes: [ReportBatchItemFailures]``, redelivers only the records the function names in
``batchItemFailures``. Each record ends in one of three ways:

- the handler returned: acknowledged (deleted from the queue);
- the handler raised ``Poison`` (or a pydantic ``ValidationError``, or the body is not JSON): the record
  can never succeed, so it is sent to the consumer's dead-letter queue at once with its reason (message
  attributes ``reason``, a stable code, and ``message``, a short explanation) and acknowledged. Waiting
  for ``maxReceiveCount`` would only delay the operator and block the batch's retries;
- anything else (a store or a partner is down; ``Retry`` when the handler expected it): reported as
  failed, so SQS redelivers it after the visibility timeout and moves it to the DLQ itself after
  ``maxReceiveCount``.

If the dead-letter send itself fails the record is reported as failed: it comes back, is found poison
again, and is dead-lettered then. A consumer that reads a DLQ (the last stop) passes ``dead_letters=None``:
its poison is logged with the reason and acknowledged.

Records come as Chalice's ``SQSEvent`` (``@app.on_sqs_message``) or as the raw Lambda event dict; bodies
are whatever the producer sent (for SNS subscriptions: the envelope itself with ``RawMessageDelivery``,
or SNS's notification wrapper without it; ``bianjie.kit.events.parse_envelope`` reads both).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import ValidationError

from bianjie.kit.logging import get_logger
from bianjie.kit.queues import Message, Queues

log = get_logger("bianjie.kit.batch")
MAX_REASON_CHARS = 500  # a message attribute holds more, but an operator reads a sentence, not a dump


class Retry(Exception):
    """An expected transient failure (a partner said "later"): redelivered like any exception, logged
    as a warning with its message instead of a traceback."""


class Poison(Exception):
    """A record that can never be processed: dead-lettered at once with ``code`` and ``reason``."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class SqsMessage:
    """One SQS record, whatever it came in."""

    message_id: str
    body: str
    attributes: Mapping[str, Any] = field(default_factory=dict)  # SQS system attributes
    message_attributes: Mapping[str, Any] = field(default_factory=dict)  # producer's (SNS raw delivery's)
    source_arn: str = ""

    @property
    def receive_count(self) -> int:
        return int(self.attributes.get("ApproximateReceiveCount") or 1)

    def json(self) -> Any:
        """The body as JSON; a body that is not JSON is poison."""
        try:
            return json.loads(self.body)
        except (TypeError, ValueError) as exc:
            raise Poison("BODY_NOT_JSON", f"the message body is not JSON ({exc})") from exc

    def attribute(self, name: str) -> str | None:
        value = self.message_attributes.get(name)
        if isinstance(value, Mapping):
            return value.get("stringValue") or value.get("StringValue")
        return None


def raw_records(event: Any) -> list[dict[str, Any]]:
    """The raw record dicts of a Chalice ``SQSEvent``, a Lambda event dict, or a list of either's records."""
    if isinstance(event, Mapping):
        records: Iterable[Any] = event.get("Records") or []
    elif hasattr(event, "to_dict") and not hasattr(event, "body"):  # Chalice SQSEvent
        records = event.to_dict().get("Records") or []
    else:
        records = event
    return [r.to_dict() if hasattr(r, "to_dict") else dict(r) for r in records]


def messages(event: Any) -> list[SqsMessage]:
    return [
        SqsMessage(
            message_id=str(r["messageId"]),
            body=str(r.get("body") or ""),
            attributes=r.get("attributes") or {},
            message_attributes=r.get("messageAttributes") or {},
            source_arn=str(r.get("eventSourceARN") or ""),
        )
        for r in raw_records(event)
    ]


class DeadLetters(Protocol):
    def send(self, body: str, reason: str, message: str) -> None: ...


class DeadLetterQueue:
    """A DLQ reached through the queues port: the original body (so a redrive replays it unchanged) and
    the reason as message attributes ``reason`` and ``message``."""

    def __init__(self, queues: Queues, url: str) -> None:
        self._queues = queues
        self.url = url

    def send(self, body: str, reason: str, message: str, extra: Mapping[str, str] | None = None) -> None:
        attributes = {"reason": reason, "message": (message or reason)[:MAX_REASON_CHARS], **(extra or {})}
        self._queues.send(self.url, Message(body, attributes=attributes))


@dataclass
class BatchOutcome:
    acknowledged: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # redelivered
    dead_lettered: list[tuple[str, str]] = field(default_factory=list)  # (message id, reason code)
    results: dict[str, Any] = field(default_factory=dict)  # message id -> what the handler returned

    def response(self) -> dict[str, Any]:
        """What Lambda's ``ReportBatchItemFailures`` expects."""
        return {"batchItemFailures": [{"itemIdentifier": i} for i in self.failed]}


def _poison_of(exc: Exception) -> Poison | None:
    if isinstance(exc, Poison):
        return exc
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        what = errors[0]["msg"] if errors else "invalid"
        return Poison("INVALID_MESSAGE", f"{where or 'body'}: {what} ({exc.error_count()} error(s))")
    return None


def process(
    event: Any,
    handler: Callable[[SqsMessage], Any],
    *,
    dead_letters: DeadLetters | None,
    name: str = "",
) -> BatchOutcome:
    """Run ``handler`` on every record; see the module docstring for what each outcome does."""
    outcome = BatchOutcome()
    for message in messages(event):
        context = {"handler": name, "message_id": message.message_id, "receive_count": message.receive_count}
        try:
            outcome.results[message.message_id] = handler(message)
        except Exception as exc:
            poison = _poison_of(exc)
            if poison is None:
                if isinstance(exc, Retry):
                    log.warning("record will be redelivered", extra={**context, "why": str(exc)[:200]})
                else:
                    log.exception("record failed; it will be redelivered", extra=context)
                outcome.failed.append(message.message_id)
                continue
            if _dead_letter(message, poison, dead_letters, context):
                outcome.dead_lettered.append((message.message_id, poison.code))
            else:
                outcome.failed.append(message.message_id)
            continue
        outcome.acknowledged.append(message.message_id)
    return outcome


def process_partial_response(
    event: Any, handler: Callable[[SqsMessage], Any], *, dead_letters: DeadLetters | None, name: str = ""
) -> dict[str, Any]:
    """``process(...)`` answered as Lambda expects: ``{"batchItemFailures": [...]}``."""
    return process(event, handler, dead_letters=dead_letters, name=name).response()


def _dead_letter(message: SqsMessage, poison: Poison, dead_letters: DeadLetters | None, context: dict) -> bool:
    # the reason is a code and a parser's sentence about field names, never the body (it may hold anything)
    extra = {**context, "why": poison.code, "reason": poison.reason[:MAX_REASON_CHARS]}
    if dead_letters is None:
        log.error("poison record at the last stop; acknowledged and dropped", extra=extra)
        return True
    try:
        dead_letters.send(message.body, poison.code, poison.reason)
    except Exception:
        log.exception("poison record not dead-lettered; it will come back", extra=extra)
        return False
    log.warning("poison record dead-lettered", extra=extra)
    return True
