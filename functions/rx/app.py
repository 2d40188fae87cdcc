"""E-prescription center (医保电子处方中心): one function per endpoint, all routes of this app.

Hospitals and pharmacies call with signed requests; doctors and pharmacists with staff tokens; patients
with patient tokens. Handlers only parse, authenticate, call ``bianjie.rx`` and shape the answer.
"""

from __future__ import annotations

from typing import Any

from bianjie.kit.actor import Actor
from bianjie.kit.events import scheduled_time
from bianjie.kit.idempotency import Answer
from bianjie.kit.tokens import bearer_token
from bianjie.kit.web import ServiceApp
from bianjie.rx import fhir, wiring
from bianjie.rx.models import (
    AuthorizationView,
    AuthorizeRequest,
    ConfirmRequest,
    DispenseRequest,
    EcredentialCode,
    ListQuery,
    PrecheckAnswer,
    PrecheckRequest,
    PrescriptionList,
    PrescriptionView,
    ReviewRequest,
    RevokeRequest,
    SigningMaterial,
    SignRequest,
    StatusAnswer,
    UploadAnswer,
    UploadRequest,
)

app = ServiceApp("rx")


def _system_or_desk(*roles: str) -> Actor:
    """A hospital or pharmacy system step: a signed request (``Authorization: SM2-SM3 ...``), or the staff
    desk's bearer token holding one of ``roles`` (the service checks the role and the organisation)."""
    if bearer_token(app.current_request.headers) is not None:
        return app.staff_actor(*roles)
    return app.partner_actor()


_STATE_ERRORS = (
    "RX_NOT_FOUND",
    "RX_EXPIRED",
    "RX_REVOKED",
    "RX_ALREADY_DISPENSED",
    "RX_CONCURRENT_UPDATE",
    "CENTER_REJECTED",
    "CENTER_UNAVAILABLE",
)


@app.route(
    "/rx/precheck",
    methods=["POST"],
    auth="partner_or_token",
    request=PrecheckRequest,
    response=PrecheckAnswer,
    summary="Pre-check a prescription (上传预核验); answers the trace code and prescription number",
    errors=("RX_PRECHECK_FAILED", "NOT_A_HOSPITAL", "IDEMPOTENCY_KEY_REUSED", "CENTER_REJECTED"),
)
def precheck() -> Answer[PrecheckAnswer]:
    actor = _system_or_desk("doctor")
    return wiring.service().precheck(actor, app.body(PrecheckRequest))


@app.route(
    "/rx/prescriptions/{rx_id}/document",
    methods=["GET"],
    auth="token",
    response=SigningMaterial,
    summary="The printable PDF and the exact text the issuing doctor signs",
    errors=("RX_NOT_FOUND", "NOT_ISSUING_DOCTOR"),
)
def signing_material(rx_id: str) -> SigningMaterial:
    return wiring.service().signing_material(app.staff_actor("doctor"), rx_id)


@app.route(
    "/rx/prescriptions/{rx_id}/signature",
    methods=["POST"],
    auth="token",
    request=SignRequest,
    response=StatusAnswer,
    summary="The issuing doctor's SM2 signature over the prescription and its PDF",
    errors=("RX_SIGNATURE_INVALID", "PDF_DIGEST_MISMATCH", "NOT_ISSUING_DOCTOR", "RX_NOT_PRECHECKED", *_STATE_ERRORS),
)
def sign(rx_id: str) -> StatusAnswer:
    actor = app.staff_actor("doctor")
    return wiring.service().sign(actor, rx_id, app.body(SignRequest))


@app.route(
    "/rx/prescriptions",
    methods=["POST"],
    auth="partner_or_token",
    request=UploadRequest,
    response=UploadAnswer,
    summary="Upload a signed prescription to the center (idempotent by trace code); status becomes valid",
    errors=(
        "TRACE_CODE_MISMATCH",
        "PHARMACIST_REVIEW_REQUIRED",
        "IDEMPOTENCY_KEY_REUSED",
        "RX_NOT_SIGNED",
        *_STATE_ERRORS,
    ),
)
def upload() -> Answer[UploadAnswer]:
    actor = _system_or_desk("doctor")
    return wiring.service().upload(actor, app.body(UploadRequest))


@app.route(
    "/rx/prescriptions",
    methods=["GET"],
    query=ListQuery,
    auth="partner_or_token",
    response=PrescriptionList,
    summary="The hospital's prescriptions, newest first (optional status filter)",
    errors=("NOT_A_HOSPITAL",),
)
def list_prescriptions() -> PrescriptionList:
    actor = _system_or_desk("doctor", "rx-clerk")
    return wiring.service().list_for_hospital(actor, app.query(ListQuery))


@app.route(
    "/rx/prescriptions/{rx_id}",
    methods=["GET"],
    auth="partner_or_token",
    response=PrescriptionView,
    summary="One prescription with its history (its hospital, or the pharmacy holding it)",
    errors=("RX_NOT_FOUND",),
)
def get_prescription(rx_id: str) -> PrescriptionView:
    actor = _system_or_desk("doctor", "rx-clerk", "pharmacist")
    return wiring.service().get(actor, rx_id)


@app.route(
    "/rx/prescriptions/{rx_id}/confirmation",
    methods=["POST"],
    auth="partner_or_token",
    request=ConfirmRequest,
    response=StatusAnswer,
    summary="Hospital confirmation: bought in hospital (settled, dispensed) or released for outside purchase",
    errors=(
        "SETTLEMENT_REQUIRED",
        "ITEMS_REQUIRED",
        "RX_NOT_FOR_CIRCULATION",
        "RX_CHANNEL",
        "ITEM_NOT_PRESCRIBED",
        "ITEM_QUANTITY_EXCEEDED",
        "RX_NOT_VALID",
        *_STATE_ERRORS,
    ),
)
def confirm(rx_id: str) -> Answer[StatusAnswer]:
    actor = _system_or_desk("rx-clerk")
    return wiring.service().confirm(actor, rx_id, app.body(ConfirmRequest))


