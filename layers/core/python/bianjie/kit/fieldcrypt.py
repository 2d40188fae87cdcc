"""Sensitive fields: SM4-GCM encryption under wrapped data keys, and an HMAC-SM3 blind index.

Token format (ASCII, safe in JSON and URLs)::

    sm4gcm1.<b64url(wrapped data key)>.<b64url(12-byte nonce)>.<b64url(ciphertext || 16-byte tag)>

- b64url is base64url without padding.
- AAD is the *context* (UTF-8), e.g. ``"film/patient_name/<record id>"``. A ciphertext copied to
  another field or record fails to decrypt, so a database editor cannot swap two patients' names.
- One data key serves many fields until ``rotate_after_uses`` encryptions or ``rotate_after_seconds``
  pass; each encryption draws a fresh random nonce (well under GCM's 2^32 random-nonce budget).
  Decryption unwraps whatever data key a token names, through the key port's LRU cache.

``BlindIndex`` makes encrypted fields searchable by equality: store ``digest(value, kind)`` beside the
ciphertext and look up by it. The kind is part of the MAC input, so the same digits as a phone number
and as an ID number index differently.
"""

from __future__ import annotations

import binascii
import re
import secrets
import threading
import time
import unicodedata
from collections.abc import Callable

from bianjie.kit.crypto import CryptoError, hmac_sm3, sm4_gcm_decrypt, sm4_gcm_encrypt
from bianjie.kit.encoding import b64url, b64url_decode
from bianjie.kit.errors import Internal
from bianjie.kit.keys import DataKey, KeyPort

TOKEN_PREFIX = "sm4gcm1"
NONCE_BYTES = 12


class FieldCipher:
    """Encrypts short strings (names, ID numbers, phones, diagnoses) bound to a context."""

    def __init__(
        self,
        key_port: KeyPort,
        *,
        rotate_after_uses: int = 10_000,
        rotate_after_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._keys = key_port
        self._max_uses = rotate_after_uses
        self._max_age = rotate_after_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._dek: DataKey | None = None
        self._dek_uses = 0
        self._dek_born = 0.0

    def _data_key(self) -> DataKey:
        with self._lock:
            now = self._clock()
            if self._dek is None or self._dek_uses >= self._max_uses or now - self._dek_born >= self._max_age:
                self._dek = self._keys.generate_data_key()
                self._dek_uses = 0
                self._dek_born = now
            self._dek_uses += 1
            return self._dek

    def encrypt(self, plaintext: str, context: str) -> str:
        if not context:
            raise ValueError("a context is required (e.g. 'film/patient_name/<record id>')")
        dek = self._data_key()
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = sm4_gcm_encrypt(dek.plaintext, nonce, plaintext.encode("utf-8"), context.encode("utf-8"))
        return ".".join((TOKEN_PREFIX, b64url(dek.wrapped), b64url(nonce), b64url(sealed)))

    def decrypt(self, token: str, context: str) -> str:
        """The plaintext; 500 FIELD_DECRYPT_FAILED when the token is malformed, moved or tampered with.

        The message never contains the token or the context's record id.
        """
        try:
            prefix, wrapped_s, nonce_s, sealed_s = token.split(".")
            if prefix != TOKEN_PREFIX:
                raise CryptoError("unknown field token version")
            wrapped, nonce, sealed = b64url_decode(wrapped_s), b64url_decode(nonce_s), b64url_decode(sealed_s)
            if len(nonce) != NONCE_BYTES or len(sealed) < 16:
                raise CryptoError("bad field token lengths")
            key = self._keys.unwrap(wrapped)
            return sm4_gcm_decrypt(key, nonce, sealed, context.encode("utf-8")).decode("utf-8")
        except (CryptoError, ValueError, binascii.Error, UnicodeDecodeError, AttributeError) as exc:
            raise Internal("a protected field could not be decrypted", code="FIELD_DECRYPT_FAILED") from exc

    def encrypt_optional(self, plaintext: str | None, context: str) -> str | None:
        return None if plaintext is None else self.encrypt(plaintext, context)

    def decrypt_optional(self, token: str | None, context: str) -> str | None:
        return None if token is None else self.decrypt(token, context)


def is_field_token(value: object) -> bool:
    return isinstance(value, str) and value.startswith(TOKEN_PREFIX + ".")


# ---------------------------------------------------------------- blind index

_WS_RE = re.compile(r"\s+")
_KIND_RE = re.compile(r"[a-z][a-z0-9_]{0,63}")


def normalise(value: str, kind: str) -> str:
    """The canonical form a blind index is computed over.

    - ``id_number`` (and ``passport``, ``card_no``, ``agreement_no``, ``medical_record_no``):
      NFKC (full-width to ASCII), all whitespace and hyphens removed, upper-case (``x`` -> ``X``).
    - ``phone`` / ``mobile``: digits only; a leading ``86`` / ``0086`` country code is dropped from
      mainland mobile numbers, so ``+86 138-0013-8000`` equals ``13800138000``.
    - ``name``: NFKC, trimmed, inner whitespace runs collapsed to one space, case-folded.
    - anything else: NFKC and trimmed.
    """
    text = unicodedata.normalize("NFKC", value)
    if kind in {"id_number", "passport", "card_no", "agreement_no", "medical_record_no"}:
        return _WS_RE.sub("", text).replace("-", "").upper()
    if kind in {"phone", "mobile"}:
        digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
        for prefix in ("0086", "86"):
            rest = digits[len(prefix) :]
            if digits.startswith(prefix) and len(rest) == 11 and rest.startswith("1"):
                return rest
        return digits
    if kind == "name":
        return _WS_RE.sub(" ", text).strip().casefold()
    return text.strip()


class BlindIndex:
    """HMAC-SM3 equality index over normalised values. Keep the key apart from the data keys."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a blind-index key needs at least 16 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "BlindIndex(<secret>)"

    def digest(self, value: str, kind: str) -> str:
        """64 lower-case hex characters; equal for equal normalised values of the same kind."""
        if not _KIND_RE.fullmatch(kind):
            raise ValueError("kind must be a short lower-case identifier")
        # kind can hold no NUL, so "kind NUL value" is unambiguous
        message = kind.encode("ascii") + b"\x00" + normalise(value, kind).encode("utf-8")
        return hmac_sm3(self._key, message).hex()
