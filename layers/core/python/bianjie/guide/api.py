"""Request and answer shapes of guide's HTTP API (pydantic at the edge)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bianjie.guide.model import VisitEvent
from bianjie.guide.service import EventResult, QuotaLedger

MAX_BATCH = 100


class EventBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[VisitEvent] = Field(min_length=1, max_length=MAX_BATCH)


class EventBatchAnswer(BaseModel):
    accepted: int
    duplicates: int
    rejected: int
    results: list[EventResult]


class SubscribeResults(BaseModel):
    """What wx.requestSubscribeMessage answered on the phone: template id -> the patient's choice."""

    model_config = ConfigDict(extra="forbid")

    results: dict[str, Literal["accept", "reject", "ban", "filter"]] = Field(min_length=1, max_length=10)


class SubscribeAnswer(BaseModel):
    ledgers: list[QuotaLedger]


class OutboxQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    visit_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
    day: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$", description="Beijing date")
    limit: int = Field(default=100, ge=1, le=500)


class OutboxAnswer(BaseModel):
    messages: list[dict[str, Any]] = Field(description="what the channel stand-ins were asked to send")
    notifications: list[dict[str, Any]] = Field(
        default_factory=list, description="with visit_id: each notification's status history and reasons"
    )
