"""pay's events (source ``bianjie.pay``): a charge or a refund reached its final state.

Amounts are integer fen (分). ``visit_id`` is the hospital's visit id when the hospital gave one with
the charge. No patient data: the patient is the hospital's to know. Event id: ``<charge_id>-<type>``
for charges, ``<out_refund_no>-<type>`` for refunds (one final state per charge or refund).
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from bianjie.kit.events import EventContract


class PayChargeEventV1(EventContract):
    charge_id: str = Field(min_length=1, max_length=64)
    hospital: str = Field(min_length=1, max_length=64, description="the hospital's partner app id")
    order_no: str = Field(min_length=1, max_length=64, description="the hospital's bill number")
    visit_id: str | None = Field(default=None, max_length=64)
    amount_fen: int = Field(gt=0)


class PayChargeSucceededV1(PayChargeEventV1):
    event_type: ClassVar[str] = "pay.charge.succeeded"
    channel: str = Field(min_length=1, max_length=32, description="the channel that paid")
    paid_at: str = Field(description="ISO 8601 UTC")


class PayChargeFailedV1(PayChargeEventV1):
    event_type: ClassVar[str] = "pay.charge.failed"
    failure_code: str | None = Field(default=None, max_length=64)


class PayRefundEventV1(PayChargeEventV1):
    refund_no: str = Field(min_length=1, max_length=64, description="the hospital's refund number")
    refund_fen: int = Field(gt=0)


class PayRefundSucceededV1(PayRefundEventV1):
    event_type: ClassVar[str] = "pay.refund.succeeded"


class PayRefundFailedV1(PayRefundEventV1):
    event_type: ClassVar[str] = "pay.refund.failed"
    failure_code: str | None = Field(default=None, max_length=64)


CONTRACTS = (PayChargeSucceededV1, PayChargeFailedV1, PayRefundSucceededV1, PayRefundFailedV1)
