"""DICOMweb for partners (DICOM PS3.18): QIDO-RS search, WADO-RS retrieval, STOW-RS store.

Read side (``DicomWeb``) answers from the catalog (study, series and instance rows) and the derived bucket
(frames, previews), scoped to what the caller may see: a partner app its ``film.hospitals`` setting (its
own id by default, ``["*"]`` for the 医联 platform), a staff token its hospital. A study of another
hospital is answered as unknown (404), never as forbidden, so its existence does not leak.

Write side (``Stow``) takes a ``multipart/related; type="application/dicom"`` body, checks every part on
its own and puts the good ones into the ingest bucket under ``{hospital}/stow/...``, where the S3 drop
puts files: the same notification, queue and ingest follow. Refused parts are listed in the answer's
FailedSOPSequence with the standard reasons (0xC000 cannot understand: not DICOM; 0xA900 data set does
not match: no UIDs, or another study than the URL names; 0xA700 out of resources: the store failed).

Media types are DICOMweb's: ``application/dicom+json`` (search, metadata, store answer),
``multipart/related; type="application/octet-stream"`` (frames, explicit VR little endian pixels),
``multipart/related; type="application/dicom"`` (instances), ``image/jpeg`` (rendered).
"""

from __future__ import annotations

import gzip
import json
import re
import secrets
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import RootModel

from bianjie.film import layout
from bianjie.film.catalog import Catalog
from bianjie.kit.actor import Actor
from bianjie.kit.errors import AppError, BadRequest, Forbidden, NotFound, PayloadTooLarge, UnsupportedMediaType
from bianjie.kit.objects import ObjectStore

MEDIA_JSON = "application/dicom+json"
FRAME_SYNTAX = "1.2.840.10008.1.2.1"  # explicit VR little endian: what frames/{n} hold
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
SCAN_MAX = 5000  # study rows a search reads at most before it answers what it found
# Lambda answers at most 6 MB, base64-encoded for binary: ~4.4 MB of body
MAX_RESPONSE_BYTES = 4_000_000
MAX_STORE_BYTES = 4_500_000  # API Gateway's and Lambda's request limits (base64 as well)

FAIL_OUT_OF_RESOURCES = 0xA700
FAIL_DATASET_MISMATCH = 0xA900
FAIL_CANNOT_UNDERSTAND = 0xC000

STUDY_KEYS = {
    "StudyInstanceUID": "0020000D",
    "PatientID": "00100020",
    "PatientName": "00100010",
    "StudyDate": "00080020",
    "StudyTime": "00080030",
    "AccessionNumber": "00080050",
    "ModalitiesInStudy": "00080061",
    "StudyDescription": "00081030",
}
SERIES_KEYS = {
    "SeriesInstanceUID": "0020000E",
    "Modality": "00080060",
    "SeriesNumber": "00200011",
    "SeriesDescription": "0008103E",
}
INSTANCE_KEYS = {
    "SOPInstanceUID": "00080018",
    "SOPClassUID": "00080016",
    "InstanceNumber": "00200013",
}
CONTROL_KEYS = {"limit", "offset", "includefield", "fuzzymatching"}
_BY_TAG = {tag: name for keys in (STUDY_KEYS, SERIES_KEYS, INSTANCE_KEYS) for name, tag in keys.items()}
# not only valid UIDs: a file with a malformed one is accepted and recorded (dicom.problems)
_UID = re.compile(r"^[0-9A-Za-z._-]{1,128}$")


def not_found(what: str = "study") -> AppError:
    return NotFound(f"no such {what} for this caller (it may not be ingested yet)", code=f"{what.upper()}_NOT_FOUND")


# -- who may see what -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """The hospitals a caller may read (``*``: every hospital) and the actor audit records name."""

    actor: Actor
    hospitals: tuple[str, ...]

    @property
    def everywhere(self) -> bool:
        return "*" in self.hospitals

    def sees(self, hospital: str | None) -> bool:
        return self.everywhere or (hospital is not None and hospital in self.hospitals)


