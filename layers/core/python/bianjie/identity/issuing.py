"""Minting a token: what a trusted caller asks for, the checks, and the audit record.

The issuer function (``functions/identity``) is direct-invoke only: operators' tools (the CLI, demos,
benchmarks) invoke it, and the identity service's login (issue 12) will call ``issue`` after SSO. Who
may invoke it is decided by IAM (``lambda:InvokeFunction``), not by anything in the request.
"""

from __future__ import annotations

import re
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bianjie.kit.tokens import DEFAULT_TTL, MAX_TTL, TokenIssuer

_ROLE_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")


class AuditSink(Protocol):
    def record(self, *, actor: str, action: str, resource: str, **kwargs: Any) -> Any: ...


class IssueTokenRequest(BaseModel):
    """The direct-invoke payload of TokenIssueFunction."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    subject: str = Field(min_length=1, max_length=200)
    kind: Literal["patient", "staff"]
    roles: tuple[str, ...] = Field(default=(), max_length=20)
    ttl_seconds: int = Field(default=DEFAULT_TTL, ge=1, le=MAX_TTL)
    hospital: str | None = Field(default=None, min_length=1, max_length=64)
    extra: dict[str, str] = Field(default_factory=dict, max_length=10)
    requested_by: str = Field(
        pattern=r"^(system|staff):\S{1,100}$",
        description='who asks, as the audit log names actors: "system:cli.<user>", "system:identity"...',
    )

    @field_validator("roles")
    @classmethod
    def _roles(cls, roles: tuple[str, ...]) -> tuple[str, ...]:
        for role in roles:
            if not _ROLE_RE.fullmatch(role):
                raise ValueError("a role is a short lower-case name such as 'doctor'")
        return roles

    @field_validator("extra")
    @classmethod
    def _extra(cls, extra: dict[str, str]) -> dict[str, str]:
        reserved = {"sub", "kind", "roles", "iat", "exp", "iss", "jti", "hospital", "extra"} & extra.keys()
        if reserved:
            raise ValueError(f"reserved claim names: {sorted(reserved)}")
        return extra


class IssuedToken(BaseModel):
    token: str
    kid: str
    expires_in: int


def issue(issuer: TokenIssuer, request: IssueTokenRequest, audit: AuditSink) -> IssuedToken:
    """Mint the token ``request`` describes and record who asked (never the token itself)."""
    claims: dict[str, Any] = dict(request.extra)
    if request.hospital is not None:
        claims["hospital"] = request.hospital
    token = issuer.issue(request.subject, request.kind, request.roles, ttl_seconds=request.ttl_seconds, **claims)
    audit.record(
        actor=request.requested_by,
        action="token.issue",
        resource=f"token:{request.kind}",
        details={
            "kid": issuer.kid,
            "roles": list(request.roles),
            "hospital": request.hospital,
            "ttl_seconds": request.ttl_seconds,
        },
    )
    return IssuedToken(token=token, kid=issuer.kid, expires_in=request.ttl_seconds)
