"""Request and response shapes of the pay HTTP functions (pydantic at the edge)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from bianjie.kit.types import WHOLE
from bianjie.pay.models import Agreement, Channel, Charge, Refund, now_iso

_ORDER_RE = r"^[A-Za-z0-9_\-]{1,64}$"


class SignAgreementRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Channel
    account: str = Field(
        min_length=6, max_length=32, pattern=r"^[A-Za-z0-9]+$", description="bank card number or channel account"
    )


class ReorderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agreement_ids: list[str] = Field(
        min_length=1, max_length=10, description="every active agreement, first = tried first"
    )


class AgreementView(BaseModel):
    agreement_id: str
    channel: Channel
    status: str
    priority: int
    account: str = Field(description="masked, e.g. ****0051")
    signed_at: str
    terminated_at: str | None = None
    terminated_by: str | None = None


class AgreementList(BaseModel):
    agreements: list[AgreementView]


class ChargeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_no: str = Field(pattern=_ORDER_RE, description="the hospital's bill number (unique per hospital)")
    patient_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")
    amount: Annotated[int, Field(gt=0, le=100_000_000), WHOLE] = Field(description="fen (分): a JSON integer")
    description: str = Field(default="", max_length=128)
    notify_url: str | None = Field(
        default=None,
        max_length=512,
        pattern=r"^https?://[^\s]+$",
        description="webhook for the final state: https on a host registered for the hospital, resolving to"
        " public addresses only (plain http only on the local stage); else 422 NOTIFY_URL_REFUSED",
    )
    visit_id: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[A-Za-z0-9_.:\-]+$",
        description="the hospital's visit (就诊) id; passed on in pay's events so guide can show the payment",
    )


class AttemptView(BaseModel):
    n: int
    channel: Channel
    agreement_id: str
    out_trade_no: str
    state: str
    decline_code: str | None = None
    channel_trade_no: str | None = None


class TransitionView(BaseModel):
    from_: str = Field(alias="from")
    to: str
    at: str
    source: str
    model_config = ConfigDict(populate_by_name=True)


class ChargeView(BaseModel):
    charge_id: str
    order_no: str
    patient_id: str
    amount: int
    status: str
    failure_code: str | None = None
    channel: Channel | None = Field(default=None, description="the channel that was charged")
    refunded: int
    refundable: int
    attempts: list[AttemptView]
    history: list[dict[str, Any]]
    created_at: str
    updated_at: str


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    refund_no: str = Field(pattern=_ORDER_RE, description="the hospital's refund number: retries reuse it")
    amount: Annotated[int, Field(gt=0, le=100_000_000), WHOLE] = Field(description="fen (分): a JSON integer")
    reason: str = Field(default="", max_length=128)


class RefundView(BaseModel):
    charge_id: str
    refund_no: str
    amount: int
    status: str
    failure_code: str | None = None
    created_at: str
    updated_at: str


class CallbackAck(BaseModel):
    code: str
    duplicate: bool = False


class WebhookKey(BaseModel):
    serial: str
    public_key: str = Field(description="SM2 public key, hex 04||X||Y")
    algorithm: str = "SM2-WITH-SM3"


def agreement_view(a: Agreement) -> AgreementView:
    return AgreementView(
        agreement_id=a.agreement_id,
        channel=a.channel,
        status=a.status.value,
        priority=a.priority,
        account=a.account_masked,
        signed_at=now_iso(a.signed_at),
        terminated_at=now_iso(a.terminated_at) if a.terminated_at else None,
        terminated_by=a.terminated_by,
    )


def charge_view(c: Charge) -> ChargeView:
    won = c.succeeded_attempt
    return ChargeView(
        charge_id=c.charge_id,
        order_no=c.order_no,
        patient_id=c.patient_id,
        amount=c.amount,
        status=c.status.value,
        failure_code=c.failure_code,
        channel=won.channel if won else None,
        refunded=c.refunded,
        refundable=(c.amount - c.refund_reserved) if won else 0,
        attempts=[
            AttemptView(
                n=a.n,
                channel=a.channel,
                agreement_id=a.agreement_id,
                out_trade_no=a.out_trade_no,
                state=a.state.value,
                decline_code=a.decline_code,
                channel_trade_no=a.channel_trade_no,
            )
            for a in c.attempts
        ],
        history=[{**h, "at": now_iso(h["at"])} for h in c.history],
        created_at=now_iso(c.created_at),
        updated_at=now_iso(c.updated_at),
    )


def refund_view(r: Refund) -> RefundView:
    return RefundView(
        charge_id=r.charge_id,
        refund_no=r.refund_no,
        amount=r.amount,
        status=r.status.value,
        failure_code=r.failure_code,
        created_at=now_iso(r.created_at),
        updated_at=now_iso(r.updated_at),
    )
