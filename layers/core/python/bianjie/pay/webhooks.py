"""Signed webhooks to the hospital when a charge or refund reaches a final state.

The hospital gave a ``notify_url`` with the charge. We POST::

    Bianjie-Timestamp / Bianjie-Nonce / Bianjie-Serial / Bianjie-Signature-Type: SM2-WITH-SM3
    Bianjie-Signature: base64(SM2 over "<timestamp>\\n<nonce>\\n<raw body>\\n") with our webhook key
    {"id": "<event id>", "type": "charge.succeeded" | "charge.failed" | "refund.succeeded" | "refund.failed",
     "created": <unix seconds>, "data": {...the same object GET /pay/charges/{id} returns...}}

The public key is served by ``GET /pay/webhook-key``. Any 2xx acknowledges. Otherwise we retry after
``RETRY_SCHEDULE`` seconds (about 11 hours in all), then the message goes to the dead-letter queue,
where an operator can inspect and redrive it. Hospitals must dedupe by ``id``.
"""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, Protocol

from bianjie.kit.crypto import Sm2PrivateKey
from bianjie.kit.logging import get_logger
from bianjie.pay import wire
from bianjie.pay.models import Charge, ChargeStatus, Refund

log = get_logger("bianjie.pay.webhooks")

RETRY_SCHEDULE = (15, 60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600)
MAX_QUEUE_DELAY = 900  # SQS DelaySeconds limit; longer waits are re-queued until due


class Queue(Protocol):
    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None: ...


class WebhookOutbox:
    """Implements ``charges.ChargeEvents``: queues one webhook per final state."""

    def __init__(self, queue: Queue, view: Callable[[Charge], dict[str, Any]], clock: Callable[[], float] = time.time):
        self._queue = queue
        self._view = view
        self._clock = clock

    def charge_final(self, charge: Charge) -> None:
        kind = "charge.succeeded" if charge.status is ChargeStatus.SUCCEEDED else "charge.failed"
        self._queue_event(kind, charge.notify_url, self._view(charge))

    def refund_final(self, refund: Refund, charge: Charge) -> None:
        kind = f"refund.{refund.status.value.lower()}"
        data = {
            "charge_id": charge.charge_id,
            "refund_no": refund.refund_no,
            "amount": refund.amount,
            "status": refund.status.value,
        }
        self._queue_event(kind, charge.notify_url, data)

    def _queue_event(self, kind: str, url: str | None, data: dict[str, Any]) -> None:
        if not url:
            return
        event = {"id": f"ev{secrets.token_hex(12)}", "type": kind, "created": int(self._clock()), "data": data}
        self._queue.send({"url": url, "event": event, "attempt": 0, "due": 0})


Poster = Callable[[str, dict[str, str], bytes, float], int]


def http_post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> int:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, urllib.error.URLError):
        return 0


class WebhookSender:
    def __init__(
        self,
        key: Sm2PrivateKey,
        serial: str,
        queue: Queue,
        dead_letters: Queue,
        post: Poster = http_post,
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
