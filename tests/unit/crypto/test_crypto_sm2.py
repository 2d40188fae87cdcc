"""SM2 across backends: interop, custom user ids, tampering, and the gmssl defects we work around."""

from __future__ import annotations

import gmssl.func
import gmssl.sm2
import pytest
from bianjie.kit.crypto import (
    DEFAULT_SM2_USER_ID,
    CryptoError,
    Sm2PrivateKey,
    Sm2PublicKey,
    asn1,
    backend,
    sig_from_raw,
    sig_to_raw,
    sm2_curve,
)
from tongsuopy.crypto import hashes as tongsuo_hashes
from tongsuopy.crypto.asymciphers import ec

BACKENDS = ["openssl", "gmssl"]
PAIRS = [(a, b) for a in BACKENDS for b in BACKENDS]

# The NHSA envelope signs with user id = app secret; any non-default id exercises the same path.
APP_SECRET = b"4f1c0a9e8b7d6c5b4a39281706f5e4d3"
MESSAGE = b"appId=1&encData=abcd&timestamp=1700000000000&key=secret"


@pytest.fixture(scope="module")
def key() -> Sm2PrivateKey:
    return backend("openssl").sm2_generate_key()


@pytest.fixture(params=BACKENDS)
def be(request: pytest.FixtureRequest):
    return backend(request.param)


# ------------------------------------------------------------------ interop


@pytest.mark.parametrize(("signer", "verifier"), PAIRS)
@pytest.mark.parametrize("user_id", [DEFAULT_SM2_USER_ID, APP_SECRET, b""], ids=["default-id", "app-secret", "empty"])
def test_sign_on_one_verify_on_other(key: Sm2PrivateKey, signer: str, verifier: str, user_id: bytes) -> None:
    signature = backend(signer).sm2_sign(key, MESSAGE, user_id)
    assert backend(verifier).sm2_verify(key.public_key, MESSAGE, signature, user_id)
    other_id = b"someone else" if user_id != b"someone else" else b"x"
    assert not backend(verifier).sm2_verify(key.public_key, MESSAGE, signature, other_id)


@pytest.mark.parametrize(("encrypter", "decrypter"), PAIRS)
@pytest.mark.parametrize("plaintext", [b"\x00", b"32-byte data key for SM4 fields", bytes(range(256)) * 2])
def test_encrypt_on_one_decrypt_on_other(key: Sm2PrivateKey, encrypter: str, decrypter: str, plaintext: bytes) -> None:
    ciphertext = backend(encrypter).sm2_encrypt(key.public_key, plaintext)
    assert ciphertext[0] == 4 and len(ciphertext) == 1 + 64 + 32 + len(plaintext)
    assert backend(decrypter).sm2_decrypt(key, ciphertext) == plaintext


def test_raw_digest_path_agrees_with_tongsuopy_for_default_id(key: Sm2PrivateKey) -> None:
    native = backend("openssl")
    tongsuo_private = ec.derive_private_key(key.d, ec.SM2())
    algorithm = ec.ECDSA(tongsuo_hashes.SM3())
    # tongsuopy's own SM2-with-SM3 computes Z with the default id inside Tongsuo.
    theirs = tongsuo_private.sign(MESSAGE, algorithm)
    assert native.sm2_verify(key.public_key, MESSAGE, theirs)
    assert backend("gmssl").sm2_verify(key.public_key, MESSAGE, theirs)
    ours = native.sm2_sign(key, MESSAGE)
    tongsuo_private.public_key().verify(ours, MESSAGE, algorithm)  # raises if it disagrees


def test_signatures_are_randomised(be, key: Sm2PrivateKey) -> None:
    assert be.sm2_sign(key, MESSAGE) != be.sm2_sign(key, MESSAGE)


def test_generated_keys_work_everywhere(be) -> None:
    fresh = be.sm2_generate_key()
    assert 1 <= fresh.d <= sm2_curve.N - 2
    public = fresh.public_key
    assert public == Sm2PublicKey(*sm2_curve.multiply_g(fresh.d))
    for other in BACKENDS:
        assert backend(other).sm2_verify(public, b"m", be.sm2_sign(fresh, b"m"))
        assert backend(other).sm2_decrypt(fresh, be.sm2_encrypt(public, b"m")) == b"m"


# ------------------------------------------------------------------ verification failures


