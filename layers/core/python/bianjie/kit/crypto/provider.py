"""The crypto provider interface and the module-level helpers every service calls.

INTERFACE CONTRACT (backends implement ``CryptoBackend``):
- Keys are backend-neutral value objects (``Sm2PrivateKey``/``Sm2PublicKey`` hold integers), so a key
  made by one backend is used by another unchanged. Constructing one checks it: the public point
  must lie on the curve and the private scalar must be in [1, n-2], else ``CryptoError``.
- SM2 signatures are DER-encoded ``SEQUENCE { r INTEGER, s INTEGER }`` (GM/T 0009); ``sig_to_raw`` /
  ``sig_from_raw`` convert to/from the 64-byte r||s form some partners (NHSA) use.
- SM2 ciphertext is ``04 || C1.x || C1.y || C3 || C2`` (GB/T 32918.4-2016 order, C1C3C2).
- SM4-GCM returns ``ciphertext || tag`` (16-byte tag); decrypt raises ``CryptoError`` on any tamper.
  Nonces are 8 to 128 bytes; use 12 (other lengths are hashed into the counter, as GCM specifies).
- ECB/CBC pad with PKCS#7 unless ``pad=False`` (then the length must be a multiple of 16).
- ``user_id`` is the SM2 distinguishing identifier (Z value input); default ``1234567812345678``.
- Every rejected input (wrong key or IV size, bad tag, bad padding, malformed ciphertext, key or
  encoding) raises ``CryptoError``. ``sm2_verify`` never raises for a bad signature: a wrong or
  malformed one gives ``False``.

Backends: ``openssl`` (default; ``cryptography`` for SM3/SM4/HMAC and ``tongsuopy`` for SM2) and
``gmssl`` (pure Python, the cross-check). They are imported on first use, never at import time,
because cold start matters. ``BIANJIE_CRYPTO_BACKEND`` picks the default backend.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from bianjie.kit.crypto import asn1, sm2_curve

DEFAULT_SM2_USER_ID = b"1234567812345678"
DEFAULT_BACKEND = "openssl"
BACKEND_ENV = "BIANJIE_CRYPTO_BACKEND"

_BACKEND_MODULES = {
    "openssl": "bianjie.kit.crypto.openssl_backend",
    "gmssl": "bianjie.kit.crypto.gmssl_backend",
}

_HEX = re.compile(r"[0-9a-fA-F]*")


class CryptoError(Exception):
    """Crypto input that is malformed, the wrong size, or has been tampered with.

    Messages describe the problem, never the key, plaintext or ciphertext involved.
    """


def _hex_bytes(value: str) -> bytes:
    if len(value) % 2 or not _HEX.fullmatch(value):
        raise CryptoError("not a hex string")
    return bytes.fromhex(value)


@dataclass(frozen=True)
class Sm2PublicKey:
    x: int
    y: int

    def __post_init__(self) -> None:
        if not sm2_curve.is_on_curve(self.x, self.y):
            raise CryptoError("public key is not a point on the SM2 curve")

    def to_bytes(self) -> bytes:
        """Uncompressed point ``04||X||Y`` (65 bytes)."""
        return b"\x04" + self.x.to_bytes(32, "big") + self.y.to_bytes(32, "big")

    def to_hex(self) -> str:
        """Uncompressed point ``04||X||Y`` as 130 lower-case hex characters."""
        return self.to_bytes().hex()

    @classmethod
    def from_hex(cls, value: str) -> Sm2PublicKey:
        """``04||X||Y`` (130 hex), bare ``X||Y`` (128 hex, as some partners send) or compressed (66 hex)."""
        raw = _hex_bytes(value.strip())
        if len(raw) == 64:
            raw = b"\x04" + raw
        try:
            x, y = asn1.parse_point(raw)
        except ValueError as exc:
            raise CryptoError(f"bad SM2 public key: {exc}") from None
        return cls(x, y)

    def to_pem(self) -> str:
        """SubjectPublicKeyInfo PEM (id-ecPublicKey with the SM2 curve OID 1.2.156.10197.1.301)."""
        return asn1.pem_encode("PUBLIC KEY", asn1.encode_public_key(self.x, self.y))

    @classmethod
    def from_pem(cls, pem: str | bytes) -> Sm2PublicKey:
        try:
            _, der = asn1.pem_decode(pem, ("PUBLIC KEY",))
            x, y = asn1.decode_public_key(der)
        except ValueError as exc:
            raise CryptoError(f"bad SM2 public key PEM: {exc}") from None
        return cls(x, y)


@dataclass(frozen=True, repr=False)
class Sm2PrivateKey:
    d: int

    def __post_init__(self) -> None:
        # d = n-1 is excluded because signing divides by (1 + d).
        if not (isinstance(self.d, int) and 1 <= self.d <= sm2_curve.N - 2):
            raise CryptoError("private key is out of range for SM2")

    def __repr__(self) -> str:  # never print key material
        return "Sm2PrivateKey(<secret>)"

    @cached_property
    def public_key(self) -> Sm2PublicKey:
        # Pure Python (a few ms), computed once per key object.
        x, y = sm2_curve.multiply_g(self.d)
        return Sm2PublicKey(x, y)

    def to_hex(self) -> str:
        return f"{self.d:064x}"

    @classmethod
    def from_hex(cls, value: str) -> Sm2PrivateKey:
        """64 hex digits; shorter forms (leading zeros dropped, as Java BigInteger does) are accepted."""
        value = value.strip()
        if not value or len(value) > 64 or not _HEX.fullmatch(value):
            raise CryptoError("bad SM2 private key hex")
        return cls(int(value, 16))

    def to_pem(self) -> str:
        """PKCS#8 PEM, unencrypted."""
        pub = self.public_key
        return asn1.pem_encode("PRIVATE KEY", asn1.encode_private_key(self.d, pub.x, pub.y))

    @classmethod
    def from_pem(cls, pem: str | bytes) -> Sm2PrivateKey:
        """PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY"); encrypted PEM is not supported."""
        try:
            _, der = asn1.pem_decode(pem, ("PRIVATE KEY", "EC PRIVATE KEY"))
            d, public = asn1.decode_private_key(der)
        except ValueError as exc:
            raise CryptoError(f"bad SM2 private key PEM: {exc}") from None
        key = cls(d)
        # A file whose embedded public key does not belong to d would make signatures that fail
        # against the key everyone else holds; refuse it here rather than in production traffic.
        if public is not None and key.public_key != Sm2PublicKey(*public):
            raise CryptoError("private key PEM carries a public key that does not match it")
        return key


