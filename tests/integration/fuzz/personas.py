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
# the centre's film administrator: holds film-admin for every hospital without a registry grant
FILM_ADMIN = Persona("fuzz-film-admin", "staff", ("film-admin",), "platform")

# operationId -> persona, for token operations that are not the patient's own
STAFF_OPERATIONS: dict[str, Persona] = {
    "HealthDetailFunction.get_health_detail": OPERATOR,
    "GuideOutboxFunction.get_outbox": GUIDE_OPERATOR,
    "RxDocumentFunction.signing_material": DOCTOR,
    "RxSignFunction.sign": DOCTOR,
    "RxRevokeFunction.revoke": DOCTOR,
    "RxReviewFunction.review": PHARMACIST,
    "FilmAdminStaffListFunction.admin_list_staff": FILM_ADMIN,
    "FilmAdminStaffPutFunction.admin_put_staff": FILM_ADMIN,
    "FilmAdminStaffDeleteFunction.admin_delete_staff": FILM_ADMIN,
    "FilmAdminAccessGetFunction.admin_get_access": FILM_ADMIN,
    "FilmAdminAccessPutFunction.admin_put_access": FILM_ADMIN,
    "FilmAdminPartnerGetFunction.admin_get_partner": FILM_ADMIN,
    "FilmAdminPartnerPutFunction.admin_put_partner": FILM_ADMIN,
    "FilmAdminChangesFunction.admin_changes": FILM_ADMIN,
    "FilmAdminProblemsFunction.admin_study_problems": FILM_ADMIN,
}

PERSONAS = (PATIENT, DOCTOR, PHARMACIST, GUIDE_OPERATOR, OPERATOR, FILM_ADMIN)


def persona_for(operation_id: str) -> Persona:
    return STAFF_OPERATIONS.get(operation_id, PATIENT)
