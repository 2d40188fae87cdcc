"""SM4 modes: round trips, agreement between the two backends, and rejection of tampered input."""

from __future__ import annotations

import pytest
from bianjie.kit.crypto import CryptoError, backend
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BACKENDS = ["openssl", "gmssl"]

# gmssl encrypts about 0.1 MB/s, so its examples stay small and few.
SLOW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

keys = st.binary(min_size=16, max_size=16)
ivs = st.binary(min_size=16, max_size=16)
nonces12 = st.binary(min_size=12, max_size=12)
payloads = st.binary(max_size=80)
aads = st.binary(max_size=40)


@pytest.fixture(params=BACKENDS)
def be(request: pytest.FixtureRequest):
    return backend(request.param)


@SLOW
@given(key=keys, data=payloads)
def test_ecb_round_trip(be, key: bytes, data: bytes) -> None:
    ciphertext = be.sm4_ecb_encrypt(key, data)
    assert len(ciphertext) == (len(data) // 16 + 1) * 16
    assert be.sm4_ecb_decrypt(key, ciphertext) == data


@SLOW
@given(key=keys, iv=ivs, data=payloads)
def test_cbc_round_trip(be, key: bytes, iv: bytes, data: bytes) -> None:
    assert be.sm4_cbc_decrypt(key, iv, be.sm4_cbc_encrypt(key, iv, data)) == data


@SLOW
@given(key=keys, iv=ivs, blocks=st.integers(min_value=0, max_value=4), seed=st.binary(min_size=64, max_size=64))
def test_unpadded_round_trip(be, key: bytes, iv: bytes, blocks: int, seed: bytes) -> None:
    data = seed[: 16 * blocks]
    assert be.sm4_ecb_decrypt(key, be.sm4_ecb_encrypt(key, data, pad=False), pad=False) == data
    assert be.sm4_cbc_decrypt(key, iv, be.sm4_cbc_encrypt(key, iv, data, pad=False), pad=False) == data


@SLOW
@given(key=keys, nonce=nonces12, data=payloads, aad=aads)
def test_gcm_round_trip(be, key: bytes, nonce: bytes, data: bytes, aad: bytes) -> None:
    sealed = be.sm4_gcm_encrypt(key, nonce, data, aad)
    assert len(sealed) == len(data) + 16
    assert be.sm4_gcm_decrypt(key, nonce, sealed, aad) == data


@settings(max_examples=25, deadline=None)
@given(key=keys, iv=ivs, data=payloads)
def test_backends_agree_on_ecb_and_cbc(key: bytes, iv: bytes, data: bytes) -> None:
    native, pure = backend("openssl"), backend("gmssl")
    assert native.sm4_ecb_encrypt(key, data) == pure.sm4_ecb_encrypt(key, data)
    assert native.sm4_cbc_encrypt(key, iv, data) == pure.sm4_cbc_encrypt(key, iv, data)


@settings(max_examples=25, deadline=None)
@given(key=keys, nonce=st.binary(min_size=8, max_size=40), data=payloads, aad=aads)
def test_backends_agree_on_gcm_for_any_nonce_length(key: bytes, nonce: bytes, data: bytes, aad: bytes) -> None:
    # Nonces other than 12 bytes go through GHASH to form the counter; both must do it the same way.
    native, pure = backend("openssl"), backend("gmssl")
    sealed = native.sm4_gcm_encrypt(key, nonce, data, aad)
    assert pure.sm4_gcm_encrypt(key, nonce, data, aad) == sealed
    assert pure.sm4_gcm_decrypt(key, nonce, sealed, aad) == data


# ------------------------------------------------------------------ tampering and bad input

KEY = bytes(range(16))
NONCE = bytes(12)
IV = bytes(range(16, 32))


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


@pytest.mark.parametrize("where", ["ciphertext", "tag", "aad", "nonce", "key", "truncated", "short"])
def test_gcm_rejects_tampering(be, where: str) -> None:
    sealed = be.sm4_gcm_encrypt(KEY, NONCE, b"patient id 310101199001011234", b"row-7")
    key, nonce, aad = KEY, NONCE, b"row-7"
    if where == "ciphertext":
        sealed = _flip(sealed, 3)
    elif where == "tag":
        sealed = _flip(sealed, len(sealed) - 1)
    elif where == "aad":
        aad = b"row-8"
    elif where == "nonce":
        nonce = _flip(NONCE, 0)
    elif where == "key":
        key = _flip(KEY, 15)
    elif where == "truncated":
        sealed = sealed[:-1]
    else:
        sealed = sealed[:15]
    with pytest.raises(CryptoError):
        be.sm4_gcm_decrypt(key, nonce, sealed, aad)


@pytest.mark.parametrize("last", [0, 17, 255])
def test_bad_padding_byte_is_rejected(be, last: int) -> None:
    # A final block that decrypts to a padding length outside 1..16.
    block = bytes(15) + bytes([last])
    assert be.sm4_ecb_decrypt(KEY, be.sm4_ecb_encrypt(KEY, block, pad=False), pad=False) == block
    with pytest.raises(CryptoError):
        be.sm4_ecb_decrypt(KEY, be.sm4_ecb_encrypt(KEY, block, pad=False))
    with pytest.raises(CryptoError):
        be.sm4_cbc_decrypt(KEY, IV, be.sm4_cbc_encrypt(KEY, IV, block, pad=False))


def test_inconsistent_padding_is_rejected(be) -> None:
    # Says 4 bytes of padding, but one of them differs: gmssl's own unpad would accept this.
    block = bytes(12) + b"\x04\x04\x03\x04"
    with pytest.raises(CryptoError):
        be.sm4_cbc_decrypt(KEY, IV, be.sm4_cbc_encrypt(KEY, IV, block, pad=False))


def test_garbage_does_not_decrypt_to_empty(be) -> None:
    # gmssl's unchecked unpad turns most garbage into b""; we must refuse instead. The chance that
    # 64 random-looking blocks all happen to end in valid padding is negligible.
    failures = 0
    for i in range(64):
        try:
            be.sm4_ecb_decrypt(KEY, bytes([i]) * 16)
        except CryptoError:
            failures += 1
    assert failures >= 48


@pytest.mark.parametrize(
    "call",
    [
        lambda be: be.sm4_ecb_encrypt(bytes(15), b"x"),
        lambda be: be.sm4_ecb_encrypt(KEY, b"x" * 15, pad=False),
        lambda be: be.sm4_ecb_decrypt(KEY, b"x" * 17),
        lambda be: be.sm4_ecb_decrypt(KEY, b""),
        lambda be: be.sm4_cbc_encrypt(KEY, bytes(8), b"x"),
        lambda be: be.sm4_cbc_decrypt(KEY, IV, b"x" * 31),
        lambda be: be.sm4_gcm_encrypt(KEY, bytes(7), b"x"),
        lambda be: be.sm4_gcm_encrypt(bytes(32), NONCE, b"x"),
    ],
    ids=[
        "short-key",
        "unpadded-partial-block",
        "decrypt-partial-block",
        "decrypt-empty",
        "short-iv",
        "cbc-partial-block",
        "short-nonce",
        "long-key",
    ],
)
def test_bad_sizes_raise_crypto_error(be, call) -> None:
    with pytest.raises(CryptoError):
        call(be)
