"""Key port adapters: KMS (on moto) and the local software stand-in for a cipher machine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from bianjie.kit.crypto import CryptoError
from bianjie.kit.keys import DataKey, KeyPort, KmsKeyPort, LocalKeyPort, master_key_id
from moto import mock_aws

MASTER = bytes(range(16))


@pytest.fixture
def kms() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("kms", region_name="cn-north-1", aws_access_key_id="test", aws_secret_access_key="test")


@pytest.fixture
def kms_key_id(kms: Any) -> str:
    return kms.create_key(Description="bianjie test master key")["KeyMetadata"]["KeyId"]


class CountingKms:
    """Wraps a client and counts Decrypt calls, to see the LRU cache work."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.decrypts = 0

    def generate_data_key(self, **kw: Any) -> Any:
        return self.inner.generate_data_key(**kw)

    def encrypt(self, **kw: Any) -> Any:
        return self.inner.encrypt(**kw)

    def decrypt(self, **kw: Any) -> Any:
        self.decrypts += 1
        return self.inner.decrypt(**kw)


def _roundtrip(port: KeyPort) -> None:
    dk = port.generate_data_key()
    assert isinstance(dk, DataKey)
    assert len(dk.plaintext) == 16 and dk.wrapped != dk.plaintext and dk.plaintext not in dk.wrapped
    assert port.unwrap(dk.wrapped) == dk.plaintext
    assert dk.plaintext.hex() not in repr(dk)
    assert port.generate_data_key().plaintext != dk.plaintext


def test_kms_roundtrip(kms: Any, kms_key_id: str) -> None:
    port = KmsKeyPort(kms, kms_key_id)
    _roundtrip(port)
    # a fresh port (another container, empty cache) unwraps through KMS Decrypt
    dk = port.generate_data_key()
    assert KmsKeyPort(kms, kms_key_id).unwrap(dk.wrapped) == dk.plaintext
    assert dk.key_id.endswith(kms_key_id)


def test_kms_wrap_arbitrary_secret(kms: Any, kms_key_id: str) -> None:
    secret = b"token-secret-" + bytes(19)
    wrapped = KmsKeyPort(kms, kms_key_id).wrap(secret)
    assert KmsKeyPort(kms, kms_key_id).unwrap(wrapped) == secret


def test_kms_cache_avoids_repeated_decrypts(kms: Any, kms_key_id: str) -> None:
    wrapped = KmsKeyPort(kms, kms_key_id).generate_data_key().wrapped
    counting = CountingKms(kms)
    port = KmsKeyPort(counting, kms_key_id, cache_size=2)
    for _ in range(5):
        port.unwrap(wrapped)
    assert counting.decrypts == 1
    # bounded: two other keys push the first out
    others = [KmsKeyPort(kms, kms_key_id).generate_data_key().wrapped for _ in range(2)]
    for w in others:
        port.unwrap(w)
    port.unwrap(wrapped)
    assert counting.decrypts == 4


def test_kms_tampered_wrapped_key(kms: Any, kms_key_id: str) -> None:
    port = KmsKeyPort(kms, kms_key_id, cache_size=0)
    with pytest.raises(CryptoError):
        port.unwrap(b"definitely not a KMS ciphertext blob")


def test_kms_encryption_context_must_match(kms: Any, kms_key_id: str) -> None:
    film = KmsKeyPort(kms, kms_key_id, encryption_context={"service": "film"}, cache_size=0)
    rx = KmsKeyPort(kms, kms_key_id, encryption_context={"service": "rx"}, cache_size=0)
    dk = film.generate_data_key()
    assert film.unwrap(dk.wrapped) == dk.plaintext
    with pytest.raises(CryptoError):
        rx.unwrap(dk.wrapped)


def test_local_roundtrip_and_format() -> None:
    port = LocalKeyPort(MASTER)
    _roundtrip(port)
    dk = port.generate_data_key()
    # "BJK" | version 1 | master key id (8) | nonce (12) | 16-byte key + 16-byte tag
    assert dk.wrapped[:3] == b"BJK" and dk.wrapped[3] == 1
    assert dk.wrapped[4:12] == master_key_id(MASTER)
    assert len(dk.wrapped) == 3 + 1 + 8 + 12 + 16 + 16
    assert dk.key_id == "local:" + master_key_id(MASTER).hex()
    assert LocalKeyPort(MASTER).unwrap(dk.wrapped) == dk.plaintext  # another process, same master


def test_local_tamper_and_wrong_master() -> None:
    port = LocalKeyPort(MASTER, cache_size=0)
    wrapped = port.generate_data_key().wrapped
    for i in (3, 5, 15, len(wrapped) - 1, len(wrapped) - 20):
        bad = bytearray(wrapped)
        bad[i] ^= 0x01
        with pytest.raises(CryptoError):
            port.unwrap(bytes(bad))
    with pytest.raises(CryptoError):
        port.unwrap(wrapped[:20])
    with pytest.raises(CryptoError):
        port.unwrap(b"XYZ" + wrapped[3:])
    with pytest.raises(CryptoError):
        LocalKeyPort(bytes(16)).unwrap(wrapped)


def test_local_master_rotation_keeps_old_keys_readable() -> None:
    old = LocalKeyPort(MASTER)
    dk_old = old.generate_data_key()
    new_master = LocalKeyPort.new_master_key()
    rotated = LocalKeyPort(new_master, previous=[MASTER])
    assert rotated.unwrap(dk_old.wrapped) == dk_old.plaintext
    dk_new = rotated.generate_data_key()
    assert dk_new.wrapped[4:12] == master_key_id(new_master)
    with pytest.raises(CryptoError):
        LocalKeyPort(MASTER).unwrap(dk_new.wrapped)


def test_local_from_file(tmp_path: Path) -> None:
    hex_file = tmp_path / "master.hex"
    hex_file.write_text(MASTER.hex() + "\n")
    raw_file = tmp_path / "master.bin"
    raw_file.write_bytes(MASTER)
    wrapped = LocalKeyPort(MASTER).wrap(b"secret bytes of any length")
    assert LocalKeyPort.from_file(hex_file).unwrap(wrapped) == b"secret bytes of any length"
    assert LocalKeyPort.from_file(raw_file).unwrap(wrapped) == b"secret bytes of any length"
    with pytest.raises(ValueError):
        LocalKeyPort(b"too short")
