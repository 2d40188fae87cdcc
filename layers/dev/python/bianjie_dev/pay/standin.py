"""STAND-IN payment channels for the local stack and tests. Not a real bank: nothing here moves money.

``StandinChannel`` plays one channel (UnionPay / 惠民就医 / 医保信用) on the server side of the protocol
``bianjie.pay.channels.ProtocolChannel`` speaks: it verifies our SM2 request signature and merchant,
keeps its own ledger (agreements, trades, refunds) in ``PAY_STANDIN_TABLE``, answers signed with its
own key, emits signed, SM4-GCM-sealed callbacks through an outbox (a queue that the stand-in notifier
function drains, with retries and duplicates), and serves a daily bill with its SM3 hash.

Behaviour is chosen by the last four digits of the account the patient signs with (like card-network
test numbers), so a demo or test picks a scenario without configuration:

    ....0051  charge declined, INSUFFICIENT_FUNDS        ....0005  declined, ACCOUNT_FROZEN
    ....0091  charged, but the answer is lost (timeout)  ....0092  request lost (timeout), nothing charged
    ....0099  charged, answer after 3 s (over budget)    ....0070  PROCESSING; succeeds ~2 s later (callback)
    ....0071  PROCESSING; declined ~2 s later (callback) ....0013  signing refused (ACCOUNT_INVALID)
    anything else: charged at once.

``PAY_STANDIN_DELAY_MS`` adds latency to every answer; ``PAY_STANDIN_DUPLICATE_RATE`` (0..1) is the
chance a callback is delivered twice.
"""

from __future__ import annotations

import base64
import random
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bianjie.kit.crypto import Sm2PrivateKey, Sm2PublicKey, sm2_generate_key, sm3
from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore, KeyCond, Put
from bianjie.kit.errors import AppError
from bianjie.kit.timefmt import beijing_day
from bianjie.pay import wire
from bianjie.pay.channels import BillLine, ChannelUnknown, WireResponse, format_bill
from bianjie.pay.models import CALLBACK_SLUGS, Channel

BY_DAY = "by_day"
TRADE_STATES_FINAL = {"SUCCESS", "FAIL", "CLOSED"}
ASYNC_DELAY_SECONDS = 2  # PAY_STANDIN_ASYNC_SECONDS overrides (the benchmark holds trades pending longer)
SLOW_SECONDS = 3.0


def behaviour(account: str) -> str:
    return {
        "0051": "decline:INSUFFICIENT_FUNDS",
        "0005": "decline:ACCOUNT_FROZEN",
        "0091": "lost_answer",
        "0092": "lost_request",
        "0099": "slow",
        "0070": "async_success",
        "0071": "async_decline:INSUFFICIENT_FUNDS",
    }.get(account[-4:], "success")


@dataclass
class StandinIdentity:
    channel: Channel
    merchant_id: str
    serial: str
    private_key: Sm2PrivateKey = field(repr=False)
    merchant_keys: dict[str, Sm2PublicKey]  # our request-signing keys, by serial
    api_key: bytes = field(repr=False)


class NotifyOutbox(Protocol):
    def send(self, message: dict[str, Any], delay_seconds: int = 0) -> None: ...


