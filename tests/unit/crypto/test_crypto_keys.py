"""SM2 key value objects: hex and PEM forms, interchange with tongsuopy/OpenSSL, and validation."""

from __future__ import annotations

import pytest
from bianjie.kit.crypto import CryptoError, Sm2PrivateKey, Sm2PublicKey, backend, sm2_curve
from cryptography.hazmat.primitives import serialization as pyca_serialization
from cryptography.hazmat.primitives.asymmetric import ec as pyca_ec
from hypothesis import given, settings
from hypothesis import strategies as st
from tongsuopy.crypto import serialization
from tongsuopy.crypto.asymciphers import ec

# From OpenSSL test/recipes/30-test_evp_data/evppkey_sm2.txt ("SM2_key1").
OPENSSL_SM2_KEY1 = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQg0JFWczAXva2An9m7
2MaT9gIwWTFptvlKrxyO4TjMmbWhRANCAAQ5OirZ4n5DrKqrhaGdO4VZHhRAYVcX
Wt3Te/d/8Mr57Tf886i09VwDhSMmH8pmNq/mp6+ioUgqYG9cs6GLLioe
-----END PRIVATE KEY-----
"""


def _tongsuo(key: Sm2PrivateKey):
    return ec.derive_private_key(key.d, ec.SM2())


@pytest.fixture(scope="module")
def key() -> Sm2PrivateKey:
    return backend("openssl").sm2_generate_key()


@settings(max_examples=20, deadline=None)
@given(d=st.integers(min_value=1, max_value=sm2_curve.N - 2))
def test_pure_python_public_key_matches_openssl(d: int) -> None:
    numbers = ec.derive_private_key(d, ec.SM2()).public_key().public_numbers()
    assert Sm2PrivateKey(d).public_key == Sm2PublicKey(numbers.x, numbers.y)


def test_hex_round_trip(key: Sm2PrivateKey) -> None:
    assert len(key.to_hex()) == 64
    assert Sm2PrivateKey.from_hex(key.to_hex()) == key
    assert Sm2PrivateKey.from_hex(key.to_hex().upper()) == key
    public = key.public_key
    assert len(public.to_hex()) == 130 and public.to_hex().startswith("04")
    assert Sm2PublicKey.from_hex(public.to_hex()) == public
    assert Sm2PublicKey.from_hex(public.to_hex()[2:]) == public  # bare X||Y, as some partners send


def test_private_hex_without_leading_zeros() -> None:
    assert Sm2PrivateKey.from_hex("1f") == Sm2PrivateKey(0x1F)
    assert Sm2PrivateKey(0x1F).to_hex() == "0" * 62 + "1f"


def test_compressed_public_key(key: Sm2PrivateKey) -> None:
    public = key.public_key
    compressed = bytes([2 + (public.y & 1)]) + public.x.to_bytes(32, "big")
    assert Sm2PublicKey.from_hex(compressed.hex()) == public


@pytest.mark.parametrize(
    "value",
    ["", "zz" * 32, "0" * 65, "04" + "00" * 64, "05" + "11" * 64, "04" + "11" * 63, "02" + "ff" * 32],
    ids=["empty", "not-hex", "odd-length", "zero-point", "bad-prefix", "short", "compressed-off-curve"],
)
def test_bad_public_hex(value: str) -> None:
    with pytest.raises(CryptoError):
        Sm2PublicKey.from_hex(value)


@pytest.mark.parametrize("value", ["", "xyz", "0" * 64, f"{sm2_curve.N - 1:064x}", f"{sm2_curve.N:064x}", "1" * 65])
def test_bad_private_hex(value: str) -> None:
    with pytest.raises(CryptoError):
        Sm2PrivateKey.from_hex(value)


def test_points_off_the_curve_are_refused() -> None:
    with pytest.raises(CryptoError):
        Sm2PublicKey(1, 2)
    with pytest.raises(CryptoError):
        Sm2PublicKey(sm2_curve.GX, sm2_curve.GY + sm2_curve.P)


def test_private_key_never_shows_its_value(key: Sm2PrivateKey) -> None:
    assert key.to_hex() not in repr(key)
    assert str(key.d) not in repr(key) and str(key.d) not in str(key)
    assert repr(key) == "Sm2PrivateKey(<secret>)"


def test_pem_matches_tongsuopy_byte_for_byte(key: Sm2PrivateKey) -> None:
    native = _tongsuo(key)
    pkcs8 = native.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    spki = (
        native.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert key.to_pem() == pkcs8
    assert key.public_key.to_pem() == spki


def test_pem_round_trip_and_tongsuopy_loads_ours(key: Sm2PrivateKey) -> None:
    assert Sm2PrivateKey.from_pem(key.to_pem()) == key
    assert Sm2PrivateKey.from_pem(key.to_pem().encode()) == key
    assert Sm2PublicKey.from_pem(key.public_key.to_pem()) == key.public_key
    loaded = serialization.load_pem_private_key(key.to_pem().encode(), password=None)
    assert loaded.private_numbers().private_value == key.d
    loaded_public = serialization.load_pem_public_key(key.public_key.to_pem().encode())
    numbers = loaded_public.public_numbers()
    assert (numbers.x, numbers.y) == (key.public_key.x, key.public_key.y)


def test_sec1_ec_private_key_pem(key: Sm2PrivateKey) -> None:
    sec1 = _tongsuo(key).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    assert b"BEGIN EC PRIVATE KEY" in sec1
    # OpenSSL's `ecparam -genkey` puts an EC PARAMETERS block first; it must be skipped.
    with_params = b"-----BEGIN EC PARAMETERS-----\nBggqgRzPVQGCLQ==\n-----END EC PARAMETERS-----\n" + sec1
    assert Sm2PrivateKey.from_pem(sec1) == key
    assert Sm2PrivateKey.from_pem(with_params) == key


def test_openssl_test_key_loads() -> None:
    key = Sm2PrivateKey.from_pem(OPENSSL_SM2_KEY1)
    native = serialization.load_pem_private_key(OPENSSL_SM2_KEY1.encode(), password=None)
    assert key.d == native.private_numbers().private_value
    assert key.to_pem() == OPENSSL_SM2_KEY1


def test_pem_with_mismatched_public_key_is_refused(key: Sm2PrivateKey) -> None:
    other = backend("openssl").sm2_generate_key()
    from bianjie.kit.crypto import asn1

    der = asn1.encode_private_key(key.d, other.public_key.x, other.public_key.y)
    with pytest.raises(CryptoError, match="does not match"):
        Sm2PrivateKey.from_pem(asn1.pem_encode("PRIVATE KEY", der))


def test_keys_on_other_curves_are_refused() -> None:
    p256 = pyca_ec.generate_private_key(pyca_ec.SECP256R1())
    private_pem = p256.private_bytes(
        pyca_serialization.Encoding.PEM,
        pyca_serialization.PrivateFormat.PKCS8,
        pyca_serialization.NoEncryption(),
    )
    public_pem = p256.public_key().public_bytes(
        pyca_serialization.Encoding.PEM, pyca_serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(CryptoError):
        Sm2PrivateKey.from_pem(private_pem)
    with pytest.raises(CryptoError):
        Sm2PublicKey.from_pem(public_pem)


@pytest.mark.parametrize(
    "pem",
    [
        "",
        "not a pem",
        "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n",
        "-----BEGIN PUBLIC KEY-----\nMAA=\n-----END PUBLIC KEY-----\n",
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n",
    ],
)
def test_malformed_pem_is_refused(pem: str) -> None:
    with pytest.raises(CryptoError):
        Sm2PublicKey.from_pem(pem)
    with pytest.raises(CryptoError):
        Sm2PrivateKey.from_pem(pem.replace("PUBLIC", "PRIVATE"))


def test_truncated_der_is_refused(key: Sm2PrivateKey) -> None:
    from bianjie.kit.crypto import asn1

    der = asn1.encode_public_key(key.public_key.x, key.public_key.y)
    for cut in (1, 10, len(der) - 1):
        with pytest.raises(CryptoError):
            Sm2PublicKey.from_pem(asn1.pem_encode("PUBLIC KEY", der[:cut]))
    with pytest.raises(CryptoError):
        Sm2PublicKey.from_pem(asn1.pem_encode("PUBLIC KEY", der + b"\x00"))
