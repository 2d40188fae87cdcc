"""film's events (source ``bianjie.film``).

Event id of a report: the first 32 hex digits of SM3 over ``film.report_published:<study uid>:<sop uid>``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from bianjie.kit.events import EventContract

_UID = r"^[0-9.]+$"


class FilmReportPublishedV1(EventContract):
    """A study's report (encapsulated PDF or structured report) is stored and viewable."""

    event_type: ClassVar[str] = "film.report_published"
    study_uid: str = Field(min_length=1, max_length=64, pattern=_UID)
    report_id: str = Field(min_length=1, max_length=64, pattern=_UID, description="the report's SOP instance UID")
    report_kind: Literal["pdf", "sr"]
    hospital: str = Field(min_length=1, max_length=64, description="partner app id (first part of the ingest key)")
    accession_number: str | None = Field(default=None, max_length=64)
    visit_id: str | None = Field(
        default=None, max_length=64, description="the hospital's visit id, when its settings name the DICOM tag"
    )


CONTRACTS = (FilmReportPublishedV1,)