def test_wrong_message_or_key_fails(be, key: Sm2PrivateKey) -> None:
    signature = be.sm2_sign(key, MESSAGE)
    assert not be.sm2_verify(key.public_key, MESSAGE + b"!", signature)
    stranger = backend("openssl").sm2_generate_key()
    assert not be.sm2_verify(stranger.public_key, MESSAGE, signature)


def _bad_signatures(good: bytes) -> dict[str, bytes]:
    r, s = asn1.decode_signature(good)
    n = sm2_curve.N
    # A needless 0x00 in front of r, with both lengths adjusted: valid BER, invalid DER.
    padded = b"\x30" + bytes([good[1] + 1]) + b"\x02" + bytes([good[3] + 1]) + b"\x00" + good[4:]
    return {
        "flipped-r": asn1.encode_signature(r ^ 1, s),
        "flipped-s": asn1.encode_signature(r, s ^ 1),
        "swapped": asn1.encode_signature(s, r),
        "r-zero": asn1.encode_signature(0, s),
        "s-zero": asn1.encode_signature(r, 0),
        "r-is-n": asn1.encode_signature(n, s),
        "s-plus-n": asn1.encode_signature(r, s + n),
        "empty": b"",
        "garbage": b"\x30\x01",
        "raw-r||s": sig_to_raw(good),
        "truncated": good[:-1],
        "trailing": good + b"\x00",
        "long-form-length": b"\x30\x81" + good[1:],
        "padded-integer": padded,
        "negative-r": b"\x30\x06\x02\x01\x80\x02\x01\x01",
    }


@pytest.mark.parametrize(
    "case",
    [
        "flipped-r",
        "flipped-s",
        "swapped",
        "r-zero",
        "s-zero",
        "r-is-n",
        "s-plus-n",
        "empty",
        "garbage",
        "raw-r||s",
        "truncated",
        "trailing",
        "long-form-length",
        "padded-integer",
        "negative-r",
    ],
)
def test_bad_signatures_return_false_not_raise(be, key: Sm2PrivateKey, case: str) -> None:
    good = backend("openssl").sm2_sign(key, MESSAGE)
    assert be.sm2_verify(key.public_key, MESSAGE, good)
    assert be.sm2_verify(key.public_key, MESSAGE, _bad_signatures(good)[case]) is False


def test_user_id_too_long_is_rejected(be, key: Sm2PrivateKey) -> None:
    with pytest.raises(CryptoError):
        be.sm2_sign(key, MESSAGE, b"x" * 8192)


# ------------------------------------------------------------------ ciphertext tampering


def _tampered(ciphertext: bytes) -> dict[str, bytes]:
    x = int.from_bytes(ciphertext[1:33], "big")
    other_y = ((sm2_curve.P - 1) ^ x).to_bytes(32, "big")
    off_curve = ciphertext[:33] + other_y + ciphertext[65:]
    return {
        "c2": ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]),
        "c3": ciphertext[:70] + bytes([ciphertext[70] ^ 1]) + ciphertext[71:],
        "c1-off-curve": off_curve,
        "c1-other-point": b"\x04" + Sm2PrivateKey(7).public_key.to_bytes()[1:] + ciphertext[65:],
        "prefix": b"\x02" + ciphertext[1:],
        "no-prefix": ciphertext[1:],
        "no-c2": ciphertext[:97],
        "short": ciphertext[:50],
        "empty": b"",
    }


@pytest.mark.parametrize(
    "case", ["c2", "c3", "c1-off-curve", "c1-other-point", "prefix", "no-prefix", "no-c2", "short", "empty"]
)
def test_tampered_ciphertext_raises(be, key: Sm2PrivateKey, case: str) -> None:
    ciphertext = backend("openssl").sm2_encrypt(key.public_key, b"data key 0123456789abcdef")
    with pytest.raises(CryptoError):
        be.sm2_decrypt(key, _tampered(ciphertext)[case])


def test_wrong_private_key_cannot_decrypt(be, key: Sm2PrivateKey) -> None:
    ciphertext = be.sm2_encrypt(key.public_key, b"secret")
    with pytest.raises(CryptoError):
        be.sm2_decrypt(backend("openssl").sm2_generate_key(), ciphertext)


