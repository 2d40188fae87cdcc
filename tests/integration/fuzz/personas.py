"""Who the fuzzer is when it calls an operation: partner-signed operations are signed with the demo
hospital's key, token operations get the token of the persona the handler checks for, so handlers are
fuzzed and not only the authentication layer.

A new token operation whose handler wants something other than a patient adds its operationId here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Persona:
    subject: str
    kind: str
    roles: tuple[str, ...]
    hospital: str | None = None


PATIENT = Persona("fuzz-patient", "patient", ("patient",))
DOCTOR = Persona("fuzz-doctor", "staff", ("doctor",), "demo-hospital")
PHARMACIST = Persona("fuzz-pharmacist", "staff", ("pharmacist",), "demo-pharmacy")
GUIDE_OPERATOR = Persona("fuzz-guide-operator", "staff", ("guide-operator",), "demo-hospital")
OPERATOR = Persona("fuzz-operator", "staff", ("operator",), "platform")
CONTENT_STAFF = Persona("fuzz-content-staff", "staff", ("editor", "reviewer", "chief-editor"), "ruijin")
PARTY_ADMIN = Persona("fuzz-party-admin", "staff", ("party-admin", "party-member"), "centre")

# operationId -> persona, for token operations that are not the patient's own
STAFF_OPERATIONS: dict[str, Persona] = {
    "HealthDetailFunction.get_health_detail": OPERATOR,
    "GuideOutboxFunction.get_outbox": GUIDE_OPERATOR,
    "RxDocumentFunction.signing_material": DOCTOR,
    "RxSignFunction.sign": DOCTOR,
    "RxRevokeFunction.revoke": DOCTOR,
    "RxReviewFunction.review": PHARMACIST,
    "ContentArticlesFunction.create_article": CONTENT_STAFF,
    "ContentReviseFunction.revise_article": CONTENT_STAFF,
    "ContentVideosFunction.create_video": CONTENT_STAFF,
    "ContentItemFunction.get_item": CONTENT_STAFF,
    "ContentItemFunction.review_queue": CONTENT_STAFF,
    "ContentWorkflowFunction.submit_item": CONTENT_STAFF,
    "ContentWorkflowFunction.review_item": CONTENT_STAFF,
    "ContentWorkflowFunction.withdraw_item": CONTENT_STAFF,
    "ContentSourcesFunction.put_source": CONTENT_STAFF,
    "ContentSourcesFunction.list_sources": CONTENT_STAFF,
    "ContentPartyFunction.put_member": PARTY_ADMIN,
    "ContentPartyFunction.get_member": PARTY_ADMIN,
    "ContentPartyFunction.publish_activity": PARTY_ADMIN,
    "ContentPartyFunction.list_activities": PARTY_ADMIN,
    "ContentPartyFunction.sign_up": PARTY_ADMIN,
    "ContentPartyFunction.attend": PARTY_ADMIN,
}

PERSONAS = (PATIENT, DOCTOR, PHARMACIST, GUIDE_OPERATOR, OPERATOR, CONTENT_STAFF, PARTY_ADMIN)


def persona_for(operation_id: str) -> Persona:
    return STAFF_OPERATIONS.get(operation_id, PATIENT)
