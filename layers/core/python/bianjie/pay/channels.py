"""The channel port, and the adapter that speaks the channel protocol over a transport.

Every channel (UnionPay agreement debit, 惠民就医, 医保信用) is reached through ``ChannelPort``. The one
adapter here, ``ProtocolChannel``, implements the agreement-debit protocol modelled on UnionPay 无感支付
(签约, 解约, 代扣, 代扣查询, 关单, 退款, 退款查询, 对账单) with WeChat-Pay-v3-style SM2 signatures
(``bianjie.pay.wire``). A transport carries its bytes: HTTP to a real channel, or in-process to the
stand-in (``bianjie_dev.pay.standin``), which verifies and answers exactly as the protocol says.

Outcome rules the charge algorithm relies on:
- ``ChannelUnknown`` (timeout, connection reset, an answer that does not verify) means the outcome is
  unknown: the caller must query before anything else, never retry the charge blindly;
- ``charge`` with an ``out_trade_no`` the channel already knows answers that trade's state instead of
  debiting again (out_trade_no is the channel-side idempotency key).
"""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from bianjie.kit.crypto import Sm2PrivateKey, Sm2PublicKey, sm3
from bianjie.pay import wire
from bianjie.pay.models import Channel


class TradeState(StrEnum):
    SUCCESS = "SUCCESS"
    FAIL = "FAIL"  # declined (definite)
    PROCESSING = "PROCESSING"
    NOTFOUND = "NOTFOUND"
    CLOSED = "CLOSED"


class ChannelUnknown(Exception):
    """No trustworthy answer (timeout, network error, unverifiable answer): the outcome is unknown."""


