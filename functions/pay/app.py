"""Credit pay-later (医保信用就医无感支付): agreements (patients), charges and refunds (hospitals), channel
callbacks, hospital webhooks, the pending sweeper and daily reconciliation. See docs/pay.md."""

from __future__ import annotations

from typing import Any

from bianjie.kit import batch, deps
from bianjie.kit.idempotency import Answer
from bianjie.kit.logging import get_logger
from bianjie.kit.web import ServiceApp
from bianjie.pay import api, wiring
from bianjie.pay.charges import RefundRequest
from bianjie.pay.models import CHANNEL_BY_SLUG
from bianjie.pay.webhooks import QueuedWebhook

app = ServiceApp("pay")
log = get_logger("bianjie.pay.app")

CALLBACK_ERRORS = (
    "CALLBACK_SIGNATURE_MISSING",
    "CALLBACK_TIMESTAMP_OUT_OF_WINDOW",
    "CALLBACK_KEY_UNKNOWN",
    "CALLBACK_SIGNATURE_INVALID",
    "CALLBACK_MALFORMED",
    "CALLBACK_DECRYPT_FAILED",
    "CALLBACK_MERCHANT_MISMATCH",
    "CALLBACK_AMOUNT_MISMATCH",
    "CALLBACK_CHANNEL_MISMATCH",
    "CALLBACK_ORDER_UNKNOWN",
)


# ---------------------------------------------------------------- agreements (patient token)


@app.route(
    "/pay/agreements",
    methods=["POST"],
    auth="token",
    request=api.SignAgreementRequest,
    response=api.AgreementView,
    summary="Sign a payment agreement with a channel (patient)",
    errors=("AGREEMENT_EXISTS", "CHANNEL_REJECTED", "CHANNEL_UNAVAILABLE"),
    status=201,
)
def sign_agreement() -> api.AgreementView:
    patient = app.patient_actor()
    body = app.body(api.SignAgreementRequest)
    return api.agreement_view(wiring.agreements().sign(patient, body.channel, body.account))


@app.route(
    "/pay/agreements",
    methods=["GET"],
    auth="token",
    response=api.AgreementList,
    summary="The patient's agreements, in the order charges try them",
)
def list_agreements() -> api.AgreementList:
    found = wiring.agreements().list_for(app.patient_actor())
    return api.AgreementList(agreements=[api.agreement_view(a) for a in found])


@app.route(
    "/pay/agreements/{agreement_id}/terminate",
    methods=["POST"],
    auth="token",
    response=api.AgreementView,
    summary="Terminate an agreement (解约)",
    errors=("AGREEMENT_NOT_FOUND", "CHANNEL_REJECTED", "CHANNEL_UNAVAILABLE"),
)
def terminate_agreement(agreement_id: str) -> api.AgreementView:
    return api.agreement_view(wiring.agreements().terminate(app.patient_actor(), agreement_id))


@app.route(
    "/pay/agreements/order",
    methods=["PUT"],
    auth="token",
    request=api.ReorderRequest,
    response=api.AgreementList,
    summary="Rearrange the order in which charges try the patient's agreements",
    errors=("ORDER_MISMATCH",),
)
def reorder_agreements() -> api.AgreementList:
    patient = app.patient_actor()
    body = app.body(api.ReorderRequest)
    found = wiring.agreements().reorder(patient, body.agreement_ids)
    return api.AgreementList(agreements=[api.agreement_view(a) for a in found])


# ---------------------------------------------------------------- charges and refunds (hospital, signed)


@app.route(
    "/pay/charges",
    methods=["POST"],
    auth="partner",
    request=api.ChargeCreate,
    response=api.ChargeView,
    summary="Charge a bill to the patient's agreements (Idempotency-Key required); 201 final, 202 PENDING",
    errors=(
        "IDEMPOTENCY_KEY_REQUIRED",
        "IDEMPOTENCY_KEY_REUSED",
        "IN_PROGRESS",
        "NO_ACTIVE_AGREEMENT",
        "NOTIFY_URL_REFUSED",
        "ORDER_NO_REUSED",
    ),
    status=201,
    also=(202,),
    idempotency_key="required",
)
def create_charge() -> Answer[api.ChargeView]:
    hospital = app.partner_actor()
    return wiring.charges().submit(hospital, app.idempotency_key(), app.body(api.ChargeCreate))


@app.route(
    "/pay/charges/{charge_id}",
    methods=["GET"],
    auth="partner",
    response=api.ChargeView,
    summary="A charge as we know it now (代扣查询)",
    errors=("CHARGE_NOT_FOUND",),
)
def get_charge(charge_id: str) -> api.ChargeView:
    return api.charge_view(wiring.charges().read(app.partner_actor(), charge_id))