def test_empty_plaintext_is_rejected(be, key: Sm2PrivateKey) -> None:
    with pytest.raises(CryptoError):
        be.sm2_encrypt(key.public_key, b"")


# ------------------------------------------------------------------ gmssl defects


def _key_whose_x_hex_starts_with(prefix: str) -> Sm2PrivateKey:
    native = backend("openssl")
    for _ in range(20_000):
        candidate = native.sm2_generate_key()
        if f"{candidate.public_key.x:064x}".startswith(prefix):
            return candidate
    raise AssertionError(f"no key with X starting {prefix!r}")


@pytest.mark.parametrize("prefix", ["0", "4", "04", "44", "00"])
def test_gmssl_handles_public_keys_starting_with_0_or_4(prefix: str) -> None:
    """gmssl's lstrip("04") mangles such keys; the wrapper must still sign, verify and encrypt."""
    special = _key_whose_x_hex_starts_with(prefix)
    pure, native = backend("gmssl"), backend("openssl")
    public = special.public_key
    assert public.to_hex().startswith("04" + prefix)

    signature = pure.sm2_sign(special, MESSAGE, APP_SECRET)
    assert pure.sm2_verify(public, MESSAGE, signature, APP_SECRET)
    assert native.sm2_verify(public, MESSAGE, signature, APP_SECRET)
    assert pure.sm2_verify(public, MESSAGE, native.sm2_sign(special, MESSAGE, APP_SECRET), APP_SECRET)

    ciphertext = pure.sm2_encrypt(public, b"field key")
    assert native.sm2_decrypt(special, ciphertext) == b"field key"
    assert pure.sm2_decrypt(special, native.sm2_encrypt(public, b"field key")) == b"field key"


def test_gmssl_constructor_really_mangles_such_keys() -> None:
    """Documents why the wrapper resets ``public_key`` (if a gmssl release fixes this, fine)."""
    special = _key_whose_x_hex_starts_with("04")
    xy = special.public_key.to_hex()[2:]
    if gmssl.sm2.CryptSM2(private_key="", public_key=xy).public_key == xy:
        pytest.skip("this gmssl release no longer mangles public keys")


def test_gmssl_never_draws_its_own_nonces(monkeypatch: pytest.MonkeyPatch, key: Sm2PrivateKey) -> None:
    def refuse(*_args: object) -> str:
        raise AssertionError("gmssl drew a nonce from random")

    monkeypatch.setattr(gmssl.func, "random_hex", refuse)
    monkeypatch.setattr(gmssl.sm2.func, "random_hex", refuse)
    pure = backend("gmssl")
    signature = pure.sm2_sign(key, MESSAGE)
    assert backend("openssl").sm2_verify(key.public_key, MESSAGE, signature)
    assert backend("openssl").sm2_decrypt(key, pure.sm2_encrypt(key.public_key, b"k")) == b"k"


def test_gmssl_raw_decrypt_would_accept_tampering(key: Sm2PrivateKey) -> None:
    """The defect we guard against: gmssl's decrypt returns plaintext for a forged C3."""
    ciphertext = backend("openssl").sm2_encrypt(key.public_key, b"amount=100")
    forged = ciphertext[:65] + bytes(32) + ciphertext[97:]
    raw = gmssl.sm2.CryptSM2(private_key=key.to_hex(), public_key=key.public_key.to_hex()[2:], mode=1)
    if raw.decrypt(forged[1:]) != b"amount=100":
        pytest.skip("this gmssl release checks C3 itself")
    with pytest.raises(CryptoError):
        backend("gmssl").sm2_decrypt(key, forged)


# ------------------------------------------------------------------ raw signature form


def test_raw_signature_round_trip(key: Sm2PrivateKey) -> None:
    der = backend("openssl").sm2_sign(key, MESSAGE)
    raw = sig_to_raw(der)
    assert len(raw) == 64
    assert sig_from_raw(raw) == der
    assert backend("gmssl").sm2_verify(key.public_key, MESSAGE, sig_from_raw(raw))


@pytest.mark.parametrize("bad", [b"", b"\x30\x00", bytes(64)])
def test_sig_to_raw_rejects_malformed(bad: bytes) -> None:
    with pytest.raises(CryptoError):
        sig_to_raw(bad)


def test_sig_from_raw_needs_64_bytes() -> None:
    with pytest.raises(CryptoError):
        sig_from_raw(bytes(63))
