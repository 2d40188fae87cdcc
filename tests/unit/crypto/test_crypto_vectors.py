"""Known-answer tests: every backend must reproduce the published vectors.

Where each vector comes from:
- SM3 "abc" and "abcd"x16: GB/T 32905-2016 Appendix A, examples 1 and 2. SM3 of the empty string is
  not in the standard; it is the value every public implementation agrees on (e.g. the golden table
  of the Go tjfoc/gmsm sm3 tests and GmSSL's sm3 test).
- HMAC-SM3: GM/T 0042-2015 Appendix D.3, as carried by OpenSSL
  test/recipes/30-test_evp_data/evpmac_sm3.txt (four cases).
- SM4 single block and the 1,000,000-fold iteration: GB/T 32907-2016 Appendix A, examples 1 and 2.
  The iteration runs on the native backend only (gmssl needs about five minutes).
- SM4 ECB/CBC multi-block: draft-ribose-cfrg-sm4-10 Appendix A.1.4, A.2.1.1-2, A.2.2.1-2, as
  reformatted in pyca/cryptography vectors/cryptography_vectors/ciphers/SM4/.
- SM4-GCM: RFC 8998 Appendix A.1 (also in GmSSL tests/sm4test.c and the cryptography vectors file
  ciphers/SM4/rfc8998.txt).
- SM2 signature on the recommended curve sm2p256v1: GM/T 0003.5-2012 / GB/T 32918.5-2017 Annex A
  (private key, public key, "message digest", default id, Z_A, e, k, r, s), as used by OpenSSL
  test/sm2_internal_test.c (sm2_sig_test, gm_group case). The Z_A value is the standard's, as quoted
  in public models of the same annex.
- SM2 encryption on sm2p256v1: GM/T 0003.5-2012 / GB/T 32918.5-2017 Annex C ("encryption standard",
  same key and k), from OpenSSL test/sm2_internal_test.c (sm2_crypt_test), whose DER form we turn
  into C1||C3||C2.
- SM2 digest-level verify and decrypt with "SM2_key1": OpenSSL
  test/recipes/30-test_evp_data/evppkey_sm2.txt (the SM3 cases; its SHA-512 case is out of scope).
"""

from __future__ import annotations

import pytest
from bianjie.kit.crypto import (
    DEFAULT_SM2_USER_ID,
    Sm2PrivateKey,
    Sm2PublicKey,
    asn1,
    backend,
    sig_to_raw,
    sm2_curve,
)

BACKENDS = ["openssl", "gmssl"]


@pytest.fixture(params=BACKENDS)
def be(request: pytest.FixtureRequest):
    return backend(request.param)


# ------------------------------------------------------------------ SM3 and HMAC-SM3

SM3_VECTORS = [
    (b"abc", "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"),
    (b"abcd" * 16, "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732"),
    (b"", "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b"),
]


@pytest.mark.parametrize(("message", "digest"), SM3_VECTORS)
def test_sm3_vectors(be, message: bytes, digest: str) -> None:
    assert be.sm3(message).hex() == digest


HMAC_VECTORS = [
    (
        bytes(range(1, 33)),
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq" * 2,
        "ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a",
    ),
    (
        bytes(range(1, 38)),
        b"\xcd" * 50,
        "220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae",
    ),
    (b"\x0b" * 32, b"Hi There", "c0ba18c68b90c88bc07de794bfc7d2c8d19ec31ed8773bc2b390c9604e0be11e"),
    (
        b"Jefe Jeferson Jr",
        b"what do ya want for nothing?",
        "ce791a34c59adef472997a249600f3f244d59e875be04055ba2ae12fc845e78c",
    ),
]


@pytest.mark.parametrize(("key", "message", "mac"), HMAC_VECTORS)
def test_hmac_sm3_vectors(be, key: bytes, message: bytes, mac: str) -> None:
    assert be.hmac_sm3(key, message).hex() == mac


def test_hmac_sm3_long_key_is_hashed_first(be) -> None:
    # Keys longer than the 64-byte block are replaced by their digest (RFC 2104); the two
    # backends take this branch independently, so their agreement checks it.
    key = bytes(range(100))
    assert be.hmac_sm3(key, b"data") == backend("openssl").hmac_sm3(key, b"data")
    assert be.hmac_sm3(key, b"data") == be.hmac_sm3(be.sm3(key), b"data")


# ------------------------------------------------------------------ SM4

K1 = bytes.fromhex("0123456789abcdeffedcba9876543210")
K2 = bytes.fromhex("fedcba98765432100123456789abcdef")
P_ABCD = bytes.fromhex("aaaaaaaabbbbbbbbccccccccddddddddeeeeeeeeffffffffaaaaaaaabbbbbbbb")
IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")