def _remember_public_key(key: Sm2PrivateKey, public: Sm2PublicKey) -> Sm2PrivateKey:
    """Seed the cached ``public_key`` when a native backend already knows it (saves the Python math)."""
    vars(key)["public_key"] = public
    return key


def sig_to_raw(signature: bytes) -> bytes:
    """DER signature to the 64-byte ``r||s`` form."""
    try:
        r, s = asn1.decode_signature(signature)
    except ValueError as exc:
        raise CryptoError(f"bad SM2 signature: {exc}") from None
    if not (1 <= r < sm2_curve.N and 1 <= s < sm2_curve.N):
        raise CryptoError("SM2 signature values out of range")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def sig_from_raw(raw: bytes) -> bytes:
    """64-byte ``r||s`` to a DER signature."""
    if len(raw) != 64:
        raise CryptoError("raw SM2 signature must be 64 bytes")
    return asn1.encode_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def join_sm2_ciphertext(x: int, y: int, c3: bytes, c2: bytes) -> bytes:
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big") + c3 + c2


def split_sm2_ciphertext(ciphertext: bytes) -> tuple[int, int, bytes, bytes]:
    """Split ``04 || x || y || C3 || C2`` into (x, y, C3, C2); C1 must be on the curve.

    Backends must not multiply their private key by a point off the curve (an invalid-curve attack
    recovers the key from the answers), so the check lives here where every backend gets it.
    """
    if len(ciphertext) < 1 + 64 + 32 + 1 or ciphertext[0] != 4:
        raise CryptoError("malformed SM2 ciphertext")
    x = int.from_bytes(ciphertext[1:33], "big")
    y = int.from_bytes(ciphertext[33:65], "big")
    if not sm2_curve.is_on_curve(x, y):
        raise CryptoError("malformed SM2 ciphertext: C1 is not on the curve")
    return x, y, ciphertext[65:97], ciphertext[97:]


