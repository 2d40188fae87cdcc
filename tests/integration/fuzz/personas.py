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
NAV_ADMIN = Persona("fuzz-nav-admin", "staff", ("nav-admin",), "demo-hospital")

# operationId -> persona, for token operations that are not the patient's own
STAFF_OPERATIONS: dict[str, Persona] = {
    "HealthDetailFunction.get_health_detail": OPERATOR,
    "GuideOutboxFunction.get_outbox": GUIDE_OPERATOR,
    "RxDocumentFunction.signing_material": DOCTOR,
    "RxSignFunction.sign": DOCTOR,
    "RxRevokeFunction.revoke": DOCTOR,
    "RxReviewFunction.review": PHARMACIST,
    "WayfindingImportFunction.post_import": NAV_ADMIN,
    "WayfindingExportFunction.get_archive": NAV_ADMIN,
    "WayfindingPublishFunction.post_publish": NAV_ADMIN,
    "WayfindingPoisFunction.get_pois": NAV_ADMIN,
    "WayfindingPoiUpdateFunction.patch_poi": NAV_ADMIN,
    "WayfindingTagRenameFunction.post_tag_rename": NAV_ADMIN,
    "WayfindingPoiCsvFunction.get_pois_csv": NAV_ADMIN,
    "WayfindingPoiGeojsonFunction.get_pois_geojson": NAV_ADMIN,
    "WayfindingPoiImportFunction.post_pois_import": NAV_ADMIN,
    "WayfindingOperationsFunction.get_operations": NAV_ADMIN,
}

PERSONAS = (PATIENT, DOCTOR, PHARMACIST, GUIDE_OPERATOR, OPERATOR, NAV_ADMIN)


def persona_for(operation_id: str) -> Persona:
    return STAFF_OPERATIONS.get(operation_id, PATIENT)
