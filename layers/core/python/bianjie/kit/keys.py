"""The key port: envelope encryption with data keys wrapped by a master key we never hold.

A data key (DEK) is 16 random bytes used as an SM4 key. It is stored only *wrapped* (encrypted by the
master key) next to the data; ``unwrap`` asks the key service to decrypt it. Adapters:

- ``KmsKeyPort``: AWS KMS ``GenerateDataKey(NumberOfBytes=16)`` / ``Decrypt`` (and ``Encrypt`` for
  ``wrap``). The master key never leaves KMS.
- ``LocalKeyPort``: the on-premises stand-in for a cipher machine / HSM (GM/T 0028). It wraps with
  SM4-GCM under a master key held *in this process*. That is a SOFTWARE STAND-IN: fine for the local
  stack and tests, and for a hospital only until its cipher machine's SDF interface is wired in as
  another adapter of this port. GB/T 39786 level 3 wants the master key in certified hardware.

Both adapters keep a bounded LRU cache of unwrapped keys: a KMS call costs milliseconds and every
field decryption would otherwise make one. The boto3 client is injected; this module never imports it.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from bianjie.kit.crypto import CryptoError, sm3, sm4_gcm_decrypt, sm4_gcm_encrypt

DATA_KEY_BYTES = 16


@dataclass(frozen=True)
class DataKey:
    plaintext: bytes = field(repr=False)
    wrapped: bytes
    key_id: str

    def __repr__(self) -> str:  # never print key material
        return f"DataKey(key_id={self.key_id!r}, wrapped=<{len(self.wrapped)} bytes>)"


class KeyPort(Protocol):
    def generate_data_key(self) -> DataKey:
        """A fresh 16-byte data key and its wrapped form."""
        ...

    def unwrap(self, wrapped: bytes) -> bytes:
        """The plaintext of a wrapped key; ``CryptoError`` if it is not ours or was tampered with."""
        ...

    def wrap(self, plaintext: bytes) -> bytes:
        """Wrap caller-made secret bytes (blind-index key, on-prem token signing key) for configuration."""
        ...


class _LruCache:
    def __init__(self, size: int) -> None:
        self._size = size
        self._data: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: bytes) -> bytes | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: bytes, value: bytes) -> None:
        if self._size <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def __len__(self) -> int:
        return len(self._data)


class KmsKeyPort:
    """AWS KMS. ``kms_client`` is a boto3 KMS client made by the caller (lazily, at module scope).

    ``encryption_context`` (optional) is bound into every wrap and must match on unwrap; use it to
    keep one service's wrapped keys from being unwrapped on behalf of another.
    """

    def __init__(
        self,
        kms_client: Any,
        key_id: str,
        *,
        encryption_context: Mapping[str, str] | None = None,
        cache_size: int = 1024,
    ) -> None:
        self._kms = kms_client
        self.key_id = key_id
        self._ctx = dict(encryption_context or {})
        self._cache = _LruCache(cache_size)

    def _extra(self) -> dict[str, Any]:
        return {"EncryptionContext": self._ctx} if self._ctx else {}

    def generate_data_key(self) -> DataKey:
        out = self._kms.generate_data_key(KeyId=self.key_id, NumberOfBytes=DATA_KEY_BYTES, **self._extra())
        plaintext, wrapped = bytes(out["Plaintext"]), bytes(out["CiphertextBlob"])
        self._cache.put(wrapped, plaintext)
        return DataKey(plaintext=plaintext, wrapped=wrapped, key_id=str(out.get("KeyId", self.key_id)))

    def unwrap(self, wrapped: bytes) -> bytes:
        cached = self._cache.get(wrapped)
        if cached is not None:
            return cached
        try:
            # No KeyId: a symmetric KMS ciphertext names its key, so data wrapped before a switch to a
            # new master key stays readable.
            out = self._kms.decrypt(CiphertextBlob=wrapped, **self._extra())
        except Exception as exc:
            if _aws_error_code(exc) in {"InvalidCiphertextException", "IncorrectKeyException"}:
                raise CryptoError("wrapped key rejected by KMS") from exc
            raise
        plaintext = bytes(out["Plaintext"])
        self._cache.put(wrapped, plaintext)
        return plaintext

    def wrap(self, plaintext: bytes) -> bytes:
        out = self._kms.encrypt(KeyId=self.key_id, Plaintext=plaintext, **self._extra())
        return bytes(out["CiphertextBlob"])


def _aws_error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return response.get("Error", {}).get("Code")
    return None


# LocalKeyPort wrapped format, version 1 (all lengths in bytes):
#   magic "BJK" (3) | version 0x01 (1) | master key id (8) = SM3(master)[:8] | nonce (12) |
#   SM4-GCM(master, nonce, plaintext, aad = the 24 header bytes) = ciphertext || tag (16)
_MAGIC = b"BJK"
_VERSION = 1
_KID_LEN = 8
_NONCE_LEN = 12
_HEADER_LEN = len(_MAGIC) + 1 + _KID_LEN + _NONCE_LEN


def master_key_id(master_key: bytes) -> bytes:
    """A public fingerprint of a master key (so unwrap can pick the right one after rotation)."""
    return sm3(b"bianjie-local-master-key\x00" + master_key)[:_KID_LEN]


class LocalKeyPort:
    """SOFTWARE stand-in for a cipher machine / HSM: SM4-GCM key wrapping under an in-process key.

    ``previous`` master keys still unwrap (after a master-key rotation) but never wrap.
    """

    def __init__(self, master_key: bytes, *, previous: Sequence[bytes] = (), cache_size: int = 1024) -> None:
        for key in (master_key, *previous):
            if len(key) != 16:
                raise ValueError("an SM4 master key is 16 bytes")
        self._master = master_key
        self._kid = master_key_id(master_key)
        self._keys = {master_key_id(k): k for k in (*previous, master_key)}
        self.key_id = "local:" + self._kid.hex()
        self._cache = _LruCache(cache_size)

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> LocalKeyPort:
        """Read a master key file: 32 hex characters (whitespace ignored) or 16 raw bytes."""
        raw = Path(path).read_bytes()
        text = raw.strip()
        try:
            key = bytes.fromhex(text.decode("ascii")) if len(text) == 32 else raw
        except (UnicodeDecodeError, ValueError):
            key = raw
        return cls(key, **kwargs)

    @staticmethod
    def new_master_key() -> bytes:
        return secrets.token_bytes(16)

    def wrap(self, plaintext: bytes) -> bytes:
        header = _MAGIC + bytes([_VERSION]) + self._kid + secrets.token_bytes(_NONCE_LEN)
        return header + sm4_gcm_encrypt(self._master, header[-_NONCE_LEN:], plaintext, header)

    def generate_data_key(self) -> DataKey:
        plaintext = secrets.token_bytes(DATA_KEY_BYTES)
        wrapped = self.wrap(plaintext)
        self._cache.put(wrapped, plaintext)
        return DataKey(plaintext=plaintext, wrapped=wrapped, key_id=self.key_id)

    def unwrap(self, wrapped: bytes) -> bytes:
        cached = self._cache.get(wrapped)
        if cached is not None:
            return cached
        if len(wrapped) < _HEADER_LEN + 16 or wrapped[: len(_MAGIC)] != _MAGIC:
            raise CryptoError("not a wrapped key")
        if wrapped[len(_MAGIC)] != _VERSION:
            raise CryptoError("unsupported wrapped-key version")
        header = wrapped[:_HEADER_LEN]
        kid = header[len(_MAGIC) + 1 : len(_MAGIC) + 1 + _KID_LEN]
        master = self._keys.get(kid)
        if master is None:
            raise CryptoError("wrapped under an unknown master key")
        plaintext = sm4_gcm_decrypt(master, header[-_NONCE_LEN:], wrapped[_HEADER_LEN:], header)
        self._cache.put(wrapped, plaintext)
        return plaintext
