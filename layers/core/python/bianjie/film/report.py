"""Reports (检查报告) that arrive as DICOM objects: Encapsulated PDF and Basic/Enhanced/Comprehensive SR.

Imported lazily with ``bianjie.film.dicom`` (pydicom). A report object is attached to its study instead
of becoming an image series:
- Encapsulated PDF: the document bytes (EncapsulatedDocument, 0042,0011) become a derived object;
- SR: the content tree is rendered to a small JSON structure (concept name, text value, children)
  the viewer turns into headings and paragraphs. Only text-like values are kept (TEXT, CODE, NUM,
  DATE/TIME/DATETIME, PNAME, UIDREF); images, waveforms and spatial coordinates are references the
  phone viewer cannot show.

The report text is patient data: it never reaches a log line or the catalog, only the derived bucket,
whose objects are read through presigned URLs from a link's manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset

from bianjie.film.dicom import PatientFacts, patient_facts, study_facts
from bianjie.film.errors import PermanentIngestError

ENCAPSULATED_PDF = "1.2.840.10008.5.1.4.1.1.104.1"
BASIC_TEXT_SR = "1.2.840.10008.5.1.4.1.1.88.11"
ENHANCED_SR = "1.2.840.10008.5.1.4.1.1.88.22"
COMPREHENSIVE_SR = "1.2.840.10008.5.1.4.1.1.88.33"
SR_CLASSES = {BASIC_TEXT_SR, ENHANCED_SR, COMPREHENSIVE_SR}
REPORT_CLASSES = SR_CLASSES | {ENCAPSULATED_PDF}
MAX_DEPTH = 8  # SR trees in practice are 3-4 deep; a cap keeps a malformed file from recursing forever
MAX_NODES = 2000

SIMPLE_VALUES = {"DATE": "Date", "TIME": "Time", "DATETIME": "DateTime", "UIDREF": "UID"}

# where a hospital's DICOM carries its visit (就诊) id, by the name a partner setting uses
VISIT_ID_TAGS = {
    "accession_number": "AccessionNumber",  # (0008,0050), when the hospital uses it as the visit id
    "requested_procedure_id": "RequestedProcedureID",  # (0040,1001)
    "admission_id": "AdmissionID",  # (0038,0010)
}


@dataclass
class Report:
    study_uid: str
    series_uid: str
    sop_uid: str
    kind: str  # pdf | sr
    title: str | None
    reported_at: str | None  # ISO date/time from ContentDate/Time, as the report states it
    patient: PatientFacts
    study: dict[str, Any]
    body: bytes  # the PDF, or the SR rendered as JSON (UTF-8)
    content_type: str
    visit_ids: dict[str, str]  # VISIT_ID_TAGS name -> value found in the object


def is_report(ds: Dataset) -> bool:
    return str(ds.get("SOPClassUID", "")) in REPORT_CLASSES


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value).strip() or None


def _when(ds: Dataset) -> str | None:
    date = _text(ds.get("ContentDate")) or _text(ds.get("StudyDate"))
    if not date or len(date) < 8:
        return None
    out = f"{date[:4]}-{date[4:6]}-{date[6:8]}"
    time = _text(ds.get("ContentTime"))
    if time and len(time) >= 4:
        out += f" {time[:2]}:{time[2:4]}"
    return out


def _meaning(seq: Any) -> str | None:
    if seq and len(seq):
        return _text(seq[0].get("CodeMeaning"))
    return None


def _value(item: Dataset) -> str | None:
    kind = str(item.get("ValueType", ""))
    if kind == "TEXT":
        return _text(item.get("TextValue"))
    if kind == "CODE":
        return _meaning(item.get("ConceptCodeSequence"))
    if kind == "NUM":
        measured = item.get("MeasuredValueSequence")
        if measured and len(measured):
            number = _text(measured[0].get("NumericValue"))
            unit = _meaning(measured[0].get("MeasurementUnitsCodeSequence"))
            return f"{number} {unit}".strip() if number and unit and unit != "no units" else number
        return None
    if kind == "PNAME":
        name = item.get("PersonName")
        return str(name).replace("^", "").strip() if name else None
    if kind in SIMPLE_VALUES:
        return _text(item.get(SIMPLE_VALUES[kind]))
    return None


def content_tree(ds: Dataset) -> list[dict[str, Any]]:
    """The SR content items as ``[{"name", "value", "children"}]``, text-like values only."""
    count = 0

    def walk(items: Any, depth: int) -> list[dict[str, Any]]:
        nonlocal count
        out: list[dict[str, Any]] = []
        for item in items or []:
            if count >= MAX_NODES:
                break
            count += 1
            children = walk(item.get("ContentSequence"), depth + 1) if depth < MAX_DEPTH else []
            name, value = _meaning(item.get("ConceptNameCodeSequence")), _value(item)
            if value is None and not children:
                continue
            node: dict[str, Any] = {"name": name, "value": value}
            if children:
                node["children"] = children
            out.append(node)
        return out

    return walk(ds.get("ContentSequence"), 0)


def derive_report(ds: Dataset) -> Report:
    sop_class = str(ds.get("SOPClassUID", ""))
    title: str | None
    if sop_class == ENCAPSULATED_PDF:
        doc = ds.get("EncapsulatedDocument")
        if not doc:
            raise PermanentIngestError("EMPTY_REPORT", "the encapsulated PDF has no document")
        body = bytes(doc)
        length = ds.get("EncapsulatedDocumentLength")
        if length:
            body = body[: int(length)]  # drop the even-length pad byte
        elif body.endswith(b"\0"):
            body = body.rstrip(b"\0")
        if not body.startswith(b"%PDF"):
            raise PermanentIngestError("NOT_PDF", "the encapsulated document is not a PDF")
        kind, content_type = "pdf", "application/pdf"
        title = _text(ds.get("DocumentTitle")) or _meaning(ds.get("ConceptNameCodeSequence"))
    elif sop_class in SR_CLASSES:
        tree = content_tree(ds)
        if not tree:
            raise PermanentIngestError("EMPTY_REPORT", "the structured report has no text content")
        title = _meaning(ds.get("ConceptNameCodeSequence"))
        kind, content_type = "sr", "application/json; charset=utf-8"
        body = json.dumps(
            {"kind": "sr", "title": title, "reported_at": _when(ds), "content": tree}, ensure_ascii=False
        ).encode()
    else:
        raise PermanentIngestError("NOT_A_REPORT", f"SOP class {sop_class} is not a report")
    visit_ids = {name: v for name, tag in VISIT_ID_TAGS.items() if (v := _text(ds.get(tag)))}
    return Report(
        study_uid=str(ds.StudyInstanceUID),
        series_uid=str(ds.SeriesInstanceUID),
        sop_uid=str(ds.SOPInstanceUID),
        kind=kind,
        title=title,
        reported_at=_when(ds),
        patient=patient_facts(ds),
        study=study_facts(ds),
        body=body,
        content_type=content_type,
        visit_ids=visit_ids,
    )
