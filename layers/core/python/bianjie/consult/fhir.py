"""FHIR R4 export of a consultation, a ``collection`` Bundle:

- ServiceRequest: the request for the MDT (requester = the applicant, performer = the invitees,
  reasonCode = the purpose, supportingInfo = the visit records); status draft | active | completed |
  revoked.
- Task: the workflow (status + ``businessStatus`` carrying 待会诊 / 会诊中 / 待报告 / 已完成):
  draft -> draft, scheduled -> accepted, in_progress and awaiting_report -> in-progress,
  completed -> completed, cancelled -> cancelled.
- Appointment: the slot and each participant's answer (needs-action / accepted / declined).
- DiagnosticReport: one per doctor's signed report version that is current (final or amended).

Validated with ``fhir.resources`` (R4B) in the tests, as rx's export is.
"""

from __future__ import annotations

import uuid
from typing import Any

from bianjie.consult.models import STATUS_ZH

_NS = uuid.UUID("0b8f5a4e-52d1-4c53-9f0e-6a3f1b2c7d11")
STAFF = "urn:bianjie:staff"
CASE = "urn:bianjie:consult:case"
BUSINESS = "urn:bianjie:consult:status"

TASK_STATUS = {
    "draft": "draft",
    "scheduled": "accepted",
    "in_progress": "in-progress",
    "awaiting_report": "in-progress",
    "completed": "completed",
    "cancelled": "cancelled",
}
REQUEST_STATUS = {"draft": "draft", "completed": "completed", "cancelled": "revoked"}
APPOINTMENT_STATUS = {
    "draft": "proposed",
    "scheduled": "booked",
    "in_progress": "arrived",
    "awaiting_report": "fulfilled",
    "completed": "fulfilled",
    "cancelled": "cancelled",
}
ANSWER = {"needs_action": "needs-action", "accepted": "accepted", "declined": "declined"}


def _urn(kind: str, key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, f'{kind}/{key}')}"


def _doctor(p: dict[str, Any]) -> dict[str, Any]:
    return {"identifier": {"system": STAFF, "value": f"{p['org']}/{p['doctor_code']}"}, "display": p["name"]}


def bundle(item: dict[str, Any], patient: dict[str, Any], signed: list[dict[str, Any]]) -> dict[str, Any]:
    cid = item["consultation_id"]
    status = item["status"]
    subject = {
        "identifier": {"system": "urn:bianjie:patient-ref", "value": item["patient_ref"]},
        "display": item["patient_masked"],
    }
    ident = [{"system": CASE, "value": cid}]
    request_url = _urn("ServiceRequest", cid)
    end = item["slot_end"]
    from bianjie.kit.timefmt import utc_iso

    start_iso, end_iso = item["start"], utc_iso(end, "seconds")
    request = {
        "resourceType": "ServiceRequest",
        "identifier": ident,
        "status": REQUEST_STATUS.get(status, "active"),
        "intent": "order",
        "category": [{"text": "多学科会诊 (MDT)"}],
        "code": {"text": "MDT consultation 多学科会诊"},
        "subject": subject,
        "authoredOn": item["created_at"],
        "requester": _doctor(item["applicant"]),
        "performer": [_doctor(p) for p in item["participants"]],
        "reasonCode": [{"text": item["purpose"]}],
        "occurrencePeriod": {"start": start_iso, "end": end_iso},
    }
    task = {
        "resourceType": "Task",
        "identifier": ident,
        "status": TASK_STATUS[status],
        "businessStatus": {"coding": [{"system": BUSINESS, "code": status, "display": STATUS_ZH[status]}]},
        "intent": "order",
        "basedOn": [{"reference": request_url}],
        "for": subject,
        "requester": _doctor(item["applicant"]),
        "owner": _doctor(item["applicant"]),
        "authoredOn": item["created_at"],
        "lastModified": item["history"][-1]["at"],
    }
    appointment = {
        "resourceType": "Appointment",
        "identifier": ident,
        "status": APPOINTMENT_STATUS[status],
        "start": start_iso,
        "end": end_iso,
        "minutesDuration": int(item["duration_min"]),
        "basedOn": [{"reference": request_url}],
        "participant": [
            {"actor": _doctor(item["applicant"]), "status": "accepted", "required": "required"},
            *(
                {"actor": _doctor(p), "status": ANSWER.get(p["answer"], "needs-action"), "required": "required"}
                for p in item["participants"]
            ),
        ],
    }
    resources: list[dict[str, Any]] = [request, task, appointment]
    latest: dict[str, dict[str, Any]] = {}
    for row in signed:
        key = f"{row['org']}/{row['doctor_code']}"
        if key not in latest or int(row["version"]) > int(latest[key]["version"]):
            latest[key] = row
    names = {f"{p['org']}/{p['doctor_code']}": p for p in item["participants"]}
    for key, row in sorted(latest.items()):
        who = names.get(key, {"org": row["org"], "doctor_code": row["doctor_code"], "name": key})
        resources.append(
            {
                "resourceType": "DiagnosticReport",
                "identifier": [{"system": f"{CASE}:report", "value": f"{cid}/{key}/{int(row['version'])}"}],
                "basedOn": [{"reference": request_url}],
                "status": "final" if row["status"] == "final" else "amended",
                "code": {"text": "会诊诊断报告"},
                "subject": subject,
                "issued": row["signed_at"],
                "performer": [_doctor(who)],
                "conclusion": row["opinion"],
            }
        )
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": _urn(r["resourceType"], f"{cid}/{i}"), "resource": r} for i, r in enumerate(resources)],
    }
