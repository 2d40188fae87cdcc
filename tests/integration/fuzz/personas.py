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
CONSULT_ADMIN = Persona("fuzz-consult-admin", "staff", ("consult-admin",), "platform")

# operationId -> persona, for token operations that are not the patient's own
STAFF_OPERATIONS: dict[str, Persona] = {
    "HealthDetailFunction.get_health_detail": OPERATOR,
    "GuideOutboxFunction.get_outbox": GUIDE_OPERATOR,
    "RxDocumentFunction.signing_material": DOCTOR,
    "RxSignFunction.sign": DOCTOR,
    "RxRevokeFunction.revoke": DOCTOR,
    "RxReviewFunction.review": PHARMACIST,
}
# consult: platform staff administer scope; every other token route is a doctor's
STAFF_OPERATIONS |= {
    f"Consult{fn}Function.{view}": CONSULT_ADMIN
    for fn, view in (
        ("AgreementCreate", "create_agreement"),
        ("AgreementList", "list_agreements"),
        ("AgreementUpdate", "update_agreement"),
        ("CredentialPut", "put_credential"),
        ("CredentialList", "list_credentials"),
    )
}
STAFF_OPERATIONS |= {
    f"Consult{fn}Function.{view}": DOCTOR
    for fn, view in (
        ("Colleagues", "colleagues"),
        ("Apply", "apply"),
        ("List", "list_consultations"),
        ("Get", "get_consultation"),
        ("Consent", "record_consent"),
        ("Invitees", "change_invitees"),
        ("Attachment", "request_upload"),
        ("Submit", "submit"),
        ("Cancel", "cancel"),
        ("Respond", "respond"),
        ("Join", "join"),
        ("Leave", "leave"),
        ("End", "end"),
        ("ReportSave", "save_report"),
        ("ReportSign", "sign_report"),
        ("ReportAmend", "amend_report"),
        ("Fhir", "fhir_export"),
    )
}

PERSONAS = (PATIENT, DOCTOR, PHARMACIST, GUIDE_OPERATOR, OPERATOR, CONSULT_ADMIN)


def persona_for(operation_id: str) -> Persona:
    return STAFF_OPERATIONS.get(operation_id, PATIENT)
