"""pydantic types for what partners send: JSON as the OpenAPI document describes it, without pydantic's
lax coercions (a boolean or a string read as a number, a number read as a time).

Money is integer fen and counts are integers: ``true`` or ``"100"`` is refused, ``100`` and ``100.0``
(the same JSON Schema integer) are taken.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator


def _whole_number(value: Any) -> Any:
    if isinstance(value, bool | str | bytes):
        raise ValueError("give a JSON integer, not a string or a boolean")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _iso_text(value: Any) -> Any:
    # pydantic would read a number as epoch seconds; partners send ISO text, and a number is a mistake
    if isinstance(value, bool | int | float):
        raise ValueError("give the time as ISO 8601 text with its offset, e.g. 2026-01-01T10:00:00+08:00")
    return value


WHOLE = BeforeValidator(_whole_number)
"""For a bounded whole number: ``Annotated[int, Field(ge=0, le=9999), WHOLE]``. The bounds go before it so
the JSON Schema says ``minimum``/``maximum`` (after it, pydantic writes its own ``ge``/``le``)."""

WholeNumber = Annotated[int, WHOLE]
"""An integer (fen, a count, a position): never a boolean or a numeric string."""

IsoDatetime = Annotated[AwareDatetime, BeforeValidator(_iso_text)]
"""An instant: ISO 8601 text with an offset (or a datetime in code), never a bare number."""
