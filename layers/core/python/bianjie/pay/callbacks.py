"""Channel callbacks (支付/退款/解约通知): verify, decrypt, check against our record, dedupe, apply.

Order of checks (cheap and unauthenticated things never touch state):
1. signature headers over the RAW body and the timestamp window (``wire.verify_headers``);
2. parse, decrypt the SM4-GCM resource with the channel's API key;
3. merchant, order and amount must match our own record (a "假通知" with a valid key but wrong
   facts is refused with a code, and logged);
4. the notification id goes into the inbox (conditional put) in the SAME transaction as the
   forward-only change it causes; a second delivery finds its id there and changes nothing.
Duplicates and reordering are normal; both are acknowledged with 200 so the channel stops resending.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from bianjie.kit.documents.port import ConditionFailed, TransactionCanceled
from bianjie.kit.errors import BadRequest, NotFound
from bianjie.kit.logging import get_logger
from bianjie.pay import wire
from bianjie.pay.agreements import AgreementService
from bianjie.pay.channels import ChannelConfig, RefundAnswer, TradeAnswer, TradeState
from bianjie.pay.charges import ChargeService
from bianjie.pay.models import Channel
from bianjie.pay.states import charge_id_of
from bianjie.pay.store import PayStore, inbox_item

log = get_logger("bianjie.pay.callbacks")

TRADE_EVENTS = {"TRANSACTION.SUCCESS": TradeState.SUCCESS, "TRANSACTION.FAIL": TradeState.FAIL}
REFUND_EVENTS = {"REFUND.SUCCESS": TradeState.SUCCESS, "REFUND.FAIL": TradeState.FAIL}
AGREEMENT_EVENTS = {"AGREEMENT.TERMINATED"}


def _mismatch(what: str) -> BadRequest:
    return BadRequest(f"the notification's {what} does not match our record", code=f"CALLBACK_{what.upper()}_MISMATCH")


class CallbackService:
    def __init__(
        self,
        store: PayStore,
        config_for: Callable[[Channel], ChannelConfig | None],
        charges: ChargeService,
        agreements: AgreementService,
        clock: Callable[[], float] = time.time,
        window: int = wire.DEFAULT_WINDOW,
    ) -> None:
        self._store = store
        self._config_for = config_for
        self._charges = charges
        self._agreements = agreements
        self._clock = clock
        self._window = window

    def handle(self, channel: Channel, headers: Any, raw_body: bytes) -> dict[str, Any]:
        config = self._config_for(channel)
        if config is None:
            raise NotFound(f"channel {channel.value} is not configured", code="CHANNEL_NOT_CONFIGURED")
        wire.verify_headers(headers, (), raw_body, config.channel_key, now=self._clock(), window=self._window)
        note = wire.loads_object(raw_body)
        notify_id, event_type = note.get("id"), note.get("event_type")
        if not isinstance(notify_id, str) or not notify_id or len(notify_id) > 128 or not isinstance(event_type, str):
            raise BadRequest("id and event_type are required", code="CALLBACK_MALFORMED")
        resource = wire.open_resource(config.api_key, note.get("resource") or {})
        if str(resource.get("merchant_id")) != config.merchant_id:
            raise _mismatch("merchant")
        record = inbox_item(channel, notify_id, self._clock(), {"event_type": event_type, "channel": channel.value})
        if self._store.documents.get(self._store.table, {"pk": record["pk"], "sk": record["sk"]}) is not None:
            # fast path for the common resend: a read instead of a failed transaction; the inbox put's
            # condition below still decides races between concurrent deliveries
            return {"code": "SUCCESS", "duplicate": True}
        inbox = self._store.inbox_put(record)
        try:
            if event_type in TRADE_EVENTS:
                outcome = self._trade(channel, event_type, resource, inbox)
            elif event_type in REFUND_EVENTS:
                outcome = self._refund(channel, event_type, resource, inbox)
            elif event_type in AGREEMENT_EVENTS:
                # the inbox record commits with the termination, never before it
                changed = self._agreements.channel_terminated(
                    channel, str(resource.get("agreement_no") or ""), extra=[inbox]
                )
                outcome = {"changed": changed}
            else:
                raise BadRequest(f"unknown event_type {event_type}", code="CALLBACK_EVENT_UNKNOWN")
        except (ConditionFailed, TransactionCanceled):
            return {"code": "SUCCESS", "duplicate": True}
        return {"code": "SUCCESS", "duplicate": False, **outcome}

    def _trade(self, channel: Channel, event_type: str, resource: dict[str, Any], inbox: Any) -> dict[str, Any]:
        trade_no = str(resource.get("out_trade_no") or "")
        charge = self._store.charge(charge_id_of(trade_no)) if trade_no else None
        attempt = charge.attempt_by_trade(trade_no) if charge else None
        if charge is None or attempt is None:
            raise NotFound("no such order", code="CALLBACK_ORDER_UNKNOWN")
        if attempt.channel is not channel:
            raise _mismatch("channel")
        if resource.get("amount") != charge.amount:
            log.warning("callback amount mismatch", extra={"out_trade_no": trade_no, "channel": channel.value})
            raise _mismatch("amount")
        answer = TradeAnswer(
            state=TRADE_EVENTS[event_type],
            channel_trade_no=resource.get("channel_trade_no"),
            amount=resource.get("amount"),
            fail_code=resource.get("fail_code"),
            success_time=resource.get("success_time"),
        )
        # a decline opens the next attempt unsent: the sweeper sends it, so the channel gets its ack now
        after = self._charges.apply(charge.charge_id, trade_no, answer, "callback", extra=[inbox], called=False)
        return {"charge_id": after.charge_id, "status": after.status.value}

    def _refund(self, channel: Channel, event_type: str, resource: dict[str, Any], inbox: Any) -> dict[str, Any]:
        out_refund_no = str(resource.get("out_refund_no") or "")
        charge_id = out_refund_no.split("-r", 1)[0]
        refund = next((r for r in self._store.refunds(charge_id) if r.out_refund_no == out_refund_no), None)
        if refund is None:
            raise NotFound("no such refund", code="CALLBACK_ORDER_UNKNOWN")
        if refund.channel is not channel:
            raise _mismatch("channel")
        if resource.get("amount") != refund.amount:
            raise _mismatch("amount")
        answer = RefundAnswer(
            state=REFUND_EVENTS[event_type],
            channel_refund_no=resource.get("channel_refund_no"),
            fail_code=resource.get("fail_code"),
            success_time=resource.get("success_time"),
        )
        after = self._charges.apply_refund(charge_id, refund.refund_no, answer, extra=[inbox])
        return {"charge_id": charge_id, "refund_no": refund.refund_no, "status": after.status.value}
