"""Short-lived signed tokens for patients and staff: minted by ONE issuer, verified by everyone else.

JWS compact serialisation (RFC 7515) with an asymmetric signature (``bianjie.kit.tokenkeys``)::

    b64url(header) "." b64url(payload) "." b64url(r || s)

header  ``{"alg":"SM2-SM3"|"ES256","typ":"JWT","kid":"<thumbprint of the signing key>"}``
payload ``{"sub","kind":"patient"|"staff","roles":[...],"iat","exp","iss":"bianjie","jti",
          "hospital"?: str, "extra"?: {...}}``  (b64url = base64url without padding)

``TokenIssuer`` needs a ``TokenSigner`` (the private key: only the issuer function has one);
``TokenVerifier`` needs only the published public keys (a JWKS), so a verifier can mint nothing. The
``alg`` of a token must be the ``alg`` of the key its ``kid`` names: an HMAC or ``none`` token, or an
ES256 token under an SM2 kid, is refused whatever its signature bytes.

Rotation by kid: publish the next key in the JWKS (every verifier now accepts it), then switch the
issuer to it, then drop the old key from the JWKS once the longest TTL (12 h) plus the clock leeway has
passed (docs/security.md).

In a handler (``app.user`` does this)::

    claims = verifier.verify(bearer_token(request.headers))
    claims.require("doctor", "radiologist")     # 403 ROLE_REQUIRED unless it holds one of them
"""

from __future__ import annotations

import json
import re
import secrets as _secrets
import time
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bianjie.kit.errors import Forbidden, Unauthorized
from bianjie.kit.tokenkeys import ALGORITHMS, PublicKeySet, TokenSigner, b64url, b64url_decode

ISSUER = "bianjie"
TYP = "JWT"
DEFAULT_TTL = 900
MAX_TTL = 12 * 3600
CLOCK_LEEWAY = 60  # seconds an ``iat`` may lie in the future (clock skew between containers)
MAX_TOKEN_CHARS = 8192

Kind = Literal["patient", "staff"]
_RESERVED_CLAIMS = frozenset({"sub", "kind", "roles", "iat", "exp", "iss", "jti"})
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class Claims(BaseModel):
    # unknown claims are ignored (not refused) so a newer issuer's tokens pass an older verifier
    # during a rolling deploy; the signature already proves the issuer wrote them
    model_config = ConfigDict(frozen=True, extra="ignore")

    sub: str = Field(min_length=1, max_length=200)
    kind: Kind
    roles: tuple[str, ...] = ()
    iat: int
    exp: int
    iss: Literal["bianjie"] = ISSUER
    jti: str = Field(min_length=8, max_length=64)
    hospital: str | None = None
    extra: dict[str, Any] = Field(default_factory=dict)

    def has_role(self, *roles: str) -> bool:
        return any(role in self.roles for role in roles)

    def require(self, *roles: str) -> Claims:
        """Return self if the token holds at least ONE of ``roles``; else 403 ROLE_REQUIRED."""
        return require_roles(self, *roles)

    def require_kind(self, *kinds: Kind) -> Claims:
        return require_kind(self, *kinds)


def require_roles(claims: Claims, *roles: str) -> Claims:
    """403 ROLE_REQUIRED unless ``claims`` holds at least one of ``roles`` (any-of)."""
    if not roles:
        raise ValueError("name at least one role")
    if not claims.has_role(*roles):
        raise Forbidden(
            f"this action needs one of the roles: {', '.join(roles)}",
            code="ROLE_REQUIRED",
            details={"required_any": list(roles)},
        )
    return claims


def require_kind(claims: Claims, *kinds: Kind) -> Claims:
    """403 KIND_REQUIRED unless the token is of one of ``kinds`` (a staff token on a patient route...)."""
    if claims.kind not in kinds:
        raise Forbidden(
            f"this action needs a {' or '.join(kinds)} token",
            code="KIND_REQUIRED",
            details={"required_any": list(kinds)},
        )
    return claims


