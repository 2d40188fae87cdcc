"""What the prescription service needs from the NHSA center, in its own words."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from bianjie.kit.errors import AppError


class CenterError(AppError):
    """The center refused (business error, 422 CENTER_REJECTED) or could not be reached (503)."""

    status, code = 502, "CENTER_ERROR"


@dataclass(frozen=True)
class Reserved:
    trace_code: str  # rxTraceCode: good for one upload
    hi_rxno: str  # the center's prescription number


class RxCenter(Protocol):
    def upload_check(self, payload: dict[str, Any]) -> Reserved: ...

    def upload(self, payload: dict[str, Any]) -> str:
        """Returns rxStasCodg (1 有效)."""
        ...

    def review_result(self, payload: dict[str, Any]) -> None: ...

    def settlement(self, payload: dict[str, Any]) -> None: ...

    def pay_status(self, payload: dict[str, Any]) -> None: ...

    def revoke(self, payload: dict[str, Any]) -> str: ...

    def query(self, hi_rxno: str) -> dict[str, Any]: ...
