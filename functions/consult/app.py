"""MDT consultation (互联网医院多学科会诊): one function per endpoint, all routes of this app.

Doctors call with staff tokens (role ``doctor``, ``hospital`` claim = their institution); platform staff
with role ``consult-admin``; the video server posts signed webhooks. Handlers only parse, authenticate,
call ``bianjie.consult`` and shape the answer.
"""

from __future__ import annotations

from typing import Any

from bianjie.consult import fhir, wiring
from bianjie.consult.models import (
    AgreementRequest,
    AgreementUpdate,
    ApplyRequest,
    AttachmentRequest,
    AttachmentUpload,
    CancelRequest,
    ColleagueList,
    ConsultationList,
    ConsultationView,
    ConsultConsentRequest,
    ConsultStatus,
    CredentialList,
    CredentialQuery,
    CredentialRequest,
    CredentialView,
    InviteesRequest,
    RecordsQuery,
    ReportDraft,
    ReportView,
    RespondRequest,
    RoomJoinAnswer,
    ScopeAgreementList,
    ScopeAgreementView,
    WebhookAnswer,
)
from bianjie.kit import batch, s3events
from bianjie.kit.events import scheduled_time
from bianjie.kit.idempotency import Answer
from bianjie.kit.web import ServiceApp
from pydantic import BaseModel, Field

app = ServiceApp("consult")


class S3Notification(BaseModel):
    """The part of an S3 notification the check reads (``s3:TestEvent`` has no Records)."""

    Records: list[dict[str, Any]] = Field(default_factory=list)


ADMIN = "consult-admin"
DOCTOR = "doctor"
_CASE = ("CONSULT_NOT_FOUND", "CREDENTIAL_INACTIVE", "AGREEMENT_INACTIVE")
_STATE = ("CONSULT_STATE", "CONSULT_CANCELLED", "CONSULT_COMPLETED", "CONSULT_CONCURRENT_UPDATE")
_SCOPE = ("NOT_IN_SCOPE", "AGREEMENT_INACTIVE", "DUPLICATE_INVITEE", "SELF_INVITE")


# ---------------------------------------------------------------- scope administration


@app.route(
    "/consult/agreements",
    methods=["POST"],
    auth="token",
    request=AgreementRequest,
    response=ScopeAgreementView,
    status=201,
    summary="Create a collaboration agreement (协作协议) between institutions",
    errors=("NOT_CONSULT_ADMIN", "AGREEMENT_PERIOD_INVALID", "AGREEMENT_PARTIES_DUPLICATE"),
)
def create_agreement() -> ScopeAgreementView:
    return wiring.service().create_agreement(app.staff_actor(ADMIN), app.body(AgreementRequest))


@app.route(
    "/consult/agreements",
    methods=["GET"],
    auth="token",
    response=ScopeAgreementList,
    summary="Every collaboration agreement",
    errors=("NOT_CONSULT_ADMIN",),
)
def list_agreements() -> ScopeAgreementList:
    return wiring.service().list_agreements(app.staff_actor(ADMIN))


@app.route(
    "/consult/agreements/{agreement_id}",
    methods=["PUT"],
    auth="token",
    request=AgreementUpdate,
    response=ScopeAgreementView,
    summary="Change an agreement (status, period, services, departments), by the version read",
    errors=("NOT_CONSULT_ADMIN", "AGREEMENT_NOT_FOUND", "AGREEMENT_CHANGED", "AGREEMENT_PERIOD_INVALID"),
)
def update_agreement(agreement_id: str) -> ScopeAgreementView:
    return wiring.service().update_agreement(app.staff_actor(ADMIN), agreement_id, app.body(AgreementUpdate))


@app.route(
    "/consult/credentials/{org}/{doctor_code}",
    methods=["PUT"],
    auth="token",
    request=CredentialRequest,
    response=CredentialView,
    summary="Record a doctor's credential (licence, title, department, 多点执业 filings, status)",
    errors=("NOT_CONSULT_ADMIN", "INVALID_IDENTIFIER"),
)
def put_credential(org: str, doctor_code: str) -> CredentialView:
    return wiring.service().put_credential(app.staff_actor(ADMIN), org, doctor_code, app.body(CredentialRequest))


@app.route(
    "/consult/credentials",
    methods=["GET"],
    auth="token",
    query=CredentialQuery,
    response=CredentialList,
    summary="The credentials of one institution's doctors",
    errors=("NOT_CONSULT_ADMIN",),
)
def list_credentials() -> CredentialList:
    return wiring.service().list_credentials(app.staff_actor(ADMIN), app.query(CredentialQuery).org)


@app.route(
    "/consult/colleagues",
    methods=["GET"],
    auth="token",
    response=ColleagueList,
    summary="The doctors the caller may invite now (same institution, or an active MDT agreement)",
    errors=("CREDENTIAL_INACTIVE",),
)
def colleagues() -> ColleagueList:
    return wiring.service().colleagues(app.staff_actor(DOCTOR))


# ---------------------------------------------------------------- apply


