"""guide's events (source ``bianjie.guide``): what other services may know of a visit's progress.

Event id of a progress event: ``<visit_id>-<seq>`` where ``seq`` is the folded view's version, so a
re-sent event is a duplicate and a consumer keeps only the highest ``seq`` it has seen.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from bianjie.kit.events import EventContract

_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"


class ProgressItem(BaseModel):
    """A report or a prescription of the visit: its id, a label (an exam name such as 血常规, never a
    person's name) and when it became ready."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item_id: str = Field(pattern=_ID)
    label: str | None = Field(default=None, max_length=40)
    ready_at: str | None = Field(default=None, max_length=40)
    place_label: str | None = Field(default=None, max_length=40)


class GuideVisitProgressedV1(EventContract):
    """A visit's folded view moved (a hospital event or another service's event was applied)."""

    event_type: ClassVar[str] = "guide.visit_progressed"
    visit_id: str = Field(pattern=_ID)
    seq: int = Field(ge=1, description="the view's version; higher is newer")
    patient_id: str | None = Field(default=None, pattern=_ID, description="guide's patient id (the token subject)")
    hospital: str = Field(min_length=1, max_length=64, description="the partner app id that owns the visit")
    visit_kind: Literal["outpatient", "internet"] = "outpatient"
    state: str | None = Field(default=None, max_length=32, description="bianjie.guide.model.State value")
    state_label: str | None = Field(default=None, max_length=20)
    is_open: bool = Field(description="false once the visit is done or cancelled")
    visit_day: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="Beijing date")
    department: str | None = Field(default=None, max_length=40)
    queue_position: int | None = Field(default=None, ge=0, le=9999)
    next_action: str | None = Field(default=None, max_length=20)
    next_title: str | None = Field(default=None, max_length=60)
    next_place_poi: str | None = Field(default=None, max_length=128)
    next_place_label: str | None = Field(default=None, max_length=40)
    reports: tuple[ProgressItem, ...] = Field(default=(), max_length=50)
    prescriptions: tuple[ProgressItem, ...] = Field(default=(), max_length=50)


CONTRACTS = (GuideVisitProgressedV1,)