def scope_of(actor: Actor) -> Scope:
    if actor.kind == "partner":
        hospitals = actor.setting("film", "hospitals", [actor.id]) or [actor.id]
        return Scope(actor, tuple(str(h) for h in hospitals))
    return Scope(actor, (actor.org,) if actor.org else ())


# -- query matching (PS3.4 C.2.2.2) ---------------------------------------------------------------------


@dataclass
class Query:
    filters: dict[str, str]
    limit: int
    offset: int
    unsupported: list[str] = field(default_factory=list)

    def warning(self) -> str | None:
        if not self.unsupported:
            return None
        return f'299 bianjie "The following attributes are not supported as query keys: {", ".join(self.unsupported)}"'


def parse_query(params: Mapping[str, str], allowed: Iterable[str]) -> Query:
    keys = set(allowed)
    filters: dict[str, str] = {}
    unsupported: list[str] = []
    limit, offset = DEFAULT_LIMIT, 0
    for raw, value in params.items():
        name = _BY_TAG.get(raw.upper(), raw)
        if raw in ("limit", "offset"):
            if not value.isdigit():
                raise BadRequest(f"{raw} must be a whole number", code="INVALID_PARAMETER")
            if raw == "limit":
                limit = max(1, min(int(value), MAX_LIMIT))
            else:
                offset = int(value)
        elif raw in CONTROL_KEYS:
            continue  # includefield: we answer every attribute we hold; fuzzymatching: exact PS3.4 rules
        elif name in keys:
            if value != "":
                filters[name] = value
        else:
            unsupported.append(raw)
    return Query(filters, limit, offset, unsupported)


def _uid_list(value: str) -> list[str]:
    return [v.strip() for v in re.split(r"[\\,]", value) if v.strip()]


def matches(name: str, want: str, have: Any) -> bool:
    """One attribute's match: UID list, date/time range, wildcard (``*`` ``?``) or single value; a
    multi-valued attribute matches when any value does. Person names match case-insensitively."""
    values = [str(v) for v in (have if isinstance(have, list) else [have]) if v not in (None, "")]
    if name.endswith("UID"):
        wanted = set(_uid_list(want))
        return any(v in wanted for v in values)
    if name in ("StudyDate", "StudyTime") and "-" in want:
        low, _, high = want.partition("-")
        return any((not low or v >= low) and (not high or v[: len(high)] <= high) for v in values)
    if name == "PatientName":
        values = [v.lower() for v in values]
        want = want.lower().replace("^", " ")
        values = [v.replace("^", " ") for v in values]
    if "*" in want or "?" in want:
        pattern = re.escape(want).replace(r"\*", ".*").replace(r"\?", ".")
        return any(re.fullmatch(pattern, v, re.DOTALL) for v in values)
    return any(v == want for v in values)


def _el(vr: str, *values: Any) -> dict[str, Any]:
    present = [v for v in values if v not in (None, "")]
    return {"vr": vr, "Value": present} if present else {"vr": vr}


def _pn(name: str | None) -> dict[str, Any]:
    return {"vr": "PN", "Value": [{"Alphabetic": name}]} if name else {"vr": "PN"}


# -- multipart ------------------------------------------------------------------------------------------


def multipart(parts: Sequence[bytes], part_type: str, *, type_params: str = "") -> tuple[str, bytes]:
    """``(Content-Type, body)`` of a ``multipart/related`` answer whose parts are all ``part_type``."""
    boundary = secrets.token_hex(16)
    head = f"Content-Type: {part_type}{type_params}\r\n\r\n".encode()
    chunks: list[bytes] = []
    for part in parts:
        chunks += [b"--", boundary.encode(), b"\r\n", head, part, b"\r\n"]
    chunks += [b"--", boundary.encode(), b"--\r\n"]
    content_type = f'multipart/related; type="{part_type}"{type_params}; boundary={boundary}'
    return content_type, b"".join(chunks)


