"""HMAC-SM3 tags of escort's secrets (handles, invitation codes, phone codes, sessions, addresses): what
the table holds instead of the secret. The key is derived for this purpose from the deployment's
HMAC key (``deps.derived_key``), so the blind index and these tags never share a key."""

from __future__ import annotations

from bianjie.kit.crypto import hmac_sm3


class HmacTags:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a tag key needs at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "HmacTags(<secret>)"

    def tag(self, kind: str, value: str) -> str:
        return hmac_sm3(self._key, kind.encode("ascii") + b"\x00" + value.encode("utf-8")).hex()
