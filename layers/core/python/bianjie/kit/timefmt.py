"""Time as bianjie writes it: UTC ISO-8601 with a Z for stored and answered instants, Beijing time for
what people read and for the calendar days hospitals count in.

China keeps no daylight-saving time, so a fixed +08:00 offset is exact and needs no tz database.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Literal

BEIJING = timezone(timedelta(hours=8), "Asia/Shanghai")
Precision = Literal["seconds", "milliseconds", "microseconds"]


def utc(at: float | datetime) -> datetime:
    """An aware UTC datetime from epoch seconds or any aware datetime."""
    return datetime.fromtimestamp(at, UTC) if isinstance(at, int | float) else at.astimezone(UTC)


def utc_iso(at: float | datetime, timespec: Precision = "seconds") -> str:
    """``2026-01-01T02:00:00Z``. Values of one precision sort as text in time order, so a store that
    uses them in sort keys keeps to one precision (pay: milliseconds, guide: microseconds)."""
    return utc(at).isoformat(timespec=timespec).replace("+00:00", "Z")


def beijing(at: float | datetime) -> datetime:
    return utc(at).astimezone(BEIJING)


def beijing_day(at: float | datetime) -> str:
    """The calendar day in Beijing, ``YYYY-MM-DD`` (what a hospital's day-end and reports count)."""
    return beijing(at).date().isoformat()
