"""The transactional outbox every producer publishes through: no event is lost, none goes out for a
change that did not commit.

1. The use case builds its intents (``Outbox.event`` for a domain event to the topic, ``Outbox.message``
   for a message to one of the service's queues, e.g. pay's hospital webhooks) and commits their rows
   in the SAME documents-port transaction as the state change (``Outbox.commit``, or ``Outbox.puts``
   added to the use case's own transaction). Rolled back, there is no row, so no event.
2. Right after the commit ``dispatch`` sends each intent to its sink and marks the row SENT (kept
   ``SENT_TTL`` for tracing). It never raises: a failure leaves the row PENDING.
3. A schedule per producer (``relay``) sends what is PENDING after ``grace`` seconds (the writer died
   between commit and send, or the sink refused), backing off while the sink keeps refusing.

Delivery is at least once: a crash after the send and before the mark sends it again, always with the
same event id, which the producer derives from the fact (``<rx_id>-<version>``), so consumers dedupe.

Rows live in the platform's ``OutboxTable`` (``OUTBOX_TABLE``, like ``AuditTable``), one partition of
pending rows per service: ``outbox_id`` = ``<service>#<sink>#<event id>``; while PENDING a row carries
``pending`` = the service and ``due_at`` (number), the keys of the sparse index ``by_pending`` that the
relay reads. A DynamoDB transaction may span tables, and so may PostgreSQL's, so the row commits with
the service's own records wherever they live. The outbox uses only the documents port's common
operations: nothing here is store-specific.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bianjie.kit.documents.port import Cond, DocumentStore, KeyCond, Operation, Put
from bianjie.kit.events import Envelope, EventContract, EventSink, envelope_of
from bianjie.kit.logging import get_logger
from bianjie.kit.queues import Message, Queues

log = get_logger("bianjie.kit.outbox")

BY_PENDING = "by_pending"
EVENTS = "events"  # the sink name of the domain-events topic
RELAY_GRACE = 30.0  # seconds the relay leaves an intent to its writer's own dispatch
RELAY_BACKOFF = (60, 120, 300, 900)  # seconds, when the sink itself keeps refusing
SENT_TTL = 7 * 24 * 3600


class Sink(Protocol):
    def send(self, message: dict[str, Any]) -> None: ...


class TopicSink:
    """The domain-events topic: the intent's message is an envelope."""

    def __init__(self, events: EventSink) -> None:
        self._events = events

    def send(self, message: dict[str, Any]) -> None:
        self._events.send(Envelope.model_validate(message))


class QueueSink:
    """A queue of the service's own (e.g. pay's webhook queue): the message is the JSON body."""

    def __init__(self, queues: Queues, url: str) -> None:
        self._queues = queues
        self._url = url

    def send(self, message: dict[str, Any]) -> None:
        self._queues.send(self._url, Message(json.dumps(message, ensure_ascii=False, separators=(",", ":"))))


@dataclass(frozen=True)
class Intent:
    """One message to send once the change it belongs to commits."""

    event_id: str
    sink: str
    message: dict[str, Any]
    created_at: float