@app.route(
    "/consult/consultations",
    methods=["POST"],
    auth="token",
    request=ApplyRequest,
    response=ConsultStatus,
    status=201,
    idempotency_key="required",
    summary="Apply for an MDT consultation (会诊申请); a draft until consent is recorded and it is submitted",
    errors=(
        "CREDENTIAL_INACTIVE",
        "SLOT_IN_PAST",
        "SLOT_TOO_FAR",
        "LOCATION_REQUIRED",
        "IDEMPOTENCY_KEY_REUSED",
        *_SCOPE,
    ),
)
def apply() -> Answer[ConsultStatus]:
    actor = app.staff_actor(DOCTOR)
    return wiring.service().apply(actor, app.body(ApplyRequest), app.idempotency_key() or "")


@app.route(
    "/consult/consultations",
    methods=["GET"],
    auth="token",
    query=RecordsQuery,
    response=ConsultationList,
    summary="会诊记录: 我发起的 (box=mine) or 我参与的 (box=joined), by state and date, newest first, with counts",
    errors=("CREDENTIAL_INACTIVE", "INVALID_CURSOR"),
)
def list_consultations() -> ConsultationList:
    return wiring.service().records(app.staff_actor(DOCTOR), app.query(RecordsQuery))


@app.route(
    "/consult/consultations/{consultation_id}",
    methods=["GET"],
    auth="token",
    response=ConsultationView,
    summary="One case: patient, visits, attachments (short-lived links), participants, reports",
    errors=_CASE,
)
def get_consultation(consultation_id: str) -> ConsultationView:
    return wiring.service().get(app.staff_actor(DOCTOR), consultation_id)


@app.route(
    "/consult/consultations/{consultation_id}/consent",
    methods=["POST"],
    auth="token",
    request=ConsultConsentRequest,
    response=ConsultStatus,
    summary="Record the patient's consent (知情同意); needed before the case is scheduled",
    errors=(*_CASE, *_STATE, "NOT_APPLICANT"),
)
def record_consent(consultation_id: str) -> ConsultStatus:
    return wiring.service().record_consent(app.staff_actor(DOCTOR), consultation_id, app.body(ConsultConsentRequest))


@app.route(
    "/consult/consultations/{consultation_id}/invitees",
    methods=["PUT"],
    auth="token",
    request=InviteesRequest,
    response=ConsultStatus,
    summary="A new list of invitees for a draft (after everyone declined)",
    errors=(*_CASE, *_STATE, *_SCOPE, "NOT_APPLICANT"),
)
def change_invitees(consultation_id: str) -> ConsultStatus:
    body = app.body(InviteesRequest)
    return wiring.service().change_invitees(app.staff_actor(DOCTOR), consultation_id, body.invitees)


@app.route(
    "/consult/consultations/{consultation_id}/attachments",
    methods=["POST"],
    auth="token",
    request=AttachmentRequest,
    response=AttachmentUpload,
    status=201,
    summary="A presigned PUT for one attachment; checked (type, size, malware, SHA-256) after upload",
    errors=(*_CASE, *_STATE, "NOT_APPLICANT", "TOO_MANY_ATTACHMENTS"),
)
def request_upload(consultation_id: str) -> AttachmentUpload:
    return wiring.service().request_upload(app.staff_actor(DOCTOR), consultation_id, app.body(AttachmentRequest))


@app.route(
    "/consult/consultations/{consultation_id}/submit",
    methods=["POST"],
    auth="token",
    response=ConsultStatus,
    summary="Submit: invitees are asked (待会诊); needs consent, every invitee in scope, the slot ahead",
    errors=(*_CASE, *_STATE, *_SCOPE, "NOT_APPLICANT", "CONSENT_REQUIRED", "ATTACHMENTS_PENDING", "SLOT_IN_PAST"),
)
def submit(consultation_id: str) -> ConsultStatus:
    return wiring.service().submit(app.staff_actor(DOCTOR), consultation_id)


@app.route(
    "/consult/consultations/{consultation_id}/cancel",
    methods=["POST"],
    auth="token",
    request=CancelRequest,
    response=ConsultStatus,
    summary="Cancel a draft or scheduled case (the applicant)",
    errors=(*_CASE, *_STATE, "NOT_APPLICANT"),
)
def cancel(consultation_id: str) -> ConsultStatus:
    return wiring.service().cancel(app.staff_actor(DOCTOR), consultation_id, app.body(CancelRequest))


@app.route(
    "/consult/consultations/{consultation_id}/response",
    methods=["POST"],
    auth="token",
    request=RespondRequest,
    response=ConsultStatus,
    summary="An invitee accepts or declines; all declined returns the case to draft",
    errors=(*_CASE, *_STATE, "NOT_INVITED"),
)
def respond(consultation_id: str) -> ConsultStatus:
    return wiring.service().respond(app.staff_actor(DOCTOR), consultation_id, app.body(RespondRequest))


# ---------------------------------------------------------------- the room


