"""FHIR R4 export: a prescription as MedicationRequest resources (one per drug line, FHIR's grain, tied by
``groupIdentifier``) and its uses as MedicationDispense resources, in a ``collection`` Bundle.

Status mapping (NHSA -> FHIR R4 MedicationRequest.status):
precheck, signed -> draft; valid, released, authorized, reviewed -> active (also a dispensed reusable
prescription with uses left); review_rejected -> on-hold; dispensed (no use left) -> completed;
revoked -> cancelled; expired -> stopped (R4 has no "expired"; statusReason says 有效期已过).
A pharmacist's rejection is also a MedicationDispense with status "declined".
"""

from __future__ import annotations

import uuid
from typing import Any

from bianjie.rx.catalogue import Catalogue
from bianjie.rx.models import TIMES_PER_DAY
from bianjie.rx.repo import lifecycle_of

NHSA_DRUG = "urn:oid:1.2.156.112.1.1.6.1"  # placeholder OID for 医保药品分类与代码; see docs/rx.md
NHSA_RXNO = "urn:bianjie:nhsa:hi-rxno"
ATC = "http://www.whocc.no/atc"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
UCUM = "http://unitsofmeasure.org"
_NS = uuid.UUID("6f1c8f8e-6a49-4f39-9d43-1b0a2f5f9a10")


def _urn(kind: str, key: str) -> str:
    return f"urn:uuid:{uuid.uuid5(_NS, f'{kind}/{key}')}"


def request_status(item: dict[str, Any]) -> str:
    lc = lifecycle_of(item)
    status = item["status"]
    if status in ("precheck", "signed"):
        return "draft"
    if status == "review_rejected":
        return "on-hold"
    if status == "revoked":
        return "cancelled"
    if status == "expired":
        return "stopped"
    if status == "dispensed" and lc.finished:
        return "completed"
    return "active"


def _drug_concept(catalogue: Catalogue, med_code: str) -> dict[str, Any]:
    drug = catalogue.get(med_code)
    coding = [{"system": NHSA_DRUG, "code": med_code, "display": drug.name if drug else med_code}]
    if drug and drug.atc:
        coding.append({"system": ATC, "code": drug.atc})
    return {"coding": coding, "text": f"{drug.name} {drug.spec}" if drug else med_code}


def bundle(item: dict[str, Any], content: dict[str, Any], catalogue: Catalogue) -> dict[str, Any]:
    rx_id = item["rx_id"]
    lc = lifecycle_of(item)
    subject = {
        "identifier": {"system": "urn:bianjie:patient-ref", "value": item["patient_ref"]},
        "display": item["patient_masked"],
    }
    requester = {
        "identifier": {"system": "urn:bianjie:nhsa:dr-code", "value": item["doctor_code"]},
        "display": item["doctor_name"],
    }
    valid_end = states_iso(lc.valid_end)
    entries: list[dict[str, Any]] = []
    line_urls: dict[str, str] = {}
    for n, line in enumerate(content["drugs"], start=1):
        drug = catalogue.get(line["med_code"])
        unit = drug.unit if drug else "unit"
        request: dict[str, Any] = {
            "resourceType": "MedicationRequest",
            "id": f"{rx_id}-{n}",
            "identifier": [
                {"system": NHSA_RXNO, "value": item["hi_rxno"]},
                {"system": f"urn:bianjie:{item['hospital']}:hosp-rxno", "value": item["hosp_rxno"]},
            ],
            "status": request_status(item),
            "intent": "order",
            "groupIdentifier": {"system": NHSA_RXNO, "value": item["hi_rxno"]},
            "medicationCodeableConcept": _drug_concept(catalogue, line["med_code"]),
            "subject": subject,
            "encounter": {"identifier": {"system": "urn:bianjie:nhsa:mdtrt-id", "value": content["visit"]["visit_id"]}},
            "authoredOn": content["prescribed_at"],
            "requester": requester,
            "reasonCode": [
                {"coding": [{"system": ICD10, "code": d["code"], "display": d["name"]}]} for d in content["diagnoses"]
            ],
            "dosageInstruction": [
                {
                    "sequence": 1,
                    "text": f"{line['route']} 每次 {line['dose']:g}{unit} {line['frequency']}",
                    "timing": _timing(line["frequency"]),
                    "route": {"text": line["route"]},
                    "doseAndRate": [{"doseQuantity": {"value": line["dose"], "unit": unit}}],
                }
            ],
            "dispenseRequest": {
                "validityPeriod": {"start": content["prescribed_at"], "end": valid_end},
                "numberOfRepeatsAllowed": max(0, lc.max_uses - 1) if lc.reusable else 0,
                "quantity": {"value": line["quantity"], "unit": drug.pack_unit if drug else "pack"},
                "expectedSupplyDuration": {"value": line["days"], "unit": "d", "system": UCUM, "code": "d"},
            },
        }
        if item["status"] == "expired":
            request["statusReason"] = {"text": "有效期已过 (validity ended)"}
        if item["status"] == "revoked":
            request["statusReason"] = {"text": item.get("revoke_reason") or "医师撤销"}
        url = _urn("MedicationRequest", request["id"])
        line_urls[line["med_code"]] = url
        entries.append({"fullUrl": url, "resource": request})
    for dispense in item.get("dispenses", []):
        for k, got in enumerate(dispense["items"], start=1):
            drug = catalogue.get(got["med_code"])
            resource = {
                "resourceType": "MedicationDispense",
                "id": f"{rx_id}-u{dispense['use']}-{k}",
                "status": "completed",
                "medicationCodeableConcept": _drug_concept(catalogue, got["med_code"]),
                "subject": subject,
                "performer": [{"actor": {"identifier": {"system": "urn:bianjie:app-id", "value": dispense["by_org"]}}}],
                "authorizingPrescription": [
                    {"reference": line_urls.get(got["med_code"]) or next(iter(line_urls.values()))}
                ],
                "quantity": {"value": got["quantity"], "unit": drug.pack_unit if drug else "pack"},
                "whenHandedOver": dispense["settled_at"],
                "note": [{"text": f"{dispense['channel']} setl_id={dispense['setl_id']}"}],
            }
            if got.get("batch_no"):
                resource["note"].append({"text": f"batch {got['batch_no']}"})
            url = _urn("MedicationDispense", resource["id"])
            entries.append({"fullUrl": url, "resource": resource})
    review = item.get("review")
    if review and review.get("result") == "reject":
        resource = {
            "resourceType": "MedicationDispense",
            "id": f"{rx_id}-declined",
            "status": "declined",
            "statusReasonCodeableConcept": {"text": review.get("reason") or "药师审方未通过"},
            "medicationCodeableConcept": _drug_concept(catalogue, content["drugs"][0]["med_code"]),
            "subject": subject,
            "authorizingPrescription": [{"reference": url} for url in line_urls.values()],
        }
        entries.append({"fullUrl": _urn("MedicationDispense", resource["id"]), "resource": resource})
    return {"resourceType": "Bundle", "id": f"rx-{rx_id}", "type": "collection", "entry": entries}


def _timing(frequency: str) -> dict[str, Any]:
    if frequency == "prn":
        return {"code": {"text": "prn (as needed)"}}
    if frequency == "qw":
        return {"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}
    return {
        "repeat": {"frequency": int(TIMES_PER_DAY[frequency]), "period": 1, "periodUnit": "d"},
        "code": {"text": frequency},
    }


def states_iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