def _params(header: str) -> tuple[str, dict[str, str]]:
    media, *rest = [p.strip() for p in header.split(";")]
    params: dict[str, str] = {}
    for item in rest:
        name, _, value = item.partition("=")
        params[name.strip().lower()] = value.strip().strip('"')
    return media.lower(), params


def split_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """The parts of a ``multipart/related`` body as ``(content type, bytes)``."""
    media, params = _params(content_type or "")
    if media != "multipart/related":
        raise UnsupportedMediaType(
            'STOW-RS takes multipart/related; type="application/dicom" (one DICOM file per part)',
            code="UNSUPPORTED_MEDIA_TYPE",
        )
    boundary = params.get("boundary")
    if not boundary:
        raise BadRequest("the multipart Content-Type has no boundary", code="MULTIPART_INVALID")
    default_type = params.get("type", "application/dicom")
    marker = b"--" + boundary.encode()
    pieces = body.split(marker)
    if len(pieces) < 3:
        raise BadRequest("the multipart body holds no part (or its boundary differs)", code="MULTIPART_INVALID")
    parts: list[tuple[str, bytes]] = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break  # the closing delimiter
        piece = piece[2:] if piece.startswith(b"\r\n") else piece
        if piece.startswith(b"\r\n"):
            head, data = b"", piece[2:]  # no header lines (RFC 2046: the body's type= applies)
        else:
            head, sep, data = piece.partition(b"\r\n\r\n")
            if not sep:
                head, data = b"", piece
        if data.endswith(b"\r\n"):
            data = data[:-2]
        part_type = default_type
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-type":
                part_type = value.strip()
        parts.append((_params(part_type)[0], data))
    return parts


def accepts(accept: str | None, *offered: str) -> bool:
    """Whether an Accept header admits one of ``offered`` (a part type for multipart answers)."""
    if not accept:
        return True
    for item in accept.split(","):
        media, params = _params(item)
        if media in ("*/*", "multipart/related") and params.get("type", "*/*") in ("*/*", *offered):
            return True
        if media in offered or media == "*/*":
            return True
        if "/" in media and media.endswith("/*") and any(o.startswith(media[:-1]) for o in offered):
            return True
    return False


def not_acceptable(what: str) -> AppError:
    return AppError(f"this resource is answered as {what} only", code="NOT_ACCEPTABLE", status=406)


# -- the read side --------------------------------------------------------------------------------------


class DicomJsonList(RootModel[list[dict[str, Any]]]):
    """DICOM JSON data sets (PS3.18 F.2), for the OpenAPI document; answered as ``application/dicom+json``."""


class DicomJsonDataset(RootModel[dict[str, Any]]):
    """One DICOM JSON data set (the STOW-RS answer)."""


@dataclass
class Binary:
    content_type: str
    body: bytes


