"""consult's events: one per consultation transition, ids only (source ``bianjie.consult``).

Event id: ``<consultation_id>-<version>`` (the case's version after the transition), so every copy of
one transition carries one id. Guidance (``guide``) reads them to remind doctors and patients.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from bianjie.kit.events import EventContract

_ID = r"^[A-Za-z0-9_.:/\-]+$"


class ConsultEventV1(EventContract):
    consultation_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    applicant_org: str = Field(min_length=1, max_length=64, description="the applicant's institution (app id)")
    applicant: str = Field(min_length=1, max_length=64, description="the applicant's staff code")
    participants: list[str] = Field(max_length=8, description="invitees as '<org>/<staff code>'")
    patient_ref: str = Field(min_length=1, max_length=128, description="blind index of the patient's ID number")
    status: str = Field(min_length=1, max_length=32, description="the case's status afterwards")
    start: str = Field(description="the slot's start, ISO 8601 UTC")
    round: int = Field(ge=0, description="invitation rounds so far (all declined starts a new one)")


class ConsultScheduledV1(ConsultEventV1):
    """Submitted: invitees are asked to accept (待会诊)."""

    event_type: ClassVar[str] = "consult.scheduled"


class ConsultReturnedV1(ConsultEventV1):
    """Every invitee declined: back to draft; tell the applicant."""

    event_type: ClassVar[str] = "consult.returned"


class ConsultStartedV1(ConsultEventV1):
    event_type: ClassVar[str] = "consult.started"


class ConsultAwaitingReportV1(ConsultEventV1):
    event_type: ClassVar[str] = "consult.awaiting_report"


class ConsultCompletedV1(ConsultEventV1):
    event_type: ClassVar[str] = "consult.completed"


class ConsultCancelledV1(ConsultEventV1):
    event_type: ClassVar[str] = "consult.cancelled"
    reason: str = Field(max_length=32, description="applicant | no_show")


class ConsultAttachmentRejectedV1(ConsultEventV1):
    """An uploaded file failed the check (type, size, malware) and was deleted; tell the applicant why."""

    event_type: ClassVar[str] = "consult.attachment_rejected"
    attachment_id: str = Field(min_length=1, max_length=64, pattern=_ID)
    code: str = Field(min_length=1, max_length=32, description="TYPE_MISMATCH | SIZE_MISMATCH | INFECTED | TOO_LARGE")


CONTRACTS = (
    ConsultScheduledV1,
    ConsultReturnedV1,
    ConsultStartedV1,
    ConsultAwaitingReportV1,
    ConsultCompletedV1,
    ConsultCancelledV1,
    ConsultAttachmentRejectedV1,
)
BY_STATUS: dict[str, type[ConsultEventV1]] = {
    "scheduled": ConsultScheduledV1,
    "in_progress": ConsultStartedV1,
    "awaiting_report": ConsultAwaitingReportV1,
    "completed": ConsultCompletedV1,
}
