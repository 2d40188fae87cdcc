"""rx's events: one per prescription transition, all with the same ids (source ``bianjie.rx``).

Event id: ``<rx_id>-<version>`` (the prescription's version after the transition), so every copy of one
transition carries one id.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from bianjie.kit.events import EventContract

_ID = r"^[A-Za-z0-9_.:\-]+$"


class RxEventV1(EventContract):
    rx_id: str = Field(min_length=1, max_length=64, pattern=_ID, description="the center's hi_rxno")
    hospital: str = Field(min_length=1, max_length=64, description="the issuing hospital's partner app id")
    patient_ref: str = Field(min_length=1, max_length=128, description="blind index of the ID number")
    visit_id: str = Field(min_length=1, max_length=64, description="the hospital's visit (mdtrt_id)")
    status: str = Field(min_length=1, max_length=32, description="the prescription's status afterwards")
    valid_end: str = Field(description="end of validity, ISO 8601 UTC")
    uses: int = Field(ge=0, description="dispensings so far")


class RxUploadedV1(RxEventV1):
    event_type: ClassVar[str] = "rx.uploaded"


class RxRevokedV1(RxEventV1):
    event_type: ClassVar[str] = "rx.revoked"


class RxReleasedV1(RxEventV1):
    """Released for purchase at a designated outside pharmacy."""

    event_type: ClassVar[str] = "rx.released"


class RxDispensedV1(RxEventV1):
    """Dispensed: in the hospital (``pharmacy`` absent) or by an outside pharmacy (its app id)."""

    event_type: ClassVar[str] = "rx.dispensed"
    pharmacy: str | None = Field(default=None, max_length=64)


class RxExpiringV1(RxEventV1):
    event_type: ClassVar[str] = "rx.expiring"


class RxExpiredV1(RxEventV1):
    event_type: ClassVar[str] = "rx.expired"


CONTRACTS = (RxUploadedV1, RxRevokedV1, RxReleasedV1, RxDispensedV1, RxExpiringV1, RxExpiredV1)
BY_TYPE: dict[str, type[RxEventV1]] = {c.event_type: c for c in CONTRACTS}
