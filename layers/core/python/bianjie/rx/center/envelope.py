"""The NHSA request/response envelope, as the public C#, Java and JS clients build it.

Request (JSON)::

    {"appId", "encType": "SM4", "signType": "SM2", "timestamp": <ms>, "version": "1.0.0",
     "encData": <upper hex>, "signData": <base64 r||s>}

- Key: ``K = ascii(upper(hex(SM4-ECB_{appId[:16]}(appSecret)))[:16])`` (PKCS#7 padding): a 16-character
  hex string used as the 16-byte key. It holds only 64 bits of entropy and ECB leaks equal blocks;
  that is the protocol, so it lives here and nowhere else.
- ``encData = upper(hex(SM4-ECB-PKCS7_K(json)))`` where json has non-ASCII characters \\u-escaped.
- ``signData = base64(r||s)`` of SM2-with-SM3 over the sign string, **user id = appSecret**:
  every envelope field except ``signData``/``encData``/``extra`` plus ``data`` (the plaintext), keys
  sorted, ``k=v`` joined by ``&``, then ``&key=<appSecret>``. Inside ``data``: numbers and booleans
  become strings, empty and null values and empty lists are dropped, and each object in a list has
  its keys sorted (``normalise_data``, after the public JS client).

A response is the same envelope plus ``code`` (0 ok, -1 system error, -2 business error) and
``message``, signed by the center's key with the same user id (an assumption: no public source shows a
response signature; see docs/rx.md).
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bianjie.kit.crypto import (
    CryptoError,
    Sm2PrivateKey,
    Sm2PublicKey,
    sig_from_raw,
    sig_to_raw,
    sm2_sign,
    sm2_verify,
    sm4_ecb_decrypt,
    sm4_ecb_encrypt,
)

ENC_TYPE = "SM4"
SIGN_TYPE = "SM2"
VERSION = "1.0.0"
_EXCLUDED = frozenset({"signData", "encData", "extra"})


class EnvelopeError(Exception):
    """A malformed, undecryptable or badly signed envelope. ``code`` is stable."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def derive_key(app_id: str, app_secret: str) -> bytes:
    if len(app_id) < 16:
        raise ValueError("an NHSA appId has at least 16 characters")
    encrypted = sm4_ecb_encrypt(app_id[:16].encode("utf-8"), app_secret.encode("utf-8"))
    return encrypted.hex().upper()[:16].encode("ascii")


def plaintext_json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode("ascii")


def _js_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def normalise_data(data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(data):
        value = data[key]
        if isinstance(value, bool | int | float):
            value = _js_string(value)
        if isinstance(value, list):
            if not value:
                continue
            value = [{k: item[k] for k in sorted(item)} if isinstance(item, Mapping) else item for item in value]
        if value is None or value == "":
            continue
        out[key] = value
    return out


def sign_string(fields: Mapping[str, Any], data: Mapping[str, Any], app_secret: str) -> bytes:
    parts: dict[str, str] = {}
    for key, value in fields.items():
        if key in _EXCLUDED or value is None or _js_string(value) == "":
            continue
        parts[key] = _js_string(value)
    parts["data"] = json.dumps(normalise_data(data), ensure_ascii=False, separators=(",", ":"))
    joined = "&".join(f"{k}={parts[k]}" for k in sorted(parts))
    return f"{joined}&key={app_secret}".encode()


@dataclass(frozen=True)
class Credentials:
    """One side's view: the shared app id and secret, its own signing key, the other side's public key."""

    app_id: str
    app_secret: str
    private_key: Sm2PrivateKey
    peer_public_key: Sm2PublicKey

    def __repr__(self) -> str:
        return f"Credentials(app_id={self.app_id!r}, <secret>)"


def seal(
    creds: Credentials,
    data: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """An envelope carrying ``data``; ``extra`` adds plain fields (a response's ``code``/``message``)."""
    fields: dict[str, Any] = {
        "appId": creds.app_id,
        "encType": ENC_TYPE,
        "signType": SIGN_TYPE,
        "timestamp": int(clock() * 1000),
        "version": VERSION,
        **(extra or {}),
    }
    key = derive_key(creds.app_id, creds.app_secret)
    message = sign_string(fields, data, creds.app_secret)
    signature = sig_to_raw(sm2_sign(creds.private_key, message, user_id=creds.app_secret.encode("utf-8")))
    return {
        **fields,
        "encData": sm4_ecb_encrypt(key, plaintext_json(data)).hex().upper(),
        "signData": base64.b64encode(signature).decode("ascii"),
    }


def open_envelope(
    creds: Credentials,
    envelope: Mapping[str, Any],
    max_skew_ms: int | None = None,
    clock: Callable[[], float] = time.time,
) -> dict[str, Any]:
    """The verified plaintext of an envelope; ``EnvelopeError`` otherwise."""
    if envelope.get("encType") != ENC_TYPE or envelope.get("signType") != SIGN_TYPE:
        raise EnvelopeError("ENVELOPE_TYPE", "encType must be SM4 and signType SM2")
    if envelope.get("appId") != creds.app_id:
        raise EnvelopeError("ENVELOPE_APP", "the envelope names another appId")
    timestamp = envelope.get("timestamp")
    if not isinstance(timestamp, int):
        raise EnvelopeError("ENVELOPE_MALFORMED", "timestamp must be milliseconds since the epoch")
    if max_skew_ms is not None and abs(clock() * 1000 - timestamp) > max_skew_ms:
        raise EnvelopeError("ENVELOPE_STALE", "the envelope's timestamp is outside the allowed window")
    try:
        cipher = bytes.fromhex(str(envelope.get("encData", "")))
        data = json.loads(sm4_ecb_decrypt(derive_key(creds.app_id, creds.app_secret), cipher))
        raw_sig = base64.b64decode(str(envelope.get("signData", "")), validate=True)
        der = sig_from_raw(raw_sig)
    except (ValueError, CryptoError, binascii.Error):
        raise EnvelopeError("ENVELOPE_MALFORMED", "encData or signData cannot be decoded") from None
    if not isinstance(data, dict):
        raise EnvelopeError("ENVELOPE_MALFORMED", "encData must hold a JSON object")
    message = sign_string(envelope, data, creds.app_secret)
    if not sm2_verify(creds.peer_public_key, message, der, user_id=creds.app_secret.encode("utf-8")):
        raise EnvelopeError("ENVELOPE_SIGNATURE", "signData does not verify")
    return data