class CryptoBackend(Protocol):
    name: str

    def sm3(self, data: bytes) -> bytes: ...
    def hmac_sm3(self, key: bytes, data: bytes) -> bytes: ...
    def sm4_ecb_encrypt(self, key: bytes, data: bytes, *, pad: bool = True) -> bytes: ...
    def sm4_ecb_decrypt(self, key: bytes, data: bytes, *, pad: bool = True) -> bytes: ...
    def sm4_cbc_encrypt(self, key: bytes, iv: bytes, data: bytes, *, pad: bool = True) -> bytes: ...
    def sm4_cbc_decrypt(self, key: bytes, iv: bytes, data: bytes, *, pad: bool = True) -> bytes: ...
    def sm4_gcm_encrypt(self, key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes: ...
    def sm4_gcm_decrypt(self, key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes: ...
    def sm2_generate_key(self) -> Sm2PrivateKey: ...
    def sm2_sign(self, key: Sm2PrivateKey, message: bytes, user_id: bytes = DEFAULT_SM2_USER_ID) -> bytes: ...
    def sm2_verify(
        self, key: Sm2PublicKey, message: bytes, signature: bytes, user_id: bytes = DEFAULT_SM2_USER_ID
    ) -> bool: ...
    def sm2_encrypt(self, key: Sm2PublicKey, plaintext: bytes) -> bytes: ...
    def sm2_decrypt(self, key: Sm2PrivateKey, ciphertext: bytes) -> bytes: ...


_backends: dict[str, CryptoBackend] = {}
_backends_lock = threading.Lock()


def backend(name: str) -> CryptoBackend:
    """The named backend, imported and built on first use and shared afterwards."""
    found = _backends.get(name)
    if found is not None:
        return found
    module_name = _BACKEND_MODULES.get(name)
    if module_name is None:
        raise ValueError(f"unknown crypto backend {name!r}; known: {', '.join(sorted(_BACKEND_MODULES))}")
    with _backends_lock:
        found = _backends.get(name)
        if found is None:
            found = importlib.import_module(module_name).create()
            _backends[name] = found
    return found


def default_backend() -> CryptoBackend:
    # the process environment on purpose: the backend is a property of the process (its native libraries),
    # not a setting of one function
    return backend(os.environ.get(BACKEND_ENV) or DEFAULT_BACKEND)


def sm3(data: bytes) -> bytes:
    return default_backend().sm3(data)


def hmac_sm3(key: bytes, data: bytes) -> bytes:
    return default_backend().hmac_sm3(key, data)


def sm4_ecb_encrypt(key: bytes, data: bytes, *, pad: bool = True) -> bytes:
    return default_backend().sm4_ecb_encrypt(key, data, pad=pad)


def sm4_ecb_decrypt(key: bytes, data: bytes, *, pad: bool = True) -> bytes:
    return default_backend().sm4_ecb_decrypt(key, data, pad=pad)


def sm4_cbc_encrypt(key: bytes, iv: bytes, data: bytes, *, pad: bool = True) -> bytes:
    return default_backend().sm4_cbc_encrypt(key, iv, data, pad=pad)


def sm4_cbc_decrypt(key: bytes, iv: bytes, data: bytes, *, pad: bool = True) -> bytes:
    return default_backend().sm4_cbc_decrypt(key, iv, data, pad=pad)


def sm4_gcm_encrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
    return default_backend().sm4_gcm_encrypt(key, nonce, data, aad)


def sm4_gcm_decrypt(key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
    return default_backend().sm4_gcm_decrypt(key, nonce, data, aad)


def sm2_generate_key() -> Sm2PrivateKey:
    return default_backend().sm2_generate_key()


def sm2_sign(key: Sm2PrivateKey, message: bytes, user_id: bytes = DEFAULT_SM2_USER_ID) -> bytes:
    return default_backend().sm2_sign(key, message, user_id)


def sm2_verify(key: Sm2PublicKey, message: bytes, signature: bytes, user_id: bytes = DEFAULT_SM2_USER_ID) -> bool:
    return default_backend().sm2_verify(key, message, signature, user_id)


def sm2_encrypt(key: Sm2PublicKey, plaintext: bytes) -> bytes:
    return default_backend().sm2_encrypt(key, plaintext)


def sm2_decrypt(key: Sm2PrivateKey, ciphertext: bytes) -> bytes:
    return default_backend().sm2_decrypt(key, ciphertext)
