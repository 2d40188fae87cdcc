"""Video rooms: LiveKit-compatible access tokens (HS256 JWT with a ``video`` grant) and webhooks.

A self-hosted LiveKit server (Apache-2.0) checks these tokens itself; we only mint them, for participants,
valid until the slot's end plus a grace. Room names are 128 random bits (``new_room_name``), never the
case id. Webhooks arrive with ``Authorization: <JWT>`` whose ``sha256`` claim is the base64 SHA-256 of the
body (LiveKit's ``WebhookReceiver``); ``verify_webhook`` checks both.

The local stand-in is the same minting with a key derived from the deployment (``wiring``), and a URL
that says ``standin``: there is no media server on the local stack.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any, Protocol

from bianjie.kit.encoding import b64url, b64url_decode
from bianjie.kit.errors import Unauthorized

GRACE_S = 30 * 60  # tokens stay valid this long after the slot's end


def new_room_name() -> str:
    return "mdt-" + secrets.token_hex(16)  # 128 random bits


class RoomTokens(Protocol):
    url: str

    def mint(self, room: str, identity: str, name: str, not_after: float) -> str: ...

    def verify_webhook(self, body: bytes, authorization: str) -> dict[str, Any]: ...


def _jwt(claims: dict[str, Any], secret: bytes) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    return f"{header}.{payload}.{b64url(hmac.new(secret, signing_input, hashlib.sha256).digest())}"


def decode_jwt(token: str, secret: bytes, now: float) -> dict[str, Any]:
    """Verifies an HS256 JWT (signature, exp, nbf) and answers its claims; ``Unauthorized`` otherwise."""
    try:
        head, payload, sig = token.split(".")
        header = json.loads(b64url_decode(head))
        expected = hmac.new(secret, f"{head}.{payload}".encode("ascii"), hashlib.sha256).digest()
        ok = header.get("alg") == "HS256" and hmac.compare_digest(expected, b64url_decode(sig))
        claims: dict[str, Any] = json.loads(b64url_decode(payload)) if ok else {}
    except (ValueError, TypeError):
        ok, claims = False, {}
    if not ok or not isinstance(claims, dict):
        raise Unauthorized("the token's signature does not verify", code="ROOM_TOKEN_INVALID")
    if "exp" in claims and now >= float(claims["exp"]):
        raise Unauthorized("the token has expired", code="ROOM_TOKEN_INVALID")
    if "nbf" in claims and now + 60 < float(claims["nbf"]):
        raise Unauthorized("the token is not valid yet", code="ROOM_TOKEN_INVALID")
    return claims


@dataclass
class LiveKitTokens:
    """Tokens for a LiveKit server at ``url`` holding the API key ``api_key`` with ``api_secret``."""

    url: str
    api_key: str
    api_secret: bytes
    clock: Any = time.time

    def mint(self, room: str, identity: str, name: str, not_after: float) -> str:
        now = int(self.clock())
        claims = {
            "iss": self.api_key,
            "sub": identity,
            "name": name,
            "nbf": now - 10,
            "exp": int(not_after),
            "jti": secrets.token_hex(8),
            "video": {
                "room": room,
                "roomJoin": True,
                "canPublish": True,
                "canSubscribe": True,
                "canPublishData": True,
            },
        }
        return _jwt(claims, self.api_secret)

    def verify_webhook(self, body: bytes, authorization: str) -> dict[str, Any]:
        token = authorization.removeprefix("Bearer ").strip()
        claims = decode_jwt(token, self.api_secret, self.clock())
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        if claims.get("iss") != self.api_key or not hmac.compare_digest(str(claims.get("sha256", "")), digest):
            raise Unauthorized("the webhook's signature does not cover this body", code="WEBHOOK_INVALID")
        parsed: dict[str, Any] = json.loads(body)
        return parsed

    def sign_webhook(self, body: bytes) -> str:
        """What the server sends with a webhook (used by the stand-in and tests)."""
        now = int(self.clock())
        digest = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
        return _jwt({"iss": self.api_key, "nbf": now - 10, "exp": now + 300, "sha256": digest}, self.api_secret)
