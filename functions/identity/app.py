"""The token issuer: the one function that can mint patient and staff tokens (direct invoke only)."""

from __future__ import annotations

from typing import Any

from bianjie.identity import issuing
from bianjie.kit import deps
from bianjie.kit.web import ServiceApp, validation_details
from pydantic import ValidationError

app = ServiceApp("identity")


@app.lambda_function(name="issue_token")
def issue_token(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"subject", "kind", "roles"?, "ttl_seconds"?, "hospital"?, "extra"?, "requested_by"}`` -> the token."""
    try:
        request = issuing.IssueTokenRequest.model_validate(event)
    except ValidationError as exc:
        return {"error": {"code": "VALIDATION_FAILED", "details": validation_details(exc)}}
    issued = issuing.issue(deps.token_issuer(), request, deps.audit_log("identity"))
    return issued.model_dump()
