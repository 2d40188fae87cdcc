"""Signed webhooks to the hospital when a charge or refund reaches a final state.

The hospital gave a ``notify_url`` with the charge. We POST::

    Bianjie-Timestamp / Bianjie-Nonce / Bianjie-Serial / Bianjie-Signature-Type: SM2-WITH-SM3
    Bianjie-Signature: base64(SM2 over "<timestamp>\\n<nonce>\\n<raw body>\\n") with our webhook key
    {"id": "<event id>", "type": "charge.succeeded" | "charge.failed" | "refund.succeeded" | "refund.failed",
     "created": <unix seconds>, "data": {...the same object GET /pay/charges/{id} returns...}}

The public key is served by ``GET /pay/webhook-key``. Any 2xx acknowledges. Otherwise we retry after
``RETRY_SCHEDULE`` seconds (about 11 hours in all), then the message goes to the dead-letter queue,
where an operator can inspect and redrive it.

Delivery is at least once (the kit's transactional outbox, through ``PayEvents``): the same event may
arrive more than once, always with the same ``id`` (derived from the transition:
``ev-<charge_id>-charge.succeeded``), so hospitals must dedupe by ``id``. The same transition also
publishes pay's domain event (``bianjie.contracts.pay``) for other bianjie services.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, Field

from bianjie.contracts.pay import (
    PayChargeFailedV1,
    PayChargeSucceededV1,
    PayRefundFailedV1,
    PayRefundSucceededV1,
)
from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.documents.port import Put
from bianjie.kit.logging import get_logger
from bianjie.kit.outbox import Intent, Outbox
from bianjie.pay import wire
from bianjie.pay.models import Charge, ChargeStatus, Refund, RefundStatus, now_iso

log = get_logger("bianjie.pay.webhooks")

RETRY_SCHEDULE = (15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600)
MAX_QUEUE_DELAY = 900  # SQS DelaySeconds limit; longer waits are re-queued until due
WEBHOOKS = "webhooks"  # the outbox sink of the webhook queue


class Queue(Protocol):
    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None: ...


def event_id(subject: str, kind: str) -> str:
    """The notification id of a transition: stable, so every copy of one webhook carries the same id and
    the hospital can deduplicate; ``subject`` is the charge id or our refund number (both ours, bounded)."""
    return f"ev-{subject}-{kind}"


class QueuedWebhook(BaseModel):
    """A message on the webhook queue (what ``PayEvents`` queues and ``WebhookSender.handle`` reads)."""

    url: str = Field(pattern=r"^https?://")
    event: dict[str, Any]
    attempt: int = Field(default=0, ge=0)
    due: float = 0


class PayEvents:
    """Implements ``charges.ChargeEvents`` on the kit's transactional outbox (``bianjie.kit.outbox``).

    A final state has two intents: the hospital's webhook (sink ``webhooks``, the webhook queue; only when
    the charge has a ``notify_url``) and the domain event for other services (``pay.charge.succeeded`` ...,
    ``bianjie.contracts.pay``). The caller commits their rows in the SAME transaction as the transition
    (``puts``) and calls ``dispatch`` after the commit; pay's relay schedule sends whatever a crash or a
    queue outage left. Both are at least once, each copy with its id.
    """

    def __init__(
        self,
        outbox: Outbox,
        view: Callable[[Charge], dict[str, Any]],
        background: Callable[[Callable[[], Any]], Any] | None = None,
        *,
        relay_only: bool = False,
    ):
        self.outbox = outbox
        # relay_only (PAY_DISPATCH=relay): nothing is sent on the request's behalf; the committed intents
        # are due at once and the relay (or an event pump reading the outbox) sends them
        self.relay_only = relay_only
        if relay_only:
            outbox.grace = 0.0
        self._view = view
        # where ``dispatch`` runs: inline (Lambda, whose environment freezes once the answer is sent),
        # or handed to a long-lived process's pool (on premises), so the sends to the topic and the
        # webhook queue are not on the charge's path. The intents are committed either way: if the
        # process dies before they are sent, the relay schedule sends them.
        self._background = background

    def charge_final(self, charge: Charge, now: float) -> list[Intent]:
        succeeded = charge.status is ChargeStatus.SUCCEEDED
        kind = "charge.succeeded" if succeeded else "charge.failed"
        ident = event_id(charge.charge_id, kind)
        ids = {
            "charge_id": charge.charge_id,
            "hospital": charge.app_id,
            "order_no": charge.order_no,
            "visit_id": charge.visit_id,
            "amount_fen": charge.amount,
        }
        event: PayChargeSucceededV1 | PayChargeFailedV1
        if succeeded:
            won = charge.succeeded_attempt
            event = PayChargeSucceededV1(
                **ids,
                channel=won.channel.value if won else "unknown",
                paid_at=now_iso(won.success_time if won and won.success_time else now),
            )
        else:
            event = PayChargeFailedV1(**ids, failure_code=charge.failure_code)
        intents = [self.outbox.event(event, event_id=ident, subject=charge.charge_id)]
        return intents + self._webhook(ident, kind, charge.notify_url, self._view(charge), now)

    def refund_final(self, refund: Refund, charge: Charge, now: float) -> list[Intent]:
        kind = f"refund.{refund.status.value.lower()}"
        ident = event_id(refund.out_refund_no, kind)
        data = {
            "charge_id": charge.charge_id,
            "refund_no": refund.refund_no,
            "amount": refund.amount,
            "status": refund.status.value,
        }
        intents = []
        if refund.status in (RefundStatus.SUCCEEDED, RefundStatus.FAILED):
            ids = {
                "charge_id": charge.charge_id,
                "hospital": charge.app_id,
                "order_no": charge.order_no,
                "visit_id": charge.visit_id,
                "amount_fen": charge.amount,
                "refund_no": refund.refund_no,
                "refund_fen": refund.amount,
            }
            event = (
                PayRefundSucceededV1(**ids)
                if refund.status is RefundStatus.SUCCEEDED
                else PayRefundFailedV1(**ids, failure_code=refund.failure_code)
            )
            intents.append(self.outbox.event(event, event_id=ident, subject=charge.charge_id))
        return intents + self._webhook(ident, kind, charge.notify_url, data, now)

    def _webhook(self, ident: str, kind: str, url: str | None, data: dict[str, Any], now: float) -> list[Intent]:
        if not url:
            return []
        event = {"id": ident, "type": kind, "created": int(now), "data": data}
        return [self.outbox.message(WEBHOOKS, ident, {"url": url, "event": event, "attempt": 0, "due": 0})]

    def puts(self, intents: Sequence[Intent]) -> list[Put]:
        return self.outbox.puts(intents)

    def dispatch(self, intents: Sequence[Intent]) -> int:
        if not intents or self.relay_only:
            return 0
        if self._background is not None:
            self._background(lambda: self.outbox.dispatch(intents))
            return 0
        return self.outbox.dispatch(intents)

    def relay(self, limit: int = 100) -> dict[str, int]:
        return self.outbox.relay(limit)


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
