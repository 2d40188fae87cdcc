"""A patient's notification preferences (通知设置): channels, muted kinds, quiet hours."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bianjie.guide.kinds import Kind
from bianjie.guide.model import CST


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start: str = Field(default="22:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="Beijing time, HH:MM")
    end: str = Field(default="08:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d$")


class Preferences(BaseModel):
    model_config = ConfigDict(extra="forbid")

    wechat: bool = Field(default=True, strict=True, description="receive WeChat subscribe messages")
    sms: bool = Field(default=True, strict=True, description="receive SMS (used when WeChat cannot deliver)")
    muted: list[Kind] = Field(default_factory=list, description="kinds the patient does not want")
    quiet_hours: QuietHours | None = Field(
        default_factory=QuietHours, description="no non-urgent message inside; null turns quiet hours off"
    )

    @field_validator("muted")
    @classmethod
    def _unique(cls, value: list[Kind]) -> list[Kind]:
        return sorted(set(value))


def _hm(text: str) -> time:
    hour, minute = text.split(":")
    return time(int(hour), int(minute))


def quiet_until(prefs: Preferences, now: datetime) -> datetime | None:
    """When the current quiet period ends, or None when ``now`` is outside quiet hours."""
    if prefs.quiet_hours is None:
        return None
    start, end = _hm(prefs.quiet_hours.start), _hm(prefs.quiet_hours.end)
    if start == end:
        return None
    local = now.astimezone(CST)
    t = local.time()
    inside = (start <= t < end) if start < end else (t >= start or t < end)
    if not inside:
        return None
    day = local.date() if t < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, CST)
