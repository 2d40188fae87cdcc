"""The channel wire format: SM2-signed messages and SM4-GCM sealed resources (WeChat Pay v3, 国密 variant).

Messages from a channel to us (callbacks, and answers to our requests) carry::

    Paychannel-Timestamp: <unix seconds>
    Paychannel-Nonce: <random string>
    Paychannel-Serial: <serial of the signing key>
    Paychannel-Signature-Type: SM2-WITH-SM3
    Paychannel-Signature: base64(DER SM2 signature over "<timestamp>\\n<nonce>\\n<raw body>\\n")

Requests from us to a channel sign "<METHOD>\\n<path>\\n<timestamp>\\n<nonce>\\n<raw body>\\n" with our key,
in the same headers plus ``Paychannel-Merchant``. Hospital webhooks use the same scheme with the
``Bianjie-`` prefix and our webhook key.

A callback body::

    {"id": "<notification id>", "create_time": "...", "event_type": "TRANSACTION.SUCCESS",
     "resource_type": "encrypt-resource",
     "resource": {"algorithm": "AEAD_SM4_GCM", "ciphertext": "<base64 ct||tag>",
                  "nonce": "<12 ASCII chars>", "associated_data": "<text>"}}

The resource is SM4-GCM under the merchant's 16-byte API key; the nonce's ASCII bytes are the GCM
nonce and ``associated_data`` the AAD, as in WeChat Pay v3.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
import string
import time
from collections.abc import Callable, Mapping
from typing import Any

from bianjie.kit.crypto import (
    DEFAULT_SM2_USER_ID,
    CryptoError,
    Sm2PrivateKey,
    Sm2PublicKey,
    sm2_sign,
    sm2_verify,
    sm4_gcm_decrypt,
    sm4_gcm_encrypt,
)
from bianjie.kit.errors import AppError, BadRequest, Unauthorized
from bianjie.kit.signing import header_value

SIGNATURE_TYPE = "SM2-WITH-SM3"
ALGORITHM = "AEAD_SM4_GCM"
CHANNEL_PREFIX = "Paychannel"
WEBHOOK_PREFIX = "Bianjie"
DEFAULT_WINDOW = 300
# The SM2 user id (the "ID" in Z = SM3(ENTL || ID || a || b || G || P), GB/T 32918.2) of every signature in
# this format, both directions and hospital webhooks: GM/T 0009's default, "1234567812345678".
WEBHOOK_USER_ID = DEFAULT_SM2_USER_ID
_NONCE_ALPHABET = string.ascii_letters + string.digits


def new_nonce(length: int = 32) -> str:
    # one urandom read, not one per character (secrets.choice per character showed in the profile); the
    # modulo's slight bias does not matter for a nonce, which only has to be unique
    return "".join(_NONCE_ALPHABET[b % len(_NONCE_ALPHABET)] for b in secrets.token_bytes(length))


def signed_message(*parts: str | bytes) -> bytes:
    """The parts joined by "\\n" with a trailing "\\n" (the body goes in as raw bytes, never re-encoded)."""
    return b"".join((p if isinstance(p, bytes) else p.encode("utf-8")) + b"\n" for p in parts)


def sign_headers(
    key: Sm2PrivateKey,
    serial: str,
    message_parts: tuple[str | bytes, ...],
    *,
    prefix: str = CHANNEL_PREFIX,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers signing ``<message_parts...>\\n<ts>\\n<nonce>\\n<body>\\n``; message_parts end with the body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    nonce = nonce or new_nonce()
    *head, body = message_parts
    message = signed_message(*head, ts, nonce, body)
    return {
        f"{prefix}-Timestamp": ts,
        f"{prefix}-Nonce": nonce,
        f"{prefix}-Serial": serial,
        f"{prefix}-Signature-Type": SIGNATURE_TYPE,
        f"{prefix}-Signature": base64.b64encode(sm2_sign(key, message, WEBHOOK_USER_ID)).decode("ascii"),
    }


def verify_headers(
    headers: Mapping[str, str] | None,
    message_head: tuple[str, ...],
    body: bytes,
    public_key_for: Callable[[str], Sm2PublicKey | None],
    *,
    prefix: str = CHANNEL_PREFIX,
    now: float | None = None,
    window: int = DEFAULT_WINDOW,
) -> str:
    """Checks timestamp window, key serial and signature over the raw body; returns the serial.

    401 with CALLBACK_SIGNATURE_MISSING / CALLBACK_TIMESTAMP_OUT_OF_WINDOW / CALLBACK_KEY_UNKNOWN /
    CALLBACK_SIGNATURE_INVALID.
    """
    values = {name: header_value(headers, f"{prefix}-{name}") for name in ("Timestamp", "Nonce", "Serial", "Signature")}
    if any(not v for v in values.values()):
        raise Unauthorized(
            f"{prefix}-Timestamp/Nonce/Serial/Signature headers are required", code="CALLBACK_SIGNATURE_MISSING"
        )
    sig_type = header_value(headers, f"{prefix}-Signature-Type")
    if sig_type not in (None, SIGNATURE_TYPE):
        raise Unauthorized(f"signature type must be {SIGNATURE_TYPE}", code="CALLBACK_SIGNATURE_INVALID")
    try:
        ts = int(str(values["Timestamp"]))
    except ValueError:
        raise Unauthorized("timestamp must be unix seconds", code="CALLBACK_SIGNATURE_INVALID") from None
    current = time.time() if now is None else now
    if abs(current - ts) > window:
        raise Unauthorized(
            f"timestamp is more than {window} s from server time", code="CALLBACK_TIMESTAMP_OUT_OF_WINDOW"
        )
    serial = str(values["Serial"])
    public_key = public_key_for(serial)
    if public_key is None:
        raise Unauthorized("unknown key serial", code="CALLBACK_KEY_UNKNOWN")
    try:
        signature = base64.b64decode(str(values["Signature"]), validate=True)
        ok = sm2_verify(
            public_key,
            signed_message(*message_head, str(values["Timestamp"]), str(values["Nonce"]), body),
            signature,
            WEBHOOK_USER_ID,
        )
    except (binascii.Error, ValueError, CryptoError):
        ok = False
    if not ok:
        raise Unauthorized("the signature does not verify", code="CALLBACK_SIGNATURE_INVALID")
    return serial


def seal_resource(api_key: bytes, plaintext: Mapping[str, Any], associated_data: str) -> dict[str, str]:
    nonce = new_nonce(12)
    data = json.dumps(plaintext, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    sealed = sm4_gcm_encrypt(api_key, nonce.encode("ascii"), data, associated_data.encode("utf-8"))
    return {
        "algorithm": ALGORITHM,
        "ciphertext": base64.b64encode(sealed).decode("ascii"),
        "nonce": nonce,
        "associated_data": associated_data,
    }


def open_resource(api_key: bytes, resource: Mapping[str, Any]) -> dict[str, Any]:
    """The decrypted resource; 400 CALLBACK_DECRYPT_FAILED on a wrong algorithm, key, nonce, AAD or tag."""
    try:
        if resource.get("algorithm") != ALGORITHM:
            raise ValueError("algorithm")
        plain = sm4_gcm_decrypt(
            api_key,
            str(resource["nonce"]).encode("ascii"),
            base64.b64decode(str(resource["ciphertext"]), validate=True),
            str(resource.get("associated_data") or "").encode("utf-8"),
        )
        value = json.loads(plain)
        if not isinstance(value, dict):
            raise ValueError("not an object")
        return value
    except (KeyError, ValueError, TypeError, binascii.Error, CryptoError, UnicodeError):
        raise BadRequest("the resource could not be decrypted", code="CALLBACK_DECRYPT_FAILED") from None


def constant_eq(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def loads_object(raw: bytes, code: str = "CALLBACK_MALFORMED") -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeError):
        raise BadRequest("the body is not JSON", code=code) from None
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object", code=code)
    return value


__all__ = [
    "ALGORITHM",
    "CHANNEL_PREFIX",
    "SIGNATURE_TYPE",
    "WEBHOOK_PREFIX",
    "AppError",
    "dumps",
    "loads_object",
    "new_nonce",
    "open_resource",
    "seal_resource",
    "sign_headers",
    "signed_message",
    "verify_headers",
]