def _json(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8")


def _malformed() -> Unauthorized:
    return Unauthorized("the token is malformed", code="TOKEN_MALFORMED")


def _invalid() -> Unauthorized:
    return Unauthorized("the token is not valid", code="TOKEN_INVALID")


def bearer_token(headers: Mapping[str, str] | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (any header-name case), else None."""
    if not headers:
        return None
    value = headers.get("authorization") or headers.get("Authorization")
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), None)
    if not value:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


class TokenIssuer:
    """Mints tokens with ``signer``. Only the issuer function builds one (``deps.token_issuer``)."""

    def __init__(self, signer: TokenSigner, clock: Callable[[], float] = time.time) -> None:
        self._signer = signer
        self._clock = clock

    def __repr__(self) -> str:
        return f"TokenIssuer(kid={self.kid!r})"

    @property
    def kid(self) -> str:
        return self._signer.public_key.kid

    def issue(
        self,
        subject: str,
        kind: Kind,
        roles: list[str] | tuple[str, ...] = (),
        ttl_seconds: int = DEFAULT_TTL,
        **claims: Any,
    ) -> str:
        """A token for ``subject``. ``hospital=`` becomes a claim; other keywords go into ``extra``."""
        if not 0 < ttl_seconds <= MAX_TTL:
            raise ValueError(f"ttl_seconds must be in 1..{MAX_TTL}")
        clash = _RESERVED_CLAIMS & claims.keys()
        if clash:
            raise ValueError(f"reserved claim names: {sorted(clash)}")
        now = int(self._clock())
        hospital = claims.pop("hospital", None)
        extra = dict(claims.pop("extra", None) or {})
        extra.update(claims)
        payload = Claims(
            sub=subject,
            kind=kind,
            roles=tuple(roles),
            iat=now,
            exp=now + int(ttl_seconds),
            jti=_secrets.token_urlsafe(12),
            hospital=hospital,
            extra=extra,
        ).model_dump(exclude_none=True, mode="json")
        if not payload.get("extra"):
            payload.pop("extra", None)
        key = self._signer.public_key
        header = {"alg": key.alg, "typ": TYP, "kid": key.kid}
        signing_input = (b64url(_json(header)) + "." + b64url(_json(payload))).encode("ascii")
        return signing_input.decode("ascii") + "." + b64url(self._signer.sign(signing_input))


class TokenVerifier:
    """Verifies tokens against the published public keys; holds nothing that could mint one."""

    def __init__(self, keys: PublicKeySet, clock: Callable[[], float] = time.time) -> None:
        self._keys = keys
        self._clock = clock

    def __repr__(self) -> str:
        return f"TokenVerifier({self._keys!r})"

    @property
    def keys(self) -> PublicKeySet:
        return self._keys

    def verify(self, token: str | None) -> Claims:
        """The claims of a valid, unexpired token; else 401 TOKEN_MISSING / MALFORMED / INVALID / EXPIRED."""
        if not token:
            raise Unauthorized("a token is required", code="TOKEN_MISSING")
        if len(token) > MAX_TOKEN_CHARS or not _TOKEN_RE.fullmatch(token):
            raise _malformed()
        header_s, payload_s, signature_s = token.split(".")
        try:
            header = json.loads(b64url_decode(header_s))
            signature = b64url_decode(signature_s)
        except ValueError as exc:  # includes JSON and base64 errors
            raise _malformed() from exc
        if (
            not isinstance(header, dict)
            or header.get("typ", TYP) != TYP
            or header.get("alg") not in ALGORITHMS
            or "crit" in header  # RFC 7515 4.1.11: extensions we do not understand must be refused
        ):
            raise _malformed()
        key = self._keys.get(str(header.get("kid")))
        if key is None or key.alg != header["alg"]:
            raise _invalid()  # unknown or retired kid; or an alg the key does not sign with
        if not key.verify(f"{header_s}.{payload_s}".encode("ascii"), signature):
            raise _invalid()
        try:
            claims = Claims.model_validate(json.loads(b64url_decode(payload_s)))
        except (ValueError, ValidationError) as exc:
            raise _malformed() from exc
        now = self._clock()
        if now >= claims.exp:
            raise Unauthorized("the token has expired", code="TOKEN_EXPIRED")
        if claims.iat > now + CLOCK_LEEWAY or claims.exp - claims.iat > MAX_TTL:
            raise _invalid()
        return claims

    def verify_headers(self, headers: Mapping[str, str] | None) -> Claims:
        """Verify the bearer token of a request's headers (TOKEN_MISSING without one)."""
        return self.verify(bearer_token(headers))