@app.route(
    "/rx/authorizations",
    methods=["POST"],
    auth="partner_or_token",
    request=AuthorizeRequest,
    response=AuthorizationView,
    summary="Circulation authorization: a pharmacy presents the patient's e-credential token (流转授权)",
    errors=("EC_TOKEN_INVALID", "EC_TOKEN_EXPIRED", "NOT_A_PHARMACY", "NO_RELEASED_PRESCRIPTION"),
)
def authorize() -> AuthorizationView:
    actor = _system_or_desk("pharmacist")
    return wiring.service().authorize(actor, app.body(AuthorizeRequest))


@app.route(
    "/rx/authorizations/{authorization_id}",
    methods=["GET"],
    auth="partner_or_token",
    response=AuthorizationView,
    summary="The prescriptions a pharmacy's authorization covers, as they are now",
    errors=("AUTHORIZATION_INVALID", "NOT_A_PHARMACY"),
)
def get_authorization(authorization_id: str) -> AuthorizationView:
    actor = _system_or_desk("pharmacist")
    return wiring.service().authorization(actor, authorization_id)


@app.route(
    "/rx/prescriptions/{rx_id}/review",
    methods=["POST"],
    auth="token",
    request=ReviewRequest,
    response=StatusAnswer,
    summary="A pharmacist's review (审方): pass, or reject with a reason",
    errors=("AUTHORIZATION_INVALID", "AUTHORIZATION_EXPIRED", "REASON_REQUIRED", "RX_NOT_AUTHORIZED", *_STATE_ERRORS),
)
def review(rx_id: str) -> StatusAnswer:
    actor = app.staff_actor("pharmacist")
    return wiring.service().review(actor, rx_id, app.body(ReviewRequest))


@app.route(
    "/rx/prescriptions/{rx_id}/dispense",
    methods=["POST"],
    auth="partner_or_token",
    request=DispenseRequest,
    response=StatusAnswer,
    summary="Dispense result (购药结果): items, amounts, insurance and cash parts; idempotent by setl_id",
    errors=(
        "AUTHORIZATION_INVALID",
        "RX_NOT_REVIEWED",
        "RX_REVIEW_REJECTED",
        "ITEM_NOT_PRESCRIBED",
        "ITEM_QUANTITY_EXCEEDED",
        "IDEMPOTENCY_KEY_REUSED",
        *_STATE_ERRORS,
    ),
)
def dispense(rx_id: str) -> Answer[StatusAnswer]:
    actor = _system_or_desk("pharmacist")
    return wiring.service().dispense(actor, rx_id, app.body(DispenseRequest))


@app.route(
    "/rx/prescriptions/{rx_id}/revoke",
    methods=["POST"],
    auth="token",
    request=RevokeRequest,
    response=StatusAnswer,
    summary="Revocation by the issuing doctor, only while the prescription is unused",
    errors=("NOT_ISSUING_DOCTOR", "RX_USED", "RX_IN_USE", *_STATE_ERRORS),
)
def revoke(rx_id: str) -> StatusAnswer:
    actor = app.staff_actor("doctor")
    return wiring.service().revoke(actor, rx_id, app.body(RevokeRequest))


@app.route(
    "/rx/me/prescriptions",
    methods=["GET"],
    query=ListQuery,
    auth="token",
    response=PrescriptionList,
    summary="The patient's own prescriptions",
    errors=("PATIENT_REF_MISSING",),
)
def my_prescriptions() -> PrescriptionList:
    actor = app.patient_actor()
    return wiring.service().list_for_patient(actor, app.query(ListQuery))


@app.route(
    "/rx/me/prescriptions/{rx_id}/release",
    methods=["POST"],
    auth="token",
    response=StatusAnswer,
    summary="The patient chooses outside purchase (处方外购): released for a designated pharmacy",
    errors=("PATIENT_REF_MISSING", "RX_NOT_FOR_CIRCULATION", "RX_NOT_VALID", *_STATE_ERRORS),
)
def release_for_patient(rx_id: str) -> StatusAnswer:
    return wiring.service().release_for_patient(app.patient_actor(), rx_id)


@app.route(
    "/rx/standin/e-credential",
    methods=["POST"],
    auth="token",
    response=EcredentialCode,
    summary="STAND-IN (local stage only): the 医保电子凭证 code the patient's insurance app would show",
    errors=("EC_PERSON_UNKNOWN", "EC_STANDIN_OFF"),
)
def standin_e_credential() -> EcredentialCode:
    return EcredentialCode.model_validate(wiring.standin_e_credential(app.patient_actor()))


@app.route(
    "/rx/prescriptions/{rx_id}/fhir",
    methods=["GET"],
    auth="partner",
    summary="FHIR R4 Bundle: MedicationRequest per drug line and MedicationDispense per dispensed item",
    errors=("RX_NOT_FOUND",),
)
def fhir_export(rx_id: str) -> dict[str, Any]:
    actor = app.partner_actor()
    service = wiring.service()
    item, content = service.raw(actor, rx_id)
    return fhir.bundle(item, content, service.catalogue)


@app.lambda_function(name="sweep_expired")
def sweep_expired(event: dict[str, Any], context: Any) -> dict[str, int]:
    return wiring.service().sweep(scheduled_time(event))


@app.lambda_function(name="relay_outbox")
def relay_outbox(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Publish rx events whose send right after their commit never happened (a crash, a topic outage)."""
    return wiring.outbox().relay()