class _Reject(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class StandinChannel:
    def __init__(
        self,
        identity: StandinIdentity,
        store: DocumentStore,
        table: str,
        outbox: NotifyOutbox,
        clock: Callable[[], float] = time.time,
        delay_ms: int = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.identity = identity
        self.channel = identity.channel
        self._store = store
        self._table = table
        self._outbox = outbox
        self._clock = clock
        self._delay = delay_ms / 1000
        self._sleep = sleep
        self.async_delay = ASYNC_DELAY_SECONDS

    # ---------------------------------------------------------------- protocol server

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> WireResponse:
        if self._delay:
            self._sleep(self._delay)
        try:
            wire.verify_headers(headers, ("POST", path), body, self.identity.merchant_keys.get, now=self._clock())
            request = wire.loads_object(body, code="REQUEST_MALFORMED")
            if request.get("merchant_id") != self.identity.merchant_id:
                raise _Reject(403, "MERCHANT_MISMATCH", "merchant_id is not ours")
            op = path.removeprefix("/v1/")
            handler = {
                "agreements/sign": self._sign,
                "agreements/terminate": self._terminate,
                "trades/charge": self._charge,
                "trades/query": self._query,
                "trades/close": self._close,
                "refunds/create": self._refund,
                "refunds/query": self._query_refund,
                "bills/download": self._bill,
            }.get(op)
            if handler is None:
                raise _Reject(404, "NOT_FOUND", f"no operation {op}")
            status, answer = 200, handler(request)
        except _Reject as exc:
            status, answer = exc.status, {"code": exc.code, "message": exc.message}
        except AppError as exc:  # signature / parsing failures from wire
            status, answer = exc.status, {"code": exc.code, "message": exc.message}
        return self._answer(status, answer)

    def _answer(self, status: int, answer: dict[str, Any]) -> WireResponse:
        body = wire.dumps(answer)
        headers = wire.sign_headers(
            self.identity.private_key, self.identity.serial, (body,), timestamp=int(self._clock())
        )
        return WireResponse(status, headers, body)

    # ---------------------------------------------------------------- agreements

    def _agreement(self, agreement_no: str) -> dict[str, Any]:
        item = self._store.get(self._table, {"pk": f"AGR#{self.channel.value}#{agreement_no}", "sk": "AGR"})
        if item is None:
            raise _Reject(404, "AGREEMENT_NOT_FOUND", "unknown agreement")
        return item

    def _sign(self, req: dict[str, Any]) -> dict[str, Any]:
        account = str(req.get("account") or "")
        if not (6 <= len(account) <= 32 and account.isalnum()) or account.endswith("0013"):
            raise _Reject(400, "ACCOUNT_INVALID", "the account cannot be signed")
        agreement_no = f"{self.channel.value[:2]}{int(self._clock())}{secrets.token_hex(5).upper()}"
        item = {
            "pk": f"AGR#{self.channel.value}#{agreement_no}",
            "sk": "AGR",
            "agreement_no": agreement_no,
            "account": account,
            "user_ref": req.get("user_ref"),
            "status": "ACTIVE",
            "signed_at": self._clock(),
        }
        self._store.put(self._table, item, condition=Cond.absent())
        return {"agreement_no": agreement_no, "status": "ACTIVE"}

    def _terminate(self, req: dict[str, Any]) -> dict[str, Any]:
        item = self._agreement(str(req.get("agreement_no")))
        if item["status"] != "ACTIVE":
            raise _Reject(409, "AGREEMENT_TERMINATED", "already terminated")
        self._store.put(self._table, {**item, "status": "TERMINATED", "terminated_at": self._clock()})
        return {"agreement_no": item["agreement_no"], "status": "TERMINATED"}

    def bank_terminate(self, agreement_no: str) -> None:
        """The bank ends an agreement on its own (银联主动解约): ledger, then a callback to the merchant."""
        item = self._agreement(agreement_no)
        self._store.put(self._table, {**item, "status": "TERMINATED", "terminated_at": self._clock()})
        self.notify("AGREEMENT.TERMINATED", {"agreement_no": agreement_no, "terminated_time": self._clock()})

    # ---------------------------------------------------------------- trades

    def _trade_key(self, out_trade_no: str) -> dict[str, str]:
        return {"pk": f"TRADE#{self.channel.value}#{out_trade_no}", "sk": "TRADE"}

    def _trade(self, out_trade_no: str) -> dict[str, Any] | None:
        return self._store.get(self._table, self._trade_key(out_trade_no))

    def _charge(self, req: dict[str, Any]) -> dict[str, Any]:
        out_trade_no = str(req.get("out_trade_no") or "")
        amount = req.get("amount")
        if not out_trade_no or not isinstance(amount, int) or amount <= 0:
            raise _Reject(400, "PARAM_ERROR", "out_trade_no and a positive integer amount are required")
        # out_trade_no is our idempotency key: never debit twice. The trade's conditional create below
        # enforces it; a refusal of the agreement first looks for the trade a retry may already have
        # made (one read on the first try instead of a read before every charge)
        try:
            agreement = self._agreement(str(req.get("agreement_no")))
            if agreement["status"] != "ACTIVE":
                raise _Reject(409, "AGREEMENT_TERMINATED", "the agreement is terminated")
        except _Reject:
            existing = self._trade(out_trade_no)
            if existing is not None:
                return _trade_view(existing)
            raise
        mode = behaviour(agreement["account"])
        if mode == "lost_request":
            raise ChannelUnknown("timeout (stand-in: request lost)")
        now = self._clock()
        trade: dict[str, Any] = {
            **self._trade_key(out_trade_no),
            "out_trade_no": out_trade_no,
            "agreement_no": agreement["agreement_no"],
            "amount": amount,
            "channel_trade_no": f"{self.channel.value[:2]}T{int(now * 1000)}{secrets.token_hex(4)}",
            "created_at": now,
            "refunded": 0,
        }
        if mode.startswith("decline:"):
            trade.update(trade_state="FAIL", fail_code=mode.split(":", 1)[1])
        elif mode.startswith("async_"):
            trade.update(trade_state="PROCESSING", settle=mode)
        else:
            trade.update(trade_state="SUCCESS", success_time=now, **self._bill_keys("T", out_trade_no, now))
        try:
            self._store.put(self._table, trade, condition=Cond.absent())
        except ConditionFailed:
            return _trade_view(self._trade(out_trade_no) or trade)
        if trade["trade_state"] == "PROCESSING":
            self._outbox.send(
                {"kind": "settle", "channel": self.channel.value, "out_trade_no": out_trade_no}, self.async_delay
            )
        elif trade["trade_state"] == "SUCCESS":
            self.notify("TRANSACTION.SUCCESS", _trade_resource(trade))
        if mode == "lost_answer":
            raise ChannelUnknown("timeout (stand-in: answer lost)")
        if mode == "slow":
            self._sleep(SLOW_SECONDS)
        return _trade_view(trade)

    def settle(self, out_trade_no: str) -> None:
        """Finish an asynchronous trade (the notifier calls this when its delay is over)."""
        trade = self._trade(out_trade_no)
        if trade is None or trade["trade_state"] != "PROCESSING":
            return
        now = self._clock()
        if trade.get("settle") == "async_success":
            new = {**trade, "trade_state": "SUCCESS", "success_time": now, **self._bill_keys("T", out_trade_no, now)}
            event = "TRANSACTION.SUCCESS"
        else:
            new = {**trade, "trade_state": "FAIL", "fail_code": "INSUFFICIENT_FUNDS"}
            event = "TRANSACTION.FAIL"
        try:
            self._store.put(self._table, new, condition=Cond.eq("trade_state", "PROCESSING"))
        except ConditionFailed:
            return
        self.notify(event, _trade_resource(new))

    def _query(self, req: dict[str, Any]) -> dict[str, Any]:
        trade = self._trade(str(req.get("out_trade_no") or ""))
        if trade is None:
            return {"out_trade_no": req.get("out_trade_no"), "trade_state": "NOTFOUND"}
        return _trade_view(trade)

    def _close(self, req: dict[str, Any]) -> dict[str, Any]:
        out_trade_no = str(req.get("out_trade_no") or "")
        closed = {**self._trade_key(out_trade_no), "out_trade_no": out_trade_no, "trade_state": "CLOSED", "amount": 0}
        try:
            self._store.put(self._table, closed, condition=Cond.absent())
            return _trade_view(closed)
        except ConditionFailed:
            trade = self._trade(out_trade_no) or closed
            if trade["trade_state"] == "PROCESSING":
                raise _Reject(409, "TRADE_PROCESSING", "the trade is being processed; query later") from None
            return _trade_view(trade)

    # ---------------------------------------------------------------- refunds

    def _refund_key(self, out_refund_no: str) -> dict[str, str]:
        return {"pk": f"REFUND#{self.channel.value}#{out_refund_no}", "sk": "REFUND"}

    def _refund(self, req: dict[str, Any]) -> dict[str, Any]:
        out_refund_no = str(req.get("out_refund_no") or "")
        amount = req.get("amount")
        existing = self._store.get(self._table, self._refund_key(out_refund_no))
        if existing is not None:
            return _refund_view(existing)
        trade = self._trade(str(req.get("out_trade_no") or ""))
        if trade is None or trade["trade_state"] != "SUCCESS":
            raise _Reject(404, "TRADE_NOT_REFUNDABLE", "no successful trade with this number")
        if not isinstance(amount, int) or amount <= 0 or trade["refunded"] + amount > trade["amount"]:
            raise _Reject(400, "REFUND_AMOUNT_INVALID", "refunds would exceed the trade")
        now = self._clock()
        refund = {
            **self._refund_key(out_refund_no),
            "out_refund_no": out_refund_no,
            "out_trade_no": trade["out_trade_no"],
            "amount": amount,
            "refund_state": "SUCCESS",
            "channel_refund_no": f"{self.channel.value[:2]}R{int(now * 1000)}{secrets.token_hex(4)}",
            "success_time": now,
            **self._bill_keys("R", out_refund_no, now),
        }
        self._store.transact(
            [
                Put(self._table, refund, Cond.absent()),
                Put(
                    self._table,
                    {**trade, "refunded": trade["refunded"] + amount},
                    Cond.eq("refunded", trade["refunded"]),
                ),
            ]
        )
        self.notify("REFUND.SUCCESS", _refund_resource(refund))
        return _refund_view(refund)

    def _query_refund(self, req: dict[str, Any]) -> dict[str, Any]:
        item = self._store.get(self._table, self._refund_key(str(req.get("out_refund_no") or "")))
        if item is None:
            return {"out_refund_no": req.get("out_refund_no"), "refund_state": "NOTFOUND"}
        return _refund_view(item)

    # ---------------------------------------------------------------- bills

    def _bill_keys(self, kind: str, out_no: str, ts: float) -> dict[str, str]:
        return {"bill_pk": f"{self.channel.value}#{beijing_day(ts)}", "bill_sk": f"{kind}#{out_no}"}

    def bill_lines(self, day: str) -> list[BillLine]:
        lines: list[BillLine] = []
        cursor = None
        while True:
            page = self._store.query(
                self._table,
                KeyCond.of("bill_pk", f"{self.channel.value}#{day}"),
                index=BY_DAY,
                limit=500,
                cursor=cursor,
            )
            for item in page.items:
                if item["sk"] == "TRADE":
                    lines.append(
                        BillLine(
                            "TRADE",
                            item["out_trade_no"],
                            item["channel_trade_no"],
                            item["amount"],
                            item["success_time"],
                        )
                    )
                else:
                    lines.append(
                        BillLine(
                            "REFUND",
                            item["out_refund_no"],
                            item["channel_refund_no"],
                            item["amount"],
                            item["success_time"],
                        )
                    )
            cursor = page.cursor
            if cursor is None:
                return lines

    def _bill(self, req: dict[str, Any]) -> dict[str, Any]:
        content = format_bill(self.bill_lines(str(req.get("bill_date"))))
        return {"hash_type": "SM3", "hash_value": sm3(content).hex(), "content": base64.b64encode(content).decode()}

    # ---------------------------------------------------------------- operator levers for demos and tests

    def tamper_amount(self, out_trade_no: str, amount: int) -> None:
        """Make the channel's ledger disagree with ours (a crafted mismatch for reconciliation)."""
        trade = self._trade(out_trade_no)
        if trade is None:
            raise KeyError(out_trade_no)
        self._store.put(self._table, {**trade, "amount": amount})

    def add_phantom(self, amount: int, ts: float | None = None) -> str:
        """A successful trade the channel has and we never asked for (missing on our side)."""
        now = self._clock() if ts is None else ts
        out_trade_no = f"phantom{secrets.token_hex(6)}-1"
        self._store.put(
            self._table,
            {
                **self._trade_key(out_trade_no),
                "out_trade_no": out_trade_no,
                "agreement_no": "",
                "amount": amount,
                "trade_state": "SUCCESS",
                "channel_trade_no": f"{self.channel.value[:2]}T{secrets.token_hex(6)}",
                "success_time": now,
                "refunded": 0,
                **self._bill_keys("T", out_trade_no, now),
            },
        )
        return out_trade_no

    def forget(self, out_trade_no: str) -> None:
        """Drop a trade from the bill (missing on their side)."""
        trade = self._trade(out_trade_no)
        if trade is None:
            raise KeyError(out_trade_no)
        self._store.put(self._table, {k: v for k, v in trade.items() if k not in ("bill_pk", "bill_sk")})

    # ---------------------------------------------------------------- callbacks

    def notify(self, event_type: str, resource: dict[str, Any], notify_id: str | None = None) -> None:
        self._outbox.send(
            {
                "kind": "notify",
                "channel": self.channel.value,
                "notify_id": notify_id or f"N{secrets.token_hex(12)}",
                "event_type": event_type,
                "resource": {"merchant_id": self.identity.merchant_id, **resource},
            }
        )

    def notification(
        self, notify_id: str, event_type: str, resource: dict[str, Any], ts: int | None = None
    ) -> tuple[dict[str, str], bytes]:
        """The HTTP headers and body of one callback, signed and sealed as the protocol says."""
        created = self._clock() if ts is None else ts
        body = wire.dumps(
            {
                "id": notify_id,
                "create_time": created,
                "event_type": event_type,
                "resource_type": "encrypt-resource",
                "resource": wire.seal_resource(
                    self.identity.api_key, resource, associated_data=event_type.split(".")[0].lower()
                ),
            }
        )
        headers = wire.sign_headers(self.identity.private_key, self.identity.serial, (body,), timestamp=int(created))
        headers["Content-Type"] = "application/json"
        return headers, body

    def callback_path(self) -> str:
        return f"/pay/callbacks/{CALLBACK_SLUGS[self.channel]}"


def _trade_view(trade: dict[str, Any]) -> dict[str, Any]:
    return {
        "out_trade_no": trade["out_trade_no"],
        "trade_state": trade["trade_state"],
        "channel_trade_no": trade.get("channel_trade_no"),
        "amount": trade.get("amount"),
        "fail_code": trade.get("fail_code"),
        "success_time": trade.get("success_time"),
    }


def _trade_resource(trade: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _trade_view(trade).items() if v is not None}


def _refund_view(refund: dict[str, Any]) -> dict[str, Any]:
    return {
        "out_refund_no": refund["out_refund_no"],
        "out_trade_no": refund.get("out_trade_no"),
        "refund_state": refund["refund_state"],
        "channel_refund_no": refund.get("channel_refund_no"),
        "amount": refund.get("amount"),
        "success_time": refund.get("success_time"),
    }


def _refund_resource(refund: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in _refund_view(refund).items() if v is not None}


# ---------------------------------------------------------------- delivering callbacks (the notifier)


def deliver(
    standins: dict[Channel, StandinChannel],
    message: dict[str, Any],
    post: Callable[[str, dict[str, str], bytes], int],
    duplicate_rate: float = 0.0,
    rng: random.Random | None = None,
) -> None:
    """One outbox message: settle an asynchronous trade, or POST a callback (sometimes twice).

    Raises on a non-2xx answer so the queue redelivers it later (the channel's retry schedule)."""
    standin = standins[Channel(message["channel"])]
    if message.get("kind") == "settle":
        standin.settle(message["out_trade_no"])
        return
    headers, body = standin.notification(message["notify_id"], message["event_type"], message["resource"])
    copies = 2 if (rng or random).random() < duplicate_rate else 1
    for _ in range(copies):
        status = post(standin.callback_path(), headers, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"callback answered {status}")


# ---------------------------------------------------------------- identities for a stand-in deployment


def new_identity_pair(channel: Channel) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fresh keys for both sides of a stand-in channel: (merchant side, channel side), as plain values."""
    ours = sm2_generate_key()
    theirs = sm2_generate_key()
    api_key = secrets.token_bytes(16)
    merchant_id = f"SH{secrets.randbelow(10**10):010d}"
    merchant = {
        "channel": channel.value,
        "merchant_id": merchant_id,
        "our_serial": "1",
        "our_private_key": ours.to_hex(),
        "channel_keys": {"1": theirs.public_key.to_hex()},
        "api_key": api_key.hex(),
    }
    channel_side = {
        "channel": channel.value,
        "merchant_id": merchant_id,
        "serial": "1",
        "private_key": theirs.to_hex(),
        "merchant_keys": {"1": ours.public_key.to_hex()},
        "api_key": api_key.hex(),
    }
    return merchant, channel_side


def identity_from(values: dict[str, Any]) -> StandinIdentity:
    return StandinIdentity(
        channel=Channel(values["channel"]),
        merchant_id=values["merchant_id"],
        serial=values["serial"],
        private_key=Sm2PrivateKey.from_hex(values["private_key"]),
        merchant_keys={s: Sm2PublicKey.from_hex(k) for s, k in values["merchant_keys"].items()},
        api_key=bytes.fromhex(values["api_key"]),
    )
