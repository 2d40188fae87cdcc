"""Accompanied visits (云陪诊): the patient invites a companion for one visit (SMS, link, QR code), the
companion proves the phone and the invitation code and follows the visit in the escort room, the
patient revokes. guide's progress events come in from a queue. See docs/escort.md."""

from __future__ import annotations

from typing import Any

from bianjie.contracts import REGISTRY
from bianjie.contracts.guide import GuideVisitProgressedV1
from bianjie.escort.model import (
    CompanionList,
    EscortOutboxAnswer,
    EscortOutboxQuery,
    HandleRequest,
    InvitationAnswer,
    InvitationPreview,
    InviteAnswer,
    InviteRequest,
    JoinAnswer,
    JoinRequest,
    OtpAnswer,
    OtpRequest,
    Room,
)
from bianjie.escort.wiring import escort_service
from bianjie.kit import batch, deps, events
from bianjie.kit.config import env
from bianjie.kit.signing import header_value
from bianjie.kit.web import ServiceApp, json_response

app = ServiceApp("escort")
OPERATOR_ROLES = ("escort-operator", "developer")
NO_REFERRER = {"Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _base_url() -> str:
    configured = env("ESCORT_BASE_URL")
    if configured:
        return configured
    headers = {k.lower(): v for k, v in (app.current_request.headers or {}).items()}
    return f"{headers.get('x-forwarded-proto', 'http')}://{headers.get('host', 'localhost')}"


def _session() -> str | None:
    return header_value(app.current_request.headers, "X-Escort-Session")


# -- the patient --------------------------------------------------------------------------------------


@app.route(
    "/escort/invitations",
    methods=["POST"],
    auth="token",
    request=InviteRequest,
    response=InviteAnswer,
    status=201,
    summary="Invite a companion to one open visit (SMS, link, QR code; the invitation code is shown once)",
    errors=("VISIT_NOT_FOUND", "VISIT_NOT_YOURS", "VISIT_CLOSED", "TOO_MANY_COMPANIONS"),
)
def post_invitation() -> Any:
    actor = app.patient_actor()
    return escort_service().invite(actor, app.body(InviteRequest), _base_url())


@app.route(
    "/escort/visits/{visit_id}/companions",
    methods=["GET"],
    auth="token",
    response=CompanionList,
    summary="Who the patient invited to a visit, and who is in the room",
    errors=("VISIT_NOT_FOUND", "VISIT_NOT_YOURS"),
)
def get_companions(visit_id: str) -> CompanionList:
    return escort_service().companions(app.patient_actor(), visit_id)


@app.route(
    "/escort/invitations/{invitation_id}/revoke",
    methods=["POST"],
    auth="token",
    response=InvitationAnswer,
    summary="Revoke an invitation or a companion's access, effective on the companion's next request",
    errors=("INVITATION_NOT_FOUND", "INVITATION_NOT_REVOCABLE"),
)
def post_revoke(invitation_id: str) -> InvitationAnswer:
    return escort_service().revoke(app.patient_actor(), invitation_id)


@app.route(
    "/escort/invitations/{invitation_id}/consent",
    methods=["GET"],
    auth="token",
    summary="The consent as a FHIR R4 Consent with the companion as a contained RelatedPerson",
    errors=("INVITATION_NOT_FOUND",),
)
def get_consent(invitation_id: str) -> Any:
    resource = escort_service().consent(app.patient_actor(), invitation_id)
    return json_response(200, resource, {"Content-Type": "application/fhir+json; charset=utf-8"})


# -- the companion ------------------------------------------------------------------------------------
# The link's handle rides in the URL fragment (never sent to a server, never in an access log) and is
# posted in the body; the session rides in a header.


@app.route(
    "/escort/join/preview",
    methods=["POST"],
    request=HandleRequest,
    response=InvitationPreview,
    summary="What the join page shows for a link: who is invited, where (before any factor)",
    errors=(
        "INVITATION_NOT_FOUND",
        "INVITATION_USED",
        "INVITATION_LOCKED",
        "INVITATION_EXPIRED",
        "INVITATION_REVOKED",
        "INVITATION_ENDED",
    ),
)
def post_preview() -> Any:
    answer = escort_service().preview(app.origin(), app.body(HandleRequest))
    return json_response(200, answer.model_dump(mode="json"), NO_REFERRER)


@app.route(
    "/escort/join/otp",
    methods=["POST"],
    request=OtpRequest,
    response=OtpAnswer,
    status=202,
    summary="Send a phone code to the invited number (the same answer for any number)",
    errors=(
        "INVITATION_NOT_FOUND",
        "INVITATION_USED",
        "INVITATION_LOCKED",
        "INVITATION_EXPIRED",
        "INVITATION_REVOKED",
        "INVITATION_ENDED",
        "OTP_RATE_LIMITED",
    ),
)
def post_otp() -> Any:
    return escort_service().request_otp(app.origin(), app.body(OtpRequest))


@app.route(
    "/escort/join",
    methods=["POST"],
    request=JoinRequest,
    response=JoinAnswer,
    status=201,
    summary="Join with the phone code and the invitation code: a 15-minute companion session",
    errors=(
        "INVITATION_NOT_FOUND",
        "INVITATION_USED",
        "INVITATION_LOCKED",
        "INVITATION_EXPIRED",
        "INVITATION_REVOKED",
        "INVITATION_ENDED",
        "OTP_EXPIRED",
        "OTP_WRONG",
        "OTP_TRIES_EXHAUSTED",
        "INVITATION_CODE_WRONG",
        "INVITATION_BUSY",
    ),
)
def post_join() -> Any:
    return escort_service().join(app.origin(), app.body(JoinRequest))


@app.route(
    "/escort/room",
    methods=["GET"],
    response=Room,
    summary="The escort room (陪诊室): the visit's progress and what the patient shared (X-Escort-Session)",
    errors=("SESSION_INVALID", "GRANT_REVOKED", "GRANT_ENDED"),
)
def get_room() -> Any:
    room = escort_service().room(app.origin(), _session())
    return json_response(200, room.model_dump(mode="json"), NO_REFERRER)


# -- operators ----------------------------------------------------------------------------------------


@app.route(
    "/escort/outbox",
    methods=["GET"],
    auth="token",
    query=EscortOutboxQuery,
    response=EscortOutboxAnswer,
    summary="What the local SMS stand-in delivered today (operators, developers)",
)
def get_outbox() -> EscortOutboxAnswer:
    actor = app.staff_actor(*OPERATOR_ROLES)
    query = app.query(EscortOutboxQuery)
    return EscortOutboxAnswer(messages=escort_service().standin_outbox(actor, query.limit))  # type: ignore[arg-type]


# -- guide's events -----------------------------------------------------------------------------------


@app.lambda_function(name="on_guide_event")
def on_guide_event(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """guide.visit_progressed from escort's subscribed queue; what does not validate goes to the DLQ."""
    service = escort_service()

    def one(message: batch.SqsMessage) -> str:
        envelope, data = events.read(message.body, REGISTRY)
        if isinstance(data, GuideVisitProgressedV1):
            return service.on_progress(data, envelope.time)
        return "ignored"

    return batch.process_partial_response(
        event, one, dead_letters=deps.dead_letters("ESCORT_GUIDE_EVENTS_DLQ"), name="escort.guide_events"
    )