class Outbox:
    def __init__(
        self,
        documents: DocumentStore,
        table: str,
        service: str,
        sinks: Mapping[str, Sink],
        *,
        clock: Callable[[], float] = time.time,
        grace: float = RELAY_GRACE,
    ) -> None:
        self.documents = documents
        self.table = table
        self.service = service
        self.source = f"bianjie.{service}"
        self._sinks = sinks
        self._clock = clock
        self.grace = grace  # seconds the relay leaves a new intent to its writer (tests set 0)

    # -- building -------------------------------------------------------------------------------

    def event(self, event: EventContract, *, event_id: str, subject: str | None = None) -> Intent:
        """A domain event (validated against its contract now, before anything commits)."""
        now = self._clock()
        envelope = envelope_of(self.source, event, event_id=event_id, subject=subject, at=now)
        return Intent(event_id, EVENTS, envelope.model_dump(mode="json"), now)

    def message(self, sink: str, event_id: str, body: dict[str, Any]) -> Intent:
        if sink not in self._sinks:
            raise ValueError(f"outbox of {self.service} has no sink {sink!r}")
        return Intent(event_id, sink, body, self._clock())

    def outbox_id(self, intent: Intent) -> str:
        return f"{self.service}#{intent.sink}#{intent.event_id}"

    def row(self, intent: Intent) -> dict[str, Any]:
        return {
            "outbox_id": self.outbox_id(intent),
            "service": self.service,
            "sink": intent.sink,
            "event_id": intent.event_id,
            "message": intent.message,
            "status": "PENDING",
            "created_at": intent.created_at,
            "relay_attempts": 0,
            "pending": self.service,
            "due_at": int(intent.created_at + self.grace),  # whole seconds: key attributes are integers
        }

    def puts(self, intents: Sequence[Intent]) -> list[Put]:
        """The writes to commit in the same transaction as the change. Each is put only if absent: the id
        derives from the fact, so a stale writer that got past its own version check still cannot
        announce one fact twice (the transaction is cancelled)."""
        return [Put(self.table, self.row(i), Cond.absent()) for i in intents]

    # -- committing and sending -----------------------------------------------------------------

    def commit(self, operations: Sequence[Operation], intents: Sequence[Intent]) -> None:
        """Commit ``operations`` and the intents' rows atomically, then dispatch the intents.
        Raises what the store raises (``TransactionCanceled``, ``ConditionFailed``); nothing is sent then."""
        ops = [*operations, *self.puts(intents)]
        if len(ops) == 1 and isinstance(ops[0], Put):
            self.documents.put(ops[0].table, ops[0].item, condition=ops[0].condition)
        elif ops:
            self.documents.transact(ops)
        self.dispatch(intents)

    def dispatch(self, intents: Sequence[Intent]) -> int:
        """Send committed intents now and mark them SENT; never raises. Returns how many were sent."""
        sent = 0
        for intent in intents:
            sent += self._send(self.row(intent), relayed=False)
        return sent

    def relay(self, limit: int = 100) -> dict[str, int]:
        """Send every intent still PENDING after its grace period, oldest first."""
        counts = {"due": 0, "sent": 0, "failed": 0}
        for row in self.pending(until=self._clock(), limit=limit):
            counts["due"] += 1
            counts["sent" if self._send(row, relayed=True) else "failed"] += 1
        if counts["due"]:
            log.info("outbox relayed", extra={"service": self.service, **counts})
        return counts

    def pending(self, until: float | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Rows still PENDING (due by ``until``, or all), oldest first (operators: ``bianjie ... outbox``)."""
        key = KeyCond.of("pending", self.service)
        if until is not None:
            key = key.le("due_at", int(until))
        return self.documents.query(self.table, key, index=BY_PENDING, limit=limit).items

    def get(self, intent_or_id: Intent | str) -> dict[str, Any] | None:
        oid = self.outbox_id(intent_or_id) if isinstance(intent_or_id, Intent) else intent_or_id
        return self.documents.get(self.table, {"outbox_id": oid})

    def _send(self, row: dict[str, Any], *, relayed: bool) -> bool:
        context = {"service": self.service, "sink": row["sink"], "event_id": row["event_id"]}
        try:
            self._sinks[row["sink"]].send(row["message"])
        except Exception:
            log.exception("outbox send failed; the relay will retry", extra=context)
            if relayed:
                attempts = int(row.get("relay_attempts") or 0)
                delay = RELAY_BACKOFF[min(attempts, len(RELAY_BACKOFF) - 1)]
                again = {**row, "relay_attempts": attempts + 1, "due_at": int(self._clock()) + delay}
                with contextlib.suppress(Exception):  # sent meanwhile, or the store is down: next run decides
                    self.documents.put(self.table, again, condition=Cond.eq("status", "PENDING"))
            return False
        now = self._clock()
        done = {k: v for k, v in row.items() if k not in ("pending", "due_at")}
        done.update(status="SENT", sent_at=now, expires_at=int(now) + SENT_TTL)
        try:
            self.documents.put(self.table, done)
        except Exception:
            # sent but not marked: the relay sends it again, with the same id (at least once)
            log.exception("outbox sent but not marked", extra=context)
        return True