@app.route(
    "/pay/charges/{charge_id}/refunds",
    methods=["POST"],
    auth="partner",
    request=api.RefundCreate,
    response=api.RefundView,
    summary="Refund all or part of a charge; idempotent by refund_no",
    errors=("CHARGE_NOT_FOUND", "CHARGE_NOT_REFUNDABLE", "REFUND_EXCEEDS_CHARGE", "REFUND_NO_REUSED"),
    status=201,
)
def create_refund(charge_id: str) -> api.RefundView:
    hospital = app.partner_actor()
    body = app.body(api.RefundCreate)
    refund = wiring.charges().refund(hospital, charge_id, RefundRequest(body.refund_no, body.amount, body.reason))
    return api.refund_view(refund)


@app.route(
    "/pay/webhook-key",
    methods=["GET"],
    auth="partner",
    response=api.WebhookKey,
    summary="Our SM2 public key that signs webhooks to hospitals",
)
def get_webhook_key() -> api.WebhookKey:
    app.partner()
    serial, key = wiring.webhook_key()
    return api.WebhookKey(serial=serial, public_key=key.public_key.to_hex())


# ---------------------------------------------------------------- channel callbacks (one function each)


def _callback(slug: str) -> Any:
    request = app.current_request
    outcome = wiring.callbacks().handle(CHANNEL_BY_SLUG[slug], request.headers, request.raw_body or b"")
    return api.CallbackAck(code="SUCCESS", duplicate=bool(outcome.get("duplicate")))


@app.route(
    "/pay/callbacks/unionpay",
    methods=["POST"],
    response=api.CallbackAck,
    summary="UnionPay notifications (channel-signed, SM4-GCM resource)",
    errors=CALLBACK_ERRORS,
)
def callback_unionpay() -> Any:
    return _callback("unionpay")


@app.route(
    "/pay/callbacks/huimin",
    methods=["POST"],
    response=api.CallbackAck,
    summary="惠民就医 notifications (channel-signed, SM4-GCM resource)",
    errors=CALLBACK_ERRORS,
)
def callback_huimin() -> Any:
    return _callback("huimin")


@app.route(
    "/pay/callbacks/yibao-credit",
    methods=["POST"],
    response=api.CallbackAck,
    summary="医保信用 notifications (channel-signed, SM4-GCM resource)",
    errors=CALLBACK_ERRORS,
)
def callback_yibao_credit() -> Any:
    return _callback("yibao-credit")


# ---------------------------------------------------------------- events and schedules


@app.lambda_function(name="deliver_webhooks")
def deliver_webhooks(event: dict[str, Any], context: Any) -> dict[str, Any]:
    sender = wiring.webhook_sender()

    def one(message: batch.SqsMessage) -> str:
        return sender.handle(QueuedWebhook.model_validate(message.json()).model_dump())

    return batch.process_partial_response(
        event, one, dead_letters=deps.dead_letters("PAY_WEBHOOK_DLQ"), name="pay.webhooks"
    )


@app.lambda_function(name="relay_webhooks")
def relay_webhooks(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Queue webhook intents whose dispatch after commit never happened (crash, queue outage)."""
    return wiring.webhook_outbox().relay()


@app.lambda_function(name="sweep_pending")
def sweep_pending(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return wiring.charges().sweep()


@app.lambda_function(name="reconcile_daily")
def reconcile_daily(event: dict[str, Any], context: Any) -> dict[str, Any]:
    from bianjie.pay.reconcile import previous_day

    day = str(event.get("day") or previous_day(event.get("time")))
    report = wiring.reconciler().run(day)
    return {"day": day, "clean": report["clean"], "totals": report["totals"], "location": report["location"]}


@app.lambda_function(name="standin_notifier")
def standin_notifier(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """STAND-IN: plays the channels' notification senders (retries via the queue, some duplicates)."""
    from bianjie_dev.pay import standin

    doubles = wiring.standins()

    def one(message: batch.SqsMessage) -> None:
        job = message.json()
        try:
            standin.deliver(doubles, job, wiring.post_callback, wiring.duplicate_rate())
        except Exception as exc:  # the gateway refused or was busy: the channel retries, as real ones do
            raise batch.Retry(f"stand-in callback not acknowledged: {exc}") from exc

    return batch.process_partial_response(
        event, one, dead_letters=deps.dead_letters("PAY_STANDIN_NOTIFY_DLQ"), name="pay.standin"
    )