class DicomWeb:
    def __init__(
        self,
        *,
        catalog: Catalog,
        objects: ObjectStore,
        derived_bucket: str,
        cipher: Any,
        blind_index: Any,
        audit: Any,
    ) -> None:
        self.catalog = catalog
        self.objects = objects
        self.bucket = derived_bucket
        self.cipher = cipher
        self.blind = blind_index
        self.audit = audit

    # -- studies -----------------------------------------------------------------------------------

    def _study(self, scope: Scope, st: str) -> dict[str, Any]:
        if not _UID.fullmatch(st):
            raise not_found()
        row = self.catalog.study(st)
        if row is None or not scope.sees(row.get("hospital")) or not row.get("series_count"):
            raise not_found()
        return row

    def _patient(self, row: dict[str, Any]) -> dict[str, str | None]:
        st = row["study_uid"]
        dec = self.cipher.decrypt_optional
        return {
            "name": dec(row.get("patient_name"), f"film/patient_name/{st}"),
            "mrn": dec(row.get("patient_mrn"), f"film/patient_mrn/{st}"),
            "sex": row.get("patient_sex"),
        }

    def _hospitals(self, scope: Scope) -> list[str]:
        return self.catalog.hospitals() if scope.everywhere else list(scope.hospitals)

    def _candidates(self, scope: Scope, filters: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Study rows the caller may see that the indexed keys admit, newest first."""
        if "StudyInstanceUID" in filters:
            uids: Iterable[str] = _uid_list(filters["StudyInstanceUID"])
        elif "PatientID" in filters and "*" not in filters["PatientID"] and "?" not in filters["PatientID"]:
            found: dict[str, str] = {}
            for hospital in self._hospitals(scope):
                ref = self.blind.digest(f"{hospital}:{filters['PatientID']}", "medical_record_no")
                for index in self.catalog.studies_of_patient(ref):
                    found.setdefault(index["study_uid"], index["sk"])
            uids = sorted(found, key=lambda u: found[u], reverse=True)
        else:
            uids = self._by_hospital(scope)
        for n, uid in enumerate(uids):
            if n >= SCAN_MAX:
                return
            row = self.catalog.study(uid) if _UID.fullmatch(uid) else None
            if row is not None and scope.sees(row.get("hospital")) and row.get("series_count"):
                yield row

    def _by_hospital(self, scope: Scope) -> Iterator[str]:
        rows = [r for h in self._hospitals(scope) for r in self.catalog.studies_of_hospital(h)]
        rows.sort(key=lambda r: r["sk"], reverse=True)
        for r in rows:
            yield r["study_uid"]

    def study_json(self, row: dict[str, Any], base_url: str, patient: Mapping[str, Any]) -> dict[str, Any]:
        st = row["study_uid"]
        return {
            "00080005": _el("CS", "ISO_IR 192"),
            "00080020": _el("DA", row.get("date")),
            "00080030": _el("TM", row.get("time")),
            "00080050": _el("SH", row.get("accession")),
            "00080056": _el("CS", "ONLINE"),
            "00080061": _el("CS", *(row.get("modalities") or [])),
            "00081030": _el("LO", row.get("description")),
            "00081190": _el("UR", f"{base_url}/studies/{st}"),
            "00100010": _pn(patient.get("name")),
            "00100020": _el("LO", patient.get("mrn")),
            "00100040": _el("CS", patient.get("sex")),
            "0020000D": _el("UI", st),
            "00201206": _el("IS", int(row.get("series_count") or 0)),
            "00201208": _el("IS", int(row.get("instance_count") or 0)),
        }

    def _study_matches(self, row: dict[str, Any], patient: Mapping[str, Any], filters: Mapping[str, str]) -> bool:
        have = {
            "StudyInstanceUID": row.get("study_uid"),
            "PatientID": patient.get("mrn"),
            "PatientName": patient.get("name"),
            "StudyDate": row.get("date"),
            "StudyTime": row.get("time"),
            "AccessionNumber": row.get("accession"),
            "ModalitiesInStudy": list(row.get("modalities") or []),
            "StudyDescription": row.get("description"),
        }
        return all(matches(name, want, have.get(name)) for name, want in filters.items() if name in STUDY_KEYS)

    def _matching_studies(self, scope: Scope, filters: Mapping[str, str]) -> Iterator[tuple[dict[str, Any], Any]]:
        for row in self._candidates(scope, filters):
            patient = self._patient(row)
            if self._study_matches(row, patient, filters):
                yield row, patient

    def search_studies(self, scope: Scope, query: Query, base_url: str) -> list[dict[str, Any]]:
        found = []
        for n, (row, patient) in enumerate(self._matching_studies(scope, query.filters)):
            if n >= query.offset + query.limit:
                break
            if n >= query.offset:
                found.append((row, patient))
        self._audit(scope, "film.dicomweb.search", "film.study:*", [r for r, _ in found], {"level": "study"})
        return [self.study_json(row, base_url, patient) for row, patient in found]

    # -- series ------------------------------------------------------------------------------------

    def series_json(self, st: str, s: dict[str, Any], base_url: str) -> dict[str, Any]:
        se = s["series_uid"]
        return {
            "00080060": _el("CS", s.get("modality") or "OT"),
            "0008103E": _el("LO", s.get("description")),
            "00081190": _el("UR", f"{base_url}/studies/{st}/series/{se}"),
            "0020000D": _el("UI", st),
            "0020000E": _el("UI", se),
            "00200011": _el("IS", s.get("number")),
            "00201209": _el("IS", int(s.get("instance_count") or 0)),
        }

    def _series_matches(self, s: dict[str, Any], filters: Mapping[str, str]) -> bool:
        have = {
            "SeriesInstanceUID": s.get("series_uid"),
            "Modality": s.get("modality") or "OT",
            "SeriesNumber": s.get("number"),
            "SeriesDescription": s.get("description"),
        }
        return all(matches(name, want, have.get(name)) for name, want in filters.items() if name in SERIES_KEYS)

    def search_series(self, scope: Scope, query: Query, base_url: str, study: str | None = None) -> list[Any]:
        studies = [(self._study(scope, study), None)] if study else self._matching_studies(scope, query.filters)
        out: list[dict[str, Any]] = []
        seen: list[dict[str, Any]] = []
        n = 0
        for row, _ in studies:
            seen.append(row)
            for s in sorted(self.catalog.series(row["study_uid"]), key=lambda s: s.get("number") or 0):
                if not self._series_matches(s, query.filters):
                    continue
                if n >= query.offset:
                    out.append(self.series_json(row["study_uid"], s, base_url))
                n += 1
                if len(out) >= query.limit:
                    break
            if len(out) >= query.limit:
                break
        self._audit(scope, "film.dicomweb.search", "film.series:*", seen, {"level": "series"})
        return out

    # -- instances ---------------------------------------------------------------------------------

    def instance_json(self, st: str, inst: dict[str, Any], base_url: str) -> dict[str, Any]:
        meta = json.loads(inst.get("metadata") or "{}")
        se, sop = inst["series_uid"], inst["sop_uid"]
        out = {tag: meta[tag] for tag in ("00080016", "00080060", "00280010", "00280011", "00280008") if tag in meta}
        out.update(
            {
                "00080018": _el("UI", sop),
                "00081190": _el("UR", f"{base_url}/studies/{st}/series/{se}/instances/{sop}"),
                "0020000D": _el("UI", st),
                "0020000E": _el("UI", se),
                "00200013": _el("IS", inst.get("instance_number")),
            }
        )
        return out

    def search_instances(
        self, scope: Scope, query: Query, base_url: str, study: str | None = None, series: str | None = None
    ) -> list[Any]:
        studies = [(self._study(scope, study), None)] if study else self._matching_studies(scope, query.filters)
        out: list[dict[str, Any]] = []
        seen: list[dict[str, Any]] = []
        n = 0
        for row, _ in studies:
            st = row["study_uid"]
            seen.append(row)
            all_series = self.catalog.series(st)
            if series is not None:
                all_series = [s for s in all_series if s["series_uid"] == series]
                if not all_series:
                    raise not_found("series")
            for s in all_series:
                if not self._series_matches(s, query.filters):
                    continue
                rows = sorted(self.catalog.instances(st, s["series_uid"]), key=lambda i: i.get("instance_number") or 0)
                for inst in rows:
                    item = self.instance_json(st, inst, base_url)
                    have = {"SOPInstanceUID": inst["sop_uid"], "InstanceNumber": inst.get("instance_number")}
                    have["SOPClassUID"] = (item.get("00080016", {}).get("Value") or [None])[0]
                    if not all(matches(k, v, have.get(k)) for k, v in query.filters.items() if k in INSTANCE_KEYS):
                        continue
                    if n >= query.offset:
                        out.append(item)
                    n += 1
                    if len(out) >= query.limit:
                        break
                if len(out) >= query.limit:
                    break
            if len(out) >= query.limit:
                break
        self._audit(scope, "film.dicomweb.search", "film.instance:*", seen, {"level": "instance"})
        return out

    # -- WADO-RS -----------------------------------------------------------------------------------

    def _instance_row(self, st: str, se: str, sop: str) -> dict[str, Any]:
        if not (_UID.fullmatch(se) and _UID.fullmatch(sop)):
            raise not_found("instance")
        for inst in self.catalog.instances(st, se):
            if inst["sop_uid"] == sop:
                return inst
        raise not_found("instance")

    @staticmethod
    def _with_patient(meta: dict[str, Any], patient: Mapping[str, Any]) -> dict[str, Any]:
        meta["00100010"] = _pn(patient.get("name"))
        meta["00100020"] = _el("LO", patient.get("mrn"))
        meta["00100040"] = _el("CS", patient.get("sex"))
        return meta

    def metadata(self, scope: Scope, st: str, se: str | None = None, sop: str | None = None) -> list[dict[str, Any]]:
        """DICOM JSON of the instances (no bulk data; the AvailableTransferSyntaxUID the frames have)."""
        row = self._study(scope, st)
        patient = self._patient(row)
        if sop is not None and se is not None:
            rows = [self._instance_row(st, se, sop)]
        else:
            series = [s["series_uid"] for s in self.catalog.series(st)]
            if se is not None:
                if se not in series:
                    raise not_found("series")
                series = [se]
            rows = [i for s in series for i in self.catalog.instances(st, s)]
        out = [self._with_patient(json.loads(i.get("metadata") or "{}"), patient) for i in rows]
        resource = f"film.instance:{sop}" if sop else f"film.series:{se}" if se else f"film.study:{st}"
        self._audit(scope, "film.dicomweb.metadata", resource, [row], {"instances": len(out)})
        return out

    def frames(self, scope: Scope, st: str, se: str, sop: str, numbers: str) -> Binary:
        row = self._study(scope, st)
        inst = self._instance_row(st, se, sop)
        try:
            wanted = [int(n) for n in numbers.split(",")]
        except ValueError:
            # not a frame list: no such resource (the path's schema cannot say what a frame list is)
            raise NotFound(
                "frame numbers are a comma-separated list of whole numbers", code="FRAME_NOT_FOUND"
            ) from None
        count = int(inst.get("frames") or 1)
        if not wanted or any(n < 1 or n > count for n in wanted):
            raise NotFound(f"this instance has frames 1 to {count}", code="FRAME_NOT_FOUND")
        parts: list[bytes] = []
        size = 0
        for n in wanted:
            stored = self.objects.get(self.bucket, layout.frame(st, se, sop, n))
            pixels = gzip.decompress(stored) if stored[:2] == b"\x1f\x8b" else stored
            size += len(pixels)
            if size > MAX_RESPONSE_BYTES:
                raise PayloadTooLarge(
                    f"the frames asked for exceed {MAX_RESPONSE_BYTES} bytes; ask for fewer frames per request",
                    code="RESPONSE_TOO_LARGE",
                )
            parts.append(pixels)
        self._audit(scope, "film.dicomweb.frames", f"film.instance:{sop}", [row], {"frames": wanted})
        content_type, body = multipart(
            parts, "application/octet-stream", type_params=f"; transfer-syntax={FRAME_SYNTAX}"
        )
        return Binary(content_type, body)

    def rendered(self, scope: Scope, st: str, se: str, sop: str, number: int = 1) -> Binary:
        """The frame's JPEG rendition with the default window (the viewer's first-paint preview)."""
        row = self._study(scope, st)
        inst = self._instance_row(st, se, sop)
        if number < 1 or number > int(inst.get("frames") or 1):
            raise NotFound("no such frame", code="FRAME_NOT_FOUND")
        body = self.objects.get(self.bucket, layout.lossy(st, se, sop, number))
        self._audit(scope, "film.dicomweb.rendered", f"film.instance:{sop}", [row], {"frame": number})
        return Binary("image/jpeg", body)

    def instance(self, scope: Scope, st: str, se: str, sop: str, fetch: Callable[[str, str], bytes]) -> Binary:
        """The instance as it was stored (the original file in the ingest bucket)."""
        row = self._study(scope, st)
        inst = self._instance_row(st, se, sop)
        source = inst.get("source") or {}
        body = fetch(str(source.get("bucket")), str(source.get("key")))
        if len(body) > MAX_RESPONSE_BYTES:
            raise PayloadTooLarge(
                f"the instance exceeds {MAX_RESPONSE_BYTES} bytes; read its frames instead", code="RESPONSE_TOO_LARGE"
            )
        self._audit(scope, "film.dicomweb.instance", f"film.instance:{sop}", [row], {})
        content_type, data = multipart([body], "application/dicom")
        return Binary(content_type, data)

    # -- audit -------------------------------------------------------------------------------------

    def _audit(
        self, scope: Scope, action: str, resource: str, rows: Sequence[dict[str, Any]], details: dict[str, Any]
    ) -> None:
        refs = sorted({(r.get("patient_refs") or [None])[0] for r in rows if r.get("patient_refs")})
        self.audit.record(
            actor=scope.actor,
            action=action,
            resource=resource,
            patient_ref=refs[0] if len(refs) == 1 else None,
            details={
                **details,
                "hospitals": list(scope.hospitals),
                "studies": [r["study_uid"] for r in rows][:50],
                "patients": len(refs),
            },
        )


# -- the write side -------------------------------------------------------------------------------------


@dataclass
class StoreAnswer:
    status: int
    dataset: dict[str, Any]


@dataclass
class PartFacts:
    """What ``inspect`` (pydicom, in the STOW function) read from a part: its UIDs."""

    sop_class: str | None
    sop_instance: str | None
    study: str | None
    series: str | None


class PartRefused(Exception):
    def __init__(self, reason: int, message: str, facts: PartFacts | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.facts = facts


class Stow:
    def __init__(
        self,
        *,
        objects: ObjectStore,
        ingest_bucket: str,
        inspect: Callable[[bytes], PartFacts],
        audit: Any,
        access: Callable[[str, str], bool] | None = None,
    ) -> None:
        """``inspect`` reads a part's UIDs (raises ``PartRefused``); ``access(hospital, method)`` says
        whether the hospital takes data this way (``bianjie.film.admin``)."""
        self.objects = objects
        self.ingest_bucket = ingest_bucket
        self.inspect = inspect
        self.audit = audit
        self.access = access

    @staticmethod
    def hospital_for(scope: Scope, asked: str | None) -> str:
        if asked:
            if scope.sees(asked) and asked != "*":
                return asked
            raise Forbidden(f"this caller may not store studies for hospital {asked!r}", code="HOSPITAL_NOT_ALLOWED")
        concrete = [h for h in scope.hospitals if h != "*"]
        if len(concrete) == 1 and not scope.everywhere:
            return concrete[0]
        raise BadRequest(
            "this caller serves several hospitals: name the one the studies belong to (?hospital=...)",
            code="HOSPITAL_REQUIRED",
        )

    def store(
        self,
        scope: Scope,
        *,
        content_type: str,
        body: bytes,
        base_url: str,
        hospital: str | None = None,
        study: str | None = None,
    ) -> StoreAnswer:
        if study is not None and not _UID.fullmatch(study):
            raise BadRequest("the study UID in the path is not a UID", code="INVALID_PARAMETER")
        target = self.hospital_for(scope, hospital)
        if self.access is not None and not self.access(target, "stow"):
            raise Forbidden(f"hospital {target!r} does not take data by STOW-RS", code="ACCESS_METHOD_DISABLED")
        if len(body) > MAX_STORE_BYTES:
            raise PayloadTooLarge(f"store at most {MAX_STORE_BYTES} bytes per request", code="REQUEST_TOO_LARGE")
        parts = split_multipart(content_type, body)
        stored: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        studies: set[str] = set()
        for media, data in parts:
            try:
                if media not in ("application/dicom", "application/octet-stream"):
                    raise PartRefused(FAIL_CANNOT_UNDERSTAND, f"part of type {media} is not application/dicom")
                if not data:
                    raise PartRefused(FAIL_CANNOT_UNDERSTAND, "the part is empty")
                if data[128:132] != b"DICM" and data[:2] == b"\x02\x00":
                    # the file meta group without the 128-byte preamble and "DICM" (what pydicom writes for
                    # a dataset read from the network): stored as a proper Part-10 file, as ingest reads it
                    data = b"\x00" * 128 + b"DICM" + data
                facts = self.inspect(data)
                if not (facts.sop_instance and facts.study and facts.series and facts.sop_class):
                    raise PartRefused(FAIL_DATASET_MISMATCH, "the data set lacks its UIDs", facts)
                if study is not None and facts.study != study:
                    raise PartRefused(FAIL_DATASET_MISMATCH, "the instance belongs to another study", facts)
                key = f"{target}/stow/{facts.study}/{facts.series}/{facts.sop_instance}.dcm"
                try:
                    self.objects.put(self.ingest_bucket, key, data, content_type="application/dicom")
                except Exception as exc:
                    raise PartRefused(FAIL_OUT_OF_RESOURCES, f"storing failed: {type(exc).__name__}", facts) from exc
            except PartRefused as refused:
                facts = refused.facts or PartFacts(None, None, None, None)
                failed.append(
                    {
                        "00081150": _el("UI", facts.sop_class),
                        "00081155": _el("UI", facts.sop_instance),
                        "00081197": _el("US", refused.reason),
                    }
                )
                continue
            studies.add(str(facts.study))
            url = f"{base_url}/studies/{facts.study}/series/{facts.series}/instances/{facts.sop_instance}"
            stored.append(
                {
                    "00081150": _el("UI", facts.sop_class),
                    "00081155": _el("UI", facts.sop_instance),
                    "00081190": _el("UR", url),
                }
            )
        dataset: dict[str, Any] = {}
        if len(studies) == 1:
            dataset["00081190"] = _el("UR", f"{base_url}/studies/{next(iter(studies))}")
        if failed:
            dataset["00081198"] = {"vr": "SQ", "Value": failed}
        if stored:
            dataset["00081199"] = {"vr": "SQ", "Value": stored}
        self.audit.record(
            actor=scope.actor,
            action="film.dicomweb.store",
            resource=f"film.hospital:{target}",
            outcome="success" if stored else "failure",
            details={"stored": len(stored), "failed": len(failed), "studies": sorted(studies)[:50]},
        )
        status = 200 if not failed else 202 if stored else 409
        return StoreAnswer(status, dataset)


def inspect_part(data: bytes) -> PartFacts:
    """Reads a part with pydicom (the imaging layer): a Part-10 file with its UIDs, or ``PartRefused``."""
    import io
    import warnings

    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    except InvalidDicomError as exc:
        raise PartRefused(FAIL_CANNOT_UNDERSTAND, f"not a DICOM Part-10 file: {exc}") from exc
    except Exception as exc:
        raise PartRefused(FAIL_CANNOT_UNDERSTAND, f"unreadable DICOM: {type(exc).__name__}") from exc

    def text(name: str) -> str | None:
        value = ds.get(name)
        return str(value).strip() or None if value not in (None, "") else None

    meta = getattr(ds, "file_meta", None)
    return PartFacts(
        sop_class=text("SOPClassUID")
        or (str(meta.MediaStorageSOPClassUID) if meta and "MediaStorageSOPClassUID" in meta else None),
        sop_instance=text("SOPInstanceUID"),
        study=text("StudyInstanceUID"),
        series=text("SeriesInstanceUID"),
    )


def dump(dataset: Any) -> str:
    return json.dumps(dataset, separators=(",", ":"), ensure_ascii=False)


__all__ = [
    "MEDIA_JSON",
    "Binary",
    "DicomWeb",
    "PartFacts",
    "PartRefused",
    "Query",
    "Scope",
    "Stow",
    "accepts",
    "dump",
    "inspect_part",
    "matches",
    "multipart",
    "not_acceptable",
    "parse_query",
    "scope_of",
    "split_multipart",
]
