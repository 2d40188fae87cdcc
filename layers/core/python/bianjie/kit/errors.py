"""One error shape for every HTTP answer: {"error": {"code", "message", "request_id"}}.

Domain code raises these; the web layer (``bianjie.kit.web``) turns them into responses.
Codes are stable upper-case identifiers partners may branch on; messages are for humans.
"""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error a caller can act on. ``status`` is the HTTP status it maps to."""

    status: int = 400
    code: str = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details
        self.headers = headers or {}

    def body(self, request_id: str | None) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "request_id": request_id}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class BadRequest(AppError):
    status, code = 400, "BAD_REQUEST"


class InvalidCursor(AppError, ValueError):
    """A paging cursor this listing did not hand out (malformed, edited, or from another query): 422, as
    for any well-formed request a rule refuses (docs/partner-api.md, "Errors")."""

    status, code = 422, "INVALID_CURSOR"

    def __init__(self, message: str = "the cursor is not one this listing returned; list again without it") -> None:
        super().__init__(message)


class ValidationFailed(AppError):
    status, code = 400, "VALIDATION_FAILED"


class Unauthorized(AppError):
    status, code = 401, "UNAUTHORIZED"


class Forbidden(AppError):
    status, code = 403, "FORBIDDEN"


class NotFound(AppError):
    status, code = 404, "NOT_FOUND"


class Conflict(AppError):
    status, code = 409, "CONFLICT"


class Gone(AppError):
    status, code = 410, "GONE"


class PayloadTooLarge(AppError):
    status, code = 413, "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(AppError):
    status, code = 415, "UNSUPPORTED_MEDIA_TYPE"


class TooManyRequests(AppError):
    status, code = 429, "TOO_MANY_REQUESTS"


class Internal(AppError):
    status, code = 500, "INTERNAL"


class Unavailable(AppError):
    status, code = 503, "UNAVAILABLE"


def error_body(code: str, message: str, request_id: str | None, details: Any = None) -> dict[str, Any]:
    """The error JSON for places that have no exception at hand (gateway 404s, Chalice's own errors)."""
    return AppError(message, code=code, details=details).body(request_id)