ECB_VECTORS = [
    (K1, K1, "681edf34d206965e86b3e94f536e4246"),
    (K2, bytes.fromhex("000102030405060708090a0b0c0d0e0f"), "f766678f13f01adeac1b3ea955adb594"),
    (K1, P_ABCD, "5ec8143de509cff7b5179f8f474b86192f1d305a7fb17df985f81c8482192304"),
    (K2, P_ABCD, "c5876897e4a59bbba72a10c83872245b12dd90bc2d200692b529a4155ac9e600"),
]


@pytest.mark.parametrize(("key", "plaintext", "ciphertext"), ECB_VECTORS)
def test_sm4_ecb_vectors(be, key: bytes, plaintext: bytes, ciphertext: str) -> None:
    assert be.sm4_ecb_encrypt(key, plaintext, pad=False).hex() == ciphertext
    assert be.sm4_ecb_decrypt(key, bytes.fromhex(ciphertext), pad=False) == plaintext


def test_sm4_million_iterations_openssl() -> None:
    # Drives the native cipher the openssl backend wraps through one encryptor: 0.4 s instead of
    # 6 s through the per-call API, whose wrapping the single-block vectors already check.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    encryptor = Cipher(algorithms.SM4(K1), modes.ECB()).encryptor()
    block = K1
    for _ in range(1_000_000):
        block = encryptor.update(block)
    assert block.hex() == "595298c7c6fd271f0402f804c33d3f66"
    assert backend("openssl").sm4_ecb_encrypt(K1, K1, pad=False).hex() == "681edf34d206965e86b3e94f536e4246"


CBC_VECTORS = [
    (K1, "78ebb11cc40b0a48312aaeb2040244cb4cb7016951909226979b0d15dc6a8f6d"),
    (K2, "0d3a6ddc2d21c698857215587b7bb59a91f2c147911a4144665e1fa1d40bae38"),
]


@pytest.mark.parametrize(("key", "ciphertext"), CBC_VECTORS)
def test_sm4_cbc_vectors(be, key: bytes, ciphertext: str) -> None:
    assert be.sm4_cbc_encrypt(key, IV, P_ABCD, pad=False).hex() == ciphertext
    assert be.sm4_cbc_decrypt(key, IV, bytes.fromhex(ciphertext), pad=False) == P_ABCD


GCM_KEY = K1
GCM_NONCE = bytes.fromhex("00001234567800000000abcd")
GCM_AAD = bytes.fromhex("feedfacedeadbeeffeedfacedeadbeefabaddad2")
GCM_PLAINTEXT = bytes.fromhex(
    "aaaaaaaaaaaaaaaabbbbbbbbbbbbbbbbccccccccccccccccdddddddddddddddd"
    "eeeeeeeeeeeeeeeeffffffffffffffffeeeeeeeeeeeeeeeeaaaaaaaaaaaaaaaa"
)
GCM_CIPHERTEXT = bytes.fromhex(
    "17f399f08c67d5ee19d0dc9969c4bb7d5fd46fd3756489069157b282bb200735"
    "d82710ca5c22f0ccfa7cbf93d496ac15a56834cbcf98c397b4024a2691233b8d"
)
GCM_TAG = bytes.fromhex("83de3541e4c2b58177e065a9bf7b62ec")


def test_sm4_gcm_rfc8998(be) -> None:
    assert be.sm4_gcm_encrypt(GCM_KEY, GCM_NONCE, GCM_PLAINTEXT, GCM_AAD) == GCM_CIPHERTEXT + GCM_TAG
    assert be.sm4_gcm_decrypt(GCM_KEY, GCM_NONCE, GCM_CIPHERTEXT + GCM_TAG, GCM_AAD) == GCM_PLAINTEXT


# ------------------------------------------------------------------ SM2, GB/T 32918.5 annexes

ANNEX_D = 0x3945208F7B2144B13F36E38AC6D39F95889393692860B51A42FB81EF4DF7C5B8
ANNEX_PX = 0x09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020
ANNEX_PY = 0xCCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13
ANNEX_K = 0x59276E27D506861A16680F3AD9C02DCCEF3CC1FA3CDBE4CE6D54B80DEAC1BC21
ANNEX_ZA = "b2e14c5c79c6df5b85f4fe7ed8db7a262b9da7e07ccb0ea9f4747b8ccda8a4f3"
ANNEX_E = "f0b43e94ba45accaace692ed534382eb17e6ab5a19ce7b31f4486fdfc0d28640"
ANNEX_R = 0xF5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3
ANNEX_S = 0xB1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA

ANNEX_C_DER = bytes.fromhex(
    "307c022004ebfc718e8d1798620432268e77feb6415e2ede0e073c0f4f640ecd2e149a73"
    "022100e858f9d81e5430a57b36daab8f950a3c64e6ee6a63094d99283aff767e124df0"
    "042059983c18f809e262923c53aec295d30383b54e39d609d160afcb1908d0bd8766"
    "041321886ca989ca9c7d58087307ca93092d651efa"
)