class ChannelRejected(Exception):
    """The channel refused the request itself (not a trade decline): bad parameters, unknown agreement."""

    def __init__(self, code: str, message: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class TradeAnswer:
    state: TradeState
    channel_trade_no: str | None = None
    amount: int | None = None
    fail_code: str | None = None
    success_time: float | None = None


@dataclass(frozen=True)
class RefundAnswer:
    state: TradeState  # SUCCESS | FAIL | PROCESSING | NOTFOUND
    channel_refund_no: str | None = None
    fail_code: str | None = None
    success_time: float | None = None


@dataclass(frozen=True)
class SignAnswer:
    agreement_no: str


@dataclass(frozen=True)
class BillLine:
    kind: str  # "TRADE" | "REFUND"
    out_no: str  # out_trade_no or out_refund_no
    channel_no: str
    amount: int
    time: float


@dataclass(frozen=True)
class Bill:
    channel: Channel
    day: str
    lines: list[BillLine]
    hash_ok: bool


class ChannelPort(Protocol):
    channel: Channel
    merchant_id: str

    def sign_agreement(self, account: str, patient_ref: str) -> SignAnswer: ...
    def terminate_agreement(self, agreement_no: str) -> None: ...
    def charge(self, out_trade_no: str, agreement_no: str, amount: int, description: str) -> TradeAnswer: ...
    def query_trade(self, out_trade_no: str) -> TradeAnswer: ...
    def close_trade(self, out_trade_no: str) -> TradeAnswer: ...
    def refund(self, out_refund_no: str, out_trade_no: str, amount: int) -> RefundAnswer: ...
    def query_refund(self, out_refund_no: str) -> RefundAnswer: ...
    def download_bill(self, day: str) -> Bill: ...


# ---------------------------------------------------------------- configuration


@dataclass
class ChannelConfig:
    """What we hold for one channel: our merchant id and key, the channel's key, the API key for resources."""

    channel: Channel
    merchant_id: str
    mode: str  # "standin" | "http"
    base_url: str | None
    our_serial: str
    our_private_key: Sm2PrivateKey = field(repr=False)
    channel_keys: dict[str, Sm2PublicKey]  # serial -> public key (several while the channel rotates)
    api_key: bytes = field(repr=False)
    timeout: float = 2.0

    def channel_key(self, serial: str) -> Sm2PublicKey | None:
        return self.channel_keys.get(serial)


# ---------------------------------------------------------------- transports


@dataclass(frozen=True)
class WireResponse:
    status: int
    headers: dict[str, str]
    body: bytes


class Transport(Protocol):
    def send(self, path: str, headers: dict[str, str], body: bytes, timeout: float) -> WireResponse: ...


class HttpTransport:
    """HTTPS to a channel's gateway."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")

    def send(self, path: str, headers: dict[str, str], body: bytes, timeout: float) -> WireResponse:
        request = urllib.request.Request(
            self._base + path, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return WireResponse(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as exc:
            return WireResponse(exc.code, dict(exc.headers.items()), exc.read())
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            raise ChannelUnknown(f"{type(exc).__name__}") from exc


class InProcessTransport:
    """Hands the request bytes to a stand-in's ``handle`` in this process. An answer later than the
    timeout is discarded as a real client would (the stand-in may have acted: that is the point)."""

    def __init__(self, handler: Callable[[str, dict[str, str], bytes], WireResponse]) -> None:
        self._handler = handler

    def send(self, path: str, headers: dict[str, str], body: bytes, timeout: float) -> WireResponse:
        started = time.monotonic()
        response = self._handler(path, headers, body)
        if time.monotonic() - started > timeout:
            raise ChannelUnknown("timeout")
        return response


# ---------------------------------------------------------------- the protocol adapter


class ProtocolChannel:
    def __init__(self, config: ChannelConfig, transport: Transport, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.channel = config.channel
        self.merchant_id = config.merchant_id
        self._transport = transport
        self._clock = clock

    def _call(self, op: str, payload: dict[str, Any]) -> dict[str, Any]:
        path = f"/v1/{op}"
        body = wire.dumps({"merchant_id": self.merchant_id, **payload})
        headers = wire.sign_headers(
            self.config.our_private_key, self.config.our_serial, ("POST", path, body), timestamp=int(self._clock())
        )
        headers[f"{wire.CHANNEL_PREFIX}-Merchant"] = self.merchant_id
        response = self._transport.send(path, headers, body, self.config.timeout)
        try:
            wire.verify_headers(response.headers, (), response.body, self.config.channel_key, now=self._clock())
        except wire.AppError as exc:
            # an answer we cannot authenticate is no answer: the outcome stays unknown
            raise ChannelUnknown(f"unverifiable answer: {exc.code}") from None
        try:
            answer = json.loads(response.body)
        except ValueError:
            raise ChannelUnknown("malformed answer") from None
        if response.status >= 500:
            raise ChannelUnknown(f"channel error {response.status}")
        if response.status >= 400:
            raise ChannelRejected(str(answer.get("code") or "REJECTED"), str(answer.get("message") or ""))
        return answer

    def sign_agreement(self, account: str, patient_ref: str) -> SignAnswer:
        answer = self._call("agreements/sign", {"account": account, "user_ref": patient_ref})
        return SignAnswer(agreement_no=str(answer["agreement_no"]))

    def terminate_agreement(self, agreement_no: str) -> None:
        self._call("agreements/terminate", {"agreement_no": agreement_no})

    def charge(self, out_trade_no: str, agreement_no: str, amount: int, description: str) -> TradeAnswer:
        return _trade(
            self._call(
                "trades/charge",
                {
                    "out_trade_no": out_trade_no,
                    "agreement_no": agreement_no,
                    "amount": amount,
                    "description": description,
                },
            )
        )

    def query_trade(self, out_trade_no: str) -> TradeAnswer:
        return _trade(self._call("trades/query", {"out_trade_no": out_trade_no}))

    def close_trade(self, out_trade_no: str) -> TradeAnswer:
        return _trade(self._call("trades/close", {"out_trade_no": out_trade_no}))

    def refund(self, out_refund_no: str, out_trade_no: str, amount: int) -> RefundAnswer:
        return _refund(
            self._call(
                "refunds/create", {"out_refund_no": out_refund_no, "out_trade_no": out_trade_no, "amount": amount}
            )
        )

    def query_refund(self, out_refund_no: str) -> RefundAnswer:
        return _refund(self._call("refunds/query", {"out_refund_no": out_refund_no}))

    def download_bill(self, day: str) -> Bill:
        answer = self._call("bills/download", {"bill_date": day})
        content = base64.b64decode(answer["content"])
        hash_ok = answer.get("hash_type") == "SM3" and wire.constant_eq(
            sm3(content).hex(), str(answer.get("hash_value"))
        )
        return Bill(self.channel, day, parse_bill(content) if hash_ok else [], hash_ok)


def _trade(answer: dict[str, Any]) -> TradeAnswer:
    return TradeAnswer(
        state=TradeState(answer["trade_state"]),
        channel_trade_no=answer.get("channel_trade_no"),
        amount=answer.get("amount"),
        fail_code=answer.get("fail_code"),
        success_time=answer.get("success_time"),
    )


def _refund(answer: dict[str, Any]) -> RefundAnswer:
    return RefundAnswer(
        state=TradeState(answer["refund_state"]),
        channel_refund_no=answer.get("channel_refund_no"),
        fail_code=answer.get("fail_code"),
        success_time=answer.get("success_time"),
    )


BILL_HEADER = "kind,out_no,channel_no,amount,time"


def format_bill(lines: list[BillLine]) -> bytes:
    rows = [BILL_HEADER] + [f"{ln.kind},{ln.out_no},{ln.channel_no},{ln.amount},{ln.time:.3f}" for ln in lines]
    return ("\n".join(rows) + "\n").encode("utf-8")


def parse_bill(content: bytes) -> list[BillLine]:
    lines = content.decode("utf-8").splitlines()
    if not lines or lines[0] != BILL_HEADER:
        raise ValueError("not a bill")
    out = []
    for row in lines[1:]:
        if not row:
            continue
        kind, out_no, channel_no, amount, ts = row.split(",")
        out.append(BillLine(kind, out_no, channel_no, int(amount), float(ts)))
    return out
