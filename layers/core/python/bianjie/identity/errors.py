"""Protocol errors as OAuth 2.0 / OpenID Connect name them (RFC 6749 5.2 and 4.1.2.1, RFC 8693 2.2.2).

The provider's endpoints answer ``{"error": "<rfc code>", "error_description": "..."}`` (not the kit's
error shape: relying parties' OAuth libraries parse this one). Descriptions never say whether a person,
a code or a session exists: a wrong code, a used code and an expired code read the same.
"""

from __future__ import annotations


class OAuthError(Exception):
    """A refusal with its RFC error code; ``status`` is the HTTP status of a direct answer."""

    def __init__(self, error: str, description: str, *, status: int = 400, redirectable: bool = True) -> None:
        super().__init__(f"{error}: {description}")
        self.error = error
        self.description = description
        self.status = status
        # authorization-endpoint errors go back to the client's redirect URI only once that URI is known
        # to be the client's (RFC 6749 4.1.2.1); before that they are shown to the person
        self.redirectable = redirectable

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


def invalid_request(description: str, *, redirectable: bool = True) -> OAuthError:
    return OAuthError("invalid_request", description, redirectable=redirectable)


def invalid_grant(
    description: str = "the grant is invalid, expired, used or was issued to another client",
) -> OAuthError:
    return OAuthError("invalid_grant", description)


def invalid_client() -> OAuthError:
    return OAuthError("invalid_client", "client authentication failed", status=401)