def annex_key() -> Sm2PrivateKey:
    return Sm2PrivateKey(ANNEX_D)


def annex_ciphertext() -> bytes:
    x, y, c3, c2 = asn1.decode_ciphertext(ANNEX_C_DER)
    return b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big") + c3 + c2


def test_sm2_annex_public_key_and_z() -> None:
    key = annex_key()
    assert key.public_key == Sm2PublicKey(ANNEX_PX, ANNEX_PY)
    z = sm2_curve.z_value(DEFAULT_SM2_USER_ID, ANNEX_PX, ANNEX_PY, backend("openssl").sm3)
    assert z.hex() == ANNEX_ZA
    assert backend("openssl").sm3(z + b"message digest").hex() == ANNEX_E


def test_sm2_annex_signature_reproduced_with_fixed_k_on_gmssl() -> None:
    gm = backend("gmssl")
    der = gm.sm2_sign_digest_with_k(annex_key(), bytes.fromhex(ANNEX_E), ANNEX_K)
    assert der is not None
    assert sig_to_raw(der) == ANNEX_R.to_bytes(32, "big") + ANNEX_S.to_bytes(32, "big")


def test_sm2_annex_signature_verifies(be) -> None:
    public = Sm2PublicKey(ANNEX_PX, ANNEX_PY)
    der = asn1.encode_signature(ANNEX_R, ANNEX_S)
    assert be.sm2_verify(public, b"message digest", der)
    assert not be.sm2_verify(public, b"message digesT", der)
    assert not be.sm2_verify(public, b"message digest", der, user_id=b"ALICE123@YAHOO.COM")


def test_sm2_annex_encryption_reproduced_with_fixed_k_on_gmssl() -> None:
    gm = backend("gmssl")
    ciphertext = gm.sm2_encrypt_with_k(annex_key().public_key, b"encryption standard", ANNEX_K)
    assert ciphertext == annex_ciphertext()


def test_sm2_annex_ciphertext_decrypts(be) -> None:
    assert be.sm2_decrypt(annex_key(), annex_ciphertext()) == b"encryption standard"


# ------------------------------------------------------------------ SM2, OpenSSL evppkey_sm2.txt

OPENSSL_SM2_KEY1 = """-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqBHM9VAYItBG0wawIBAQQg0JFWczAXva2An9m7
2MaT9gIwWTFptvlKrxyO4TjMmbWhRANCAAQ5OirZ4n5DrKqrhaGdO4VZHhRAYVcX
Wt3Te/d/8Mr57Tf886i09VwDhSMmH8pmNq/mp6+ioUgqYG9cs6GLLioe
-----END PRIVATE KEY-----
"""

OPENSSL_VERIFY = [
    (
        "d7ad397f6ffa5d4f7f11e7217f241607dc30618c236d2c09c1b9ea8fdadee2e8",
        "3046022100ab1db64de7c40edbde6651c9b8ebdb804673db836e5d5c7fe15dcf9ed2725037"
        "022100eba714451ff69b0bb930b379e192e7cd5fa6e3c41c7fbd8303b799ab54a54621",
    ),
    (
        "b1139602c6ecc9e15e2f3f9c635a1afe737058bc15387479c1ea0d0b3d90e9e5",
        "3045022100e6e0414ebd3a656c35602af14ab20287dbf30d57af75c49a188ed4b42391f224"
        "02202f54f277c606f4605e1ce9514947ffddf94c67a539804a4ed17f852288bdbe2e",
    ),
]

OPENSSL_DECRYPT = bytes.fromhex(
    "30818a0220466be2ef5c11782ec77864a0055417f407a5afc11d653c6bce69e417bb1d05b6"
    "022062b572e21ff0ddf5c726bd3f9ff2eae56e6294713a607e9b9525628965f62cc8"
    "04203c1b5713b5db2728eb7bf775e44f4689fc32668bdc564f52ea45b09e8df2a5f4"
    "0422084a9d0cc2997092b7d3c404fce95956eb604d732b2307a8e5b8900ed6608ca5b197"
)


@pytest.mark.parametrize(("digest", "signature"), OPENSSL_VERIFY)
def test_openssl_digest_signatures_verify(be, digest: str, signature: str) -> None:
    public = Sm2PrivateKey.from_pem(OPENSSL_SM2_KEY1).public_key
    e = bytes.fromhex(digest)
    assert be.sm2_verify_digest(public, e, bytes.fromhex(signature))
    assert not be.sm2_verify_digest(public, e[::-1], bytes.fromhex(signature))


def test_openssl_ciphertext_decrypts(be) -> None:
    x, y, c3, c2 = asn1.decode_ciphertext(OPENSSL_DECRYPT)
    raw = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big") + c3 + c2
    key = Sm2PrivateKey.from_pem(OPENSSL_SM2_KEY1)
    assert be.sm2_decrypt(key, raw) == b"The floofy bunnies hop at midnight"
