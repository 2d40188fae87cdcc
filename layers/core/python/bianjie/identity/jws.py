"""Compact JWS for the provider's own JWTs (ID tokens, logout tokens, launch tickets), signed by a
``TokenSigner`` (KMS in TokenIssueFunction only) and verified against the published keys.

The platform's access tokens keep ``bianjie.kit.tokens`` (its ``Claims`` model); these carry OIDC's
claims (``aud``, ``nonce``, ``events``...) instead, so they are written here with the same rules: the
header's ``alg`` must be its key's, ``crit`` is refused, ``kid`` names exactly one published key.
"""

from __future__ import annotations

import json
from typing import Any

from bianjie.kit.tokenkeys import PublicKeySet, TokenSigner, b64url, b64url_decode


def _part(obj: dict[str, Any]) -> str:
    return b64url(json.dumps(obj, separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode("utf-8"))


def sign(signer: TokenSigner, claims: dict[str, Any], typ: str = "JWT") -> str:
    key = signer.public_key
    signing_input = _part({"alg": key.alg, "typ": typ, "kid": key.kid}) + "." + _part(claims)
    return signing_input + "." + b64url(signer.sign(signing_input.encode("ascii")))


class BadJws(ValueError):
    """Not a JWS of ours: malformed, unknown key, wrong alg or signature."""


def verify(token: str, keys: PublicKeySet, typ: str | None = None) -> dict[str, Any]:
    """The claims of a JWS one of ``keys`` signed (expiry and audience are the caller's checks)."""
    if not token or len(token) > 8192 or token.count(".") != 2:
        raise BadJws("malformed")
    head_s, body_s, sig_s = token.split(".")
    try:
        header = json.loads(b64url_decode(head_s))
        claims = json.loads(b64url_decode(body_s))
        signature = b64url_decode(sig_s)
    except ValueError as exc:
        raise BadJws("malformed") from exc
    if not isinstance(header, dict) or not isinstance(claims, dict) or "crit" in header:
        raise BadJws("malformed")
    if typ is not None and header.get("typ") != typ:
        raise BadJws("wrong type")
    key = keys.get(str(header.get("kid")))
    if key is None or key.alg != header.get("alg"):
        raise BadJws("unknown key")
    if not key.verify(f"{head_s}.{body_s}".encode("ascii"), signature):
        raise BadJws("bad signature")
    return claims
