"""Signed webhooks to the hospital when a charge or refund reaches a final state.

The hospital gave a ``notify_url`` with the charge. We POST::

    Bianjie-Timestamp / Bianjie-Nonce / Bianjie-Serial / Bianjie-Signature-Type: SM2-WITH-SM3
    Bianjie-Signature: base64(SM2 over "<timestamp>\\n<nonce>\\n<raw body>\\n") with our webhook key
    {"id": "<event id>", "type": "charge.succeeded" | "charge.failed" | "refund.succeeded" | "refund.failed",
     "created": <unix seconds>, "data": {...the same object GET /pay/charges/{id} returns...}}

The public key is served by ``GET /pay/webhook-key``. Any 2xx acknowledges. Otherwise we retry after
``RETRY_SCHEDULE`` seconds (about 11 hours in all), then the message goes to the dead-letter queue,
where an operator can inspect and redrive it.

Delivery is at least once (transactional outbox, ``WebhookOutbox``): the same event may arrive more than
once, always with the same ``id`` (derived from the transition: ``ev-<charge_id>-charge.succeeded``), so
hospitals must dedupe by ``id``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any, Protocol

from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.logging import get_logger
from bianjie.pay import wire
from bianjie.pay.models import Charge, ChargeStatus, Refund
from bianjie.pay.store import outbox_item

log = get_logger("bianjie.pay.webhooks")

RETRY_SCHEDULE = (15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600)
MAX_QUEUE_DELAY = 900  # SQS DelaySeconds limit; longer waits are re-queued until due
RELAY_GRACE = 30  # seconds the relay leaves an intent to the writer's own dispatch right after its commit
RELAY_BACKOFF = (60, 120, 300, 900)  # when the queue itself keeps refusing


class Queue(Protocol):
    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None: ...


class OutboxStore(Protocol):
    def outbox_due(self, until: float, limit: int = 100) -> list[dict[str, Any]]: ...
    def outbox_queued(self, item: dict[str, Any], now: float) -> None: ...
    def outbox_retry_at(self, item: dict[str, Any], due_at: float) -> None: ...


def event_id(subject: str, kind: str) -> str:
    """The notification id of a transition: stable, so every copy of one webhook carries the same id and
    the hospital can deduplicate; ``subject`` is the charge id or our refund number (both ours, bounded)."""
    return f"ev-{subject}-{kind}"


class WebhookOutbox:
    """Implements ``charges.ChargeEvents`` as a transactional outbox.

    ``charge_final`` / ``refund_final`` build the intent (an outbox item) that the caller writes in the
    SAME transaction as the transition; after the commit the caller calls ``dispatch``, which puts it on
    the webhook queue and marks it QUEUED. If the process dies (or the queue refuses) in between, the
    intent stays PENDING and ``relay`` (a schedule) queues it once ``RELAY_GRACE`` has passed. Delivery
    is at least once: a crash after the send and before the mark sends it again, with the same id.
    """

    def __init__(
        self,
        store: OutboxStore,
        queue: Queue,
        view: Callable[[Charge], dict[str, Any]],
        clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self._queue = queue
        self._view = view
        self._clock = clock

    def charge_final(self, charge: Charge, now: float) -> dict[str, Any] | None:
        kind = "charge.succeeded" if charge.status is ChargeStatus.SUCCEEDED else "charge.failed"
        return self._intent(event_id(charge.charge_id, kind), kind, charge.notify_url, self._view(charge), now)

    def refund_final(self, refund: Refund, charge: Charge, now: float) -> dict[str, Any] | None:
        kind = f"refund.{refund.status.value.lower()}"
        data = {
            "charge_id": charge.charge_id,
            "refund_no": refund.refund_no,
            "amount": refund.amount,
            "status": refund.status.value,
        }
        return self._intent(event_id(refund.out_refund_no, kind), kind, charge.notify_url, data, now)

    def _intent(
        self, ident: str, kind: str, url: str | None, data: dict[str, Any], now: float
    ) -> dict[str, Any] | None:
        if not url:
            return None
        event = {"id": ident, "type": kind, "created": int(now), "data": data}
        return outbox_item(ident, url, event, due_at=now + RELAY_GRACE, now=now)

    def dispatch(self, item: dict[str, Any], *, relayed: bool = False) -> bool:
        """Queue one intent and mark it QUEUED; never raises (a failure leaves it to the relay)."""
        try:
            self._queue.send({"url": item["url"], "event": item["event"], "attempt": 0, "due": 0})
        except Exception:
            log.exception("webhook enqueue failed; the relay will retry", extra={"event_id": item["event_id"]})
            if relayed:
                attempts = int(item.get("relay_attempts") or 0)
                delay = RELAY_BACKOFF[min(attempts, len(RELAY_BACKOFF) - 1)]
                with contextlib.suppress(Exception):  # queued meanwhile, or the store is down: next run decides
                    self._store.outbox_retry_at(item, self._clock() + delay)
            return False
        try:
            self._store.outbox_queued(item, self._clock())
        except Exception:
            # sent but not marked: the relay will send it again, with the same id (at least once)
            log.exception("webhook queued but not marked", extra={"event_id": item["event_id"]})
        return True

    def relay(self, limit: int = 100) -> dict[str, int]:
        """Queue every intent still PENDING after its grace period (the writer crashed or the queue failed)."""
        counts = {"due": 0, "queued": 0, "failed": 0}
        for item in self._store.outbox_due(self._clock(), limit=limit):
            counts["due"] += 1
            counts["queued" if self.dispatch(item, relayed=True) else "failed"] += 1
        if counts["due"]:
            log.info("webhook outbox relayed", extra=counts)
        return counts


Poster = Callable[[str, dict[str, str], bytes, float], int]


class WebhookSender:
    def __init__(
        self,
        key: Sm2PrivateKey,
        serial: str,
        queue: Queue,
        dead_letters: Queue,
        post: Poster,
        clock: Callable[[], float] = time.time,
        timeout: float = 5.0,
    ) -> None:
        self._key = key
        self._serial = serial
        self._queue = queue
        self._dlq = dead_letters
        self._post = post
        self._clock = clock
        self._timeout = timeout

    def signed(self, event: dict[str, Any]) -> tuple[dict[str, str], bytes]:
        body = wire.dumps(event)
        headers = wire.sign_headers(
            self._key, self._serial, (body,), prefix=wire.WEBHOOK_PREFIX, timestamp=int(self._clock())
        )
        headers["Content-Type"] = "application/json"
        return headers, body

    def handle(self, message: dict[str, Any]) -> str:
        """Deliver one queued webhook; returns "delivered", "requeued", "waiting" or "dead"."""
        now = self._clock()
        due = float(message.get("due") or 0)
        if due > now:  # waiting out a delay longer than the queue allows
            self._queue.send(message, min(MAX_QUEUE_DELAY, int(due - now) + 1))
            return "waiting"
        headers, body = self.signed(message["event"])
        status = self._post(message["url"], headers, body, self._timeout)
        if 200 <= status < 300:
            return "delivered"
        attempt = int(message.get("attempt") or 0)
        log.info(
            "webhook not acknowledged", extra={"status": status, "attempt": attempt, "type": message["event"]["type"]}
        )
        if attempt >= len(RETRY_SCHEDULE):
            self._dlq.send({**message, "last_status": status})
            return "dead"
        delay = RETRY_SCHEDULE[attempt]
        self._queue.send({**message, "attempt": attempt + 1, "due": now + delay}, min(MAX_QUEUE_DELAY, delay))
        return "requeued"
