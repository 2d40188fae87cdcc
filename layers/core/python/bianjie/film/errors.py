"""Film errors: the codes partners and the viewer branch on, and ingest's permanent failures."""

from __future__ import annotations

from bianjie.kit.errors import AppError, Forbidden, Gone, NotFound


class PermanentIngestError(Exception):
    """An object that will never ingest (not DICOM, undecodable...): recorded and dead-lettered, not retried."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def study_not_found() -> AppError:
    return NotFound(
        "no such study for this partner; check study_uid (it may not be ingested yet)", code="STUDY_NOT_FOUND"
    )


def patient_not_found() -> AppError:
    return NotFound("no studies found for this patient identifier", code="PATIENT_NOT_FOUND")


def link_malformed() -> AppError:
    return Forbidden("this viewing link is not valid (altered or incomplete); ask for a new one", code="LINK_INVALID")


def link_not_found() -> AppError:
    return NotFound("this viewing link does not exist", code="LINK_NOT_FOUND")


def link_revoked() -> AppError:
    return Gone("this viewing link was revoked", code="LINK_REVOKED")


def link_expired() -> AppError:
    return Gone("this viewing link has expired; ask the hospital app for a new one", code="LINK_EXPIRED")


def link_not_yours() -> AppError:
    return Forbidden("this link was issued to another partner app", code="LINK_NOT_YOURS")
