"""Object keys of the derived bucket: static-wado's DICOMweb layout, so any DICOMweb client can read it.

studies/{study}/index.json                                    QIDO-RS study row (de-identified)
studies/{study}/series/index.json                             QIDO-RS series rows
studies/{study}/series/{series}/metadata                      DICOM JSON of every instance, gzip
studies/{study}/series/{series}/thumbnail                     JPEG, middle slice, default window
studies/{study}/series/{series}/instances/{sop}/frames/{n}    raw little-endian pixels, gzip
studies/{study}/series/{series}/instances/{sop}/lossy/{n}     JPEG <= 256 px (fast first paint)
studies/{study}/reports/{sop}.pdf|json                        a report: the PDF, or the SR rendered as JSON
"""

from __future__ import annotations

FRAME_CONTENT_TYPE = "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
IMMUTABLE = "public, max-age=31536000, immutable"
SHORT = "private, max-age=60"


def study_prefix(study: str) -> str:
    return f"studies/{study}"


def study_index(study: str) -> str:
    return f"studies/{study}/index.json"


def series_index(study: str) -> str:
    return f"studies/{study}/series/index.json"


def series_prefix(study: str, series: str) -> str:
    return f"studies/{study}/series/{series}"


def series_metadata(study: str, series: str) -> str:
    return f"{series_prefix(study, series)}/metadata"


def thumbnail(study: str, series: str) -> str:
    return f"{series_prefix(study, series)}/thumbnail"


def frame(study: str, series: str, sop: str, number: int) -> str:
    return f"{series_prefix(study, series)}/instances/{sop}/frames/{number}"


def lossy(study: str, series: str, sop: str, number: int) -> str:
    return f"{series_prefix(study, series)}/instances/{sop}/lossy/{number}"


def report(study: str, sop: str, ext: str) -> str:
    return f"studies/{study}/reports/{sop}.{ext}"
