"""Values of the payment domain: channels, states, and the records the store keeps.

Amounts are integers in fen (分, 0.01 CNY) everywhere; no floats touch money.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from bianjie.kit.timefmt import utc_iso


class Channel(StrEnum):
    UNIONPAY = "UNIONPAY"  # 银联 bank-card agreement debit (协议代扣 / 无感支付)
    HUIMIN = "HUIMIN"  # 惠民就医
    YIBAO_CREDIT = "YIBAO_CREDIT"  # 医保信用


# Seed: "银行卡或惠民就医扣款为优先扣费方式" - bank card and 惠民就医 are charged first by default.
DEFAULT_RANK = {Channel.UNIONPAY: 1, Channel.HUIMIN: 2, Channel.YIBAO_CREDIT: 3}

# One callback endpoint per channel; the path segment names the channel.
CALLBACK_SLUGS = {Channel.UNIONPAY: "unionpay", Channel.HUIMIN: "huimin", Channel.YIBAO_CREDIT: "yibao-credit"}
CHANNEL_BY_SLUG = {slug: channel for channel, slug in CALLBACK_SLUGS.items()}


class AgreementStatus(StrEnum):
    ACTIVE = "ACTIVE"
    TERMINATED = "TERMINATED"


class ChargeStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class AttemptState(StrEnum):
    CALLING = "CALLING"  # asked the channel; no definite answer yet (also: processing, timed out)
    SUCCEEDED = "SUCCEEDED"
    DECLINED = "DECLINED"  # a definite "no" from the channel: the only state that lets us try the next one
    CLOSED = "CLOSED"  # the channel never took the trade and we closed it: also definite, nothing was charged


class RefundStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


FINAL_CHARGE = {ChargeStatus.SUCCEEDED, ChargeStatus.FAILED}


def now_iso(ts: float) -> str:
    """Pay's instants carry milliseconds: its sweep keys sort by them as text."""
    return utc_iso(ts, "milliseconds")


@dataclass
class Attempt:
    n: int
    channel: Channel
    agreement_id: str
    out_trade_no: str
    state: AttemptState = AttemptState.CALLING
    channel_trade_no: str | None = None
    decline_code: str | None = None
    success_time: float | None = None

    def to_item(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "channel": self.channel.value,
            "agreement_id": self.agreement_id,
            "out_trade_no": self.out_trade_no,
            "state": self.state.value,
            "channel_trade_no": self.channel_trade_no,
            "decline_code": self.decline_code,
            "success_time": self.success_time,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Attempt:
        return cls(
            n=int(item["n"]),
            channel=Channel(item["channel"]),
            agreement_id=item["agreement_id"],
            out_trade_no=item["out_trade_no"],
            state=AttemptState(item["state"]),
            channel_trade_no=item.get("channel_trade_no"),
            decline_code=item.get("decline_code"),
            success_time=item.get("success_time"),
        )


@dataclass
class Charge:
    """One hospital bill to settle. ``plan`` is the patient's agreement order when the charge began."""

    charge_id: str
    app_id: str  # the hospital partner that asked
    order_no: str  # the hospital's own bill number, unique per hospital
    patient_id: str
    amount: int
    description: str
    status: ChargeStatus
    plan: list[dict[str, str]]  # [{"agreement_id", "channel"}] in the order they may be tried
    attempts: list[Attempt]
    created_at: float
    updated_at: float
    notify_url: str | None = None
    version: int = 0
    refunded: int = 0  # refunds that succeeded
    refund_reserved: int = 0  # refunds accepted and not yet failed (succeeded + in flight)
    failure_code: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # status changes, for audit and tests
    anomalies: list[dict[str, Any]] = field(default_factory=list)
    next_check_at: float | None = None

    @property
    def current(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def attempt_by_trade(self, out_trade_no: str) -> Attempt | None:
        return next((a for a in self.attempts if a.out_trade_no == out_trade_no), None)

    @property
    def succeeded_attempt(self) -> Attempt | None:
        return next((a for a in self.attempts if a.state is AttemptState.SUCCEEDED), None)


@dataclass
class Refund:
    charge_id: str
    refund_no: str  # the hospital's refund number: the idempotency key of a refund
    out_refund_no: str  # what we send the channel
    amount: int
    reason: str
    status: RefundStatus
    channel: Channel
    out_trade_no: str
    created_at: float
    updated_at: float
    version: int = 0
    channel_refund_no: str | None = None
    success_time: float | None = None
    failure_code: str | None = None
    next_check_at: float | None = None


@dataclass
class Agreement:
    agreement_id: str
    patient_id: str
    channel: Channel
    status: AgreementStatus
    priority: int
    account_masked: str
    account_enc: str  # SM4-GCM field token
    agreement_no_enc: str  # SM4-GCM field token
    agreement_ref: str  # HMAC-SM3 blind index of the agreement number
    signed_at: float
    terminated_at: float | None = None
    terminated_by: str | None = None  # "patient" | "channel"
