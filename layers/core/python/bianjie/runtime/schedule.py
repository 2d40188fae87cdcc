"""Schedule expressions of EventBridge: ``rate(5 minutes)`` and ``cron(0 8 * * ? *)``.

EventBridge cron has six fields (minutes hours day-of-month month day-of-week year), numbers days of
the week 1-7 from Sunday, and uses ``?`` for "no specific value"; croniter speaks five-field cron with
0-6 from Sunday, so expressions are translated, and the year field is checked here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

_RATE = re.compile(r"^rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)$")
_CRON = re.compile(r"^cron\((.+)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


class ScheduleError(ValueError):
    pass


def _translate_dow(field: str) -> str:
    def shift(match: re.Match[str]) -> str:
        n = int(match.group(0))
        if not 1 <= n <= 7:
            raise ScheduleError(f"day-of-week {n} is outside 1-7")
        return str(n - 1)

    if field in ("?", "*"):
        return "*"
    if "#" in field:
        day, nth = field.split("#", 1)
        return f"{_translate_dow(day)}#{nth}"
    if field.endswith("L") and field[:-1].isdigit():
        return f"L{int(field[:-1]) - 1}"
    return re.sub(r"\d+", shift, field)


@dataclass(frozen=True)
class Schedule:
    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        self._parse()

    def _parse(self) -> tuple[str, int | None, str | None, str]:
        text = self.expression.strip()
        rate = _RATE.match(text)
        if rate:
            value, unit = int(rate.group(1)), rate.group(2).rstrip("s")
            if value < 1:
                raise ScheduleError("rate must be at least 1")
            if (value == 1) != (not rate.group(2).endswith("s")):
                raise ScheduleError(f"{text}: use the singular unit for 1 and the plural otherwise")
            return "rate", value * _UNIT_SECONDS[unit], None, "*"
        cron = _CRON.match(text)
        if not cron:
            raise ScheduleError(f"{text!r} is neither rate(...) nor cron(...)")
        fields = cron.group(1).split()
        if len(fields) != 6:
            raise ScheduleError(f"{text}: EventBridge cron needs 6 fields, got {len(fields)}")
        minute, hour, dom, month, dow, year = fields
        if (dom == "?") == (dow == "?"):
            raise ScheduleError(f"{text}: exactly one of day-of-month and day-of-week must be '?'")
        five = " ".join([minute, hour, "*" if dom == "?" else dom, month, _translate_dow(dow)])
        if not croniter.is_valid(five):
            raise ScheduleError(f"{text}: invalid cron fields")
        return "cron", None, five, year

    def next_after(self, moment: datetime, started: datetime | None = None) -> datetime:
        """The first firing strictly after ``moment`` (aware datetimes)."""
        kind, seconds, five, year = self._parse()
        if kind == "rate":
            assert seconds is not None
            origin = started or moment
            elapsed = (moment - origin).total_seconds()
            periods = int(elapsed // seconds) + 1
            return origin + timedelta(seconds=periods * seconds)
        assert five is not None
        tz = ZoneInfo(self.timezone)
        local = moment.astimezone(tz)
        it = croniter(five, local)
        for _ in range(10000):
            candidate: datetime = it.get_next(datetime)
            if year == "*" or _year_matches(year, candidate.year):
                return candidate.astimezone(UTC)
        raise ScheduleError(f"{self.expression}: no firing found")


def _year_matches(field: str, year: int) -> bool:
    for part in field.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            if int(low) <= year <= int(high):
                return True
        elif part.isdigit() and int(part) == year:
            return True
    return False
