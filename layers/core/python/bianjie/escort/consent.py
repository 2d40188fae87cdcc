"""The patient's consent as a FHIR R4 Consent, with the companion as a contained RelatedPerson.

What it says: the patient (``Consent.patient``, guide's patient id) permits the companion
(``provision.actor`` with role "companion") to see the visit (``provision.data`` the Encounter) for the
grant's period, and which classes of data (progress always; reports, prescriptions, video if shared).
"""

from __future__ import annotations

from typing import Any

from bianjie.escort.model import RELATION_LABELS, Status
from bianjie.kit.timefmt import utc_iso

_RELATION_CODES = {  # HL7 v3 RoleCode (personal relationship)
    "spouse": "SPS",
    "child": "CHILD",
    "parent": "PRN",
    "sibling": "SIB",
    "relative": "FAMMEMB",
    "friend": "FRND",
    "caregiver": "NBOR",
    "other": "FAMMEMB",
}
_STATE = {
    Status.PENDING: "draft",
    Status.ACTIVE: "active",
    Status.LOCKED: "rejected",
    Status.EXPIRED: "inactive",
    Status.REVOKED: "inactive",
    Status.ENDED: "inactive",
}


def consent_resource(inv: dict[str, Any], status: Status, *, name: str, phone: str) -> dict[str, Any]:
    scope = inv.get("scope") or {}
    classes = [{"system": "https://bianjie.example/escort/data", "code": "progress", "display": "就诊进度"}]
    for key, label in (("reports", "检查检验报告"), ("prescriptions", "处方"), ("video", "视频问诊")):
        if scope.get(key):
            classes.append({"system": "https://bianjie.example/escort/data", "code": key, "display": label})
    relation = str(inv.get("relation", "other"))
    return {
        "resourceType": "Consent",
        "id": inv["invitation_id"],
        "status": _STATE[status],
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": f"Patient/{inv['patient_id']}"},
        "dateTime": inv["created_at"],
        "contained": [
            {
                "resourceType": "RelatedPerson",
                "id": "companion",
                "patient": {"reference": f"Patient/{inv['patient_id']}"},
                "relationship": [
                    {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                "code": _RELATION_CODES.get(relation, "FAMMEMB"),
                            }
                        ],
                        "text": RELATION_LABELS.get(relation, relation),
                    }
                ],
                "name": [{"text": name}],
                "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
            }
        ],
        "policyRule": {"text": "云陪诊：患者授权陪诊人查看本次就诊进度及所勾选的内容"},
        "provision": {
            "type": "permit",
            "period": {"start": inv["created_at"], "end": utc_iso(float(inv["valid_until"]))},
            "actor": [
                {
                    "role": {
                        "coding": [
                            {"system": "https://bianjie.example/escort/role", "code": "companion", "display": "陪诊人"}
                        ]
                    },
                    "reference": {"reference": "#companion"},
                }
            ],
            "class": classes,
            "data": [{"meaning": "instance", "reference": {"reference": f"Encounter/{inv['inv_visit']}"}}],
        },
    }