@app.route(
    "/consult/consultations/{consultation_id}/join",
    methods=["POST"],
    auth="token",
    response=RoomJoinAnswer,
    summary="Join the video room: a LiveKit access token for this participant, valid to the slot's end + grace",
    errors=(*_CASE, *_STATE, "NOT_ACCEPTED", "ROOM_NOT_OPEN", "ROOM_CLOSED"),
)
def join(consultation_id: str) -> RoomJoinAnswer:
    return wiring.service().join(app.staff_actor(DOCTOR), consultation_id)


@app.route(
    "/consult/consultations/{consultation_id}/leave",
    methods=["POST"],
    auth="token",
    response=ConsultStatus,
    summary="Record leaving the room",
    errors=(*_CASE, "CONSULT_CONCURRENT_UPDATE"),
)
def leave(consultation_id: str) -> ConsultStatus:
    return wiring.service().leave(app.staff_actor(DOCTOR), consultation_id)


@app.route(
    "/consult/consultations/{consultation_id}/end",
    methods=["POST"],
    auth="token",
    response=ConsultStatus,
    summary="The applicant ends the meeting: 待报告",
    errors=(*_CASE, *_STATE, "NOT_APPLICANT"),
)
def end(consultation_id: str) -> ConsultStatus:
    return wiring.service().end(app.staff_actor(DOCTOR), consultation_id)


@app.route(
    "/consult/rooms/webhook",
    methods=["POST"],
    auth="none",
    response=WebhookAnswer,
    summary="LiveKit webhook (signed JWT over the body): joins, leaves, room_finished -> 待报告",
    errors=("ROOM_TOKEN_INVALID", "WEBHOOK_INVALID", "CONSULT_CONCURRENT_UPDATE"),
    content_types=["application/webhook+json", "application/json"],
)
def room_webhook() -> WebhookAnswer:
    request = app.current_request
    return wiring.service().room_event(request.raw_body or b"", request.headers.get("authorization") or "")


# ---------------------------------------------------------------- reports


@app.route(
    "/consult/consultations/{consultation_id}/reports/mine",
    methods=["PUT"],
    auth="token",
    request=ReportDraft,
    response=ReportView,
    summary="Save the caller's report draft (诊断报告)",
    errors=(*_CASE, "NOT_A_PARTICIPANT", "REPORT_NOT_OPEN", "REPORT_ALREADY_SIGNED", "CONSULT_CONCURRENT_UPDATE"),
)
def save_report(consultation_id: str) -> ReportView:
    return wiring.service().save_report(app.staff_actor(DOCTOR), consultation_id, app.body(ReportDraft))


@app.route(
    "/consult/consultations/{consultation_id}/reports/mine/signature",
    methods=["POST"],
    auth="token",
    response=ReportView,
    summary="Sign the draft (SM2, the doctor's key): final; the last accepted invitee's completes the case",
    errors=(*_CASE, *_STATE, "NOT_A_PARTICIPANT", "REPORT_DRAFT_MISSING", "REPORT_ALREADY_SIGNED"),
)
def sign_report(consultation_id: str) -> ReportView:
    return wiring.service().sign_report(app.staff_actor(DOCTOR), consultation_id)


@app.route(
    "/consult/consultations/{consultation_id}/reports/mine/amendment",
    methods=["POST"],
    auth="token",
    request=ReportDraft,
    response=ReportView,
    summary="Amend a signed report: a new version, signed at once; earlier versions are kept",
    errors=(*_CASE, *_STATE, "NOT_A_PARTICIPANT", "REPORT_NOT_SIGNED"),
)
def amend_report(consultation_id: str) -> ReportView:
    return wiring.service().amend_report(app.staff_actor(DOCTOR), consultation_id, app.body(ReportDraft))


@app.route(
    "/consult/consultations/{consultation_id}/fhir",
    methods=["GET"],
    auth="token",
    summary="FHIR R4 Bundle: ServiceRequest, Task (four states), Appointment, a DiagnosticReport per doctor",
    errors=_CASE,
)
def fhir_export(consultation_id: str) -> dict[str, Any]:
    item, patient, signed = wiring.service().raw(app.staff_actor(DOCTOR), consultation_id)
    return fhir.bundle(item, patient, signed)


# ---------------------------------------------------------------- events and schedules


@app.on_sqs_message(queue="consult-attachments", batch_size=5)
def check_attachment(event: Any) -> dict[str, Any]:
    """S3 -> queue: check each uploaded attachment (type, size, malware, SHA-256)."""
    from bianjie.kit import deps

    service = wiring.service()

    def one(message: batch.SqsMessage) -> None:
        S3Notification.model_validate_json(message.body)  # a malformed body is poison (dead-lettered at once)
        for ref in s3events.object_refs(message.body):
            if ref.event_name.startswith("ObjectCreated"):
                service.check_object(ref.key)

    return batch.process_partial_response(event, one, dead_letters=deps.dead_letters("CONSULT_ATTACHMENTS_DLQ_URL"))


@app.lambda_function(name="sweep")
def sweep(event: dict[str, Any], context: Any) -> dict[str, int]:
    return wiring.service().sweep(scheduled_time(event))


@app.lambda_function(name="relay_outbox")
def relay_outbox(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Publish consult events whose send right after their commit never happened."""
    return wiring.outbox().relay()
