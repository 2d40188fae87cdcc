"""The default backend: ``cryptography`` (OpenSSL) for SM3, HMAC-SM3 and SM4; ``tongsuopy`` for SM2.

SM2 signing goes through the raw ``EVP_PKEY_sign``/``EVP_PKEY_verify`` of Tongsuo's SM2 key method,
which signs a given digest e directly. We compute Z and e = SM3(Z || M) ourselves, because tongsuopy
cannot set the SM2 user id (no ``EVP_PKEY_CTX_set1_id``) and the NHSA envelope needs
user id = app secret. The tests check that this path agrees with tongsuopy's own SM2-with-SM3 sign
and verify for the default id.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from tongsuopy.backends.tongsuo.backend import backend as _tongsuo
from tongsuopy.crypto.asymciphers import ec

from bianjie.kit.crypto import asn1, sm2_curve
from bianjie.kit.crypto.provider import (
    DEFAULT_SM2_USER_ID,
    CryptoError,
    Sm2PrivateKey,
    Sm2PublicKey,
    _remember_public_key,
    join_sm2_ciphertext,
    split_sm2_ciphertext,
)

_lib = _tongsuo._lib
_ffi = _tongsuo._ffi

_TAG_BYTES = 16
_MAX_SIG_BYTES = 80  # DER of two 256-bit integers is at most 72 bytes


def _sm4(key: bytes) -> algorithms.SM4:
    if len(key) != 16:
        raise CryptoError("SM4 key must be 16 bytes")
    return algorithms.SM4(key)


def _iv16(iv: bytes) -> bytes:
    if len(iv) != 16:
        raise CryptoError("SM4-CBC IV must be 16 bytes")
    return iv


def _nonce(nonce: bytes) -> bytes:
    if not 8 <= len(nonce) <= 128:
        raise CryptoError("SM4-GCM nonce must be 8 to 128 bytes")
    return nonce


def _whole_blocks(data: bytes) -> bytes:
    if len(data) % 16:
        raise CryptoError("SM4 input must be a whole number of 16-byte blocks")
    return data


def _pad(data: bytes) -> bytes:
    padder = padding.PKCS7(128).padder()
    return padder.update(data) + padder.finalize()


def _unpad(data: bytes) -> bytes:
    _whole_blocks(data)
    unpadder = padding.PKCS7(128).unpadder()
    try:
        return unpadder.update(data) + unpadder.finalize()
    except ValueError:
        raise CryptoError("bad PKCS#7 padding") from None


def _run(cipher: Cipher[Any], data: bytes, *, encrypt: bool) -> bytes:
    ctx = cipher.encryptor() if encrypt else cipher.decryptor()
    return ctx.update(data) + ctx.finalize()


# Building a tongsuopy key costs a point multiplication or a curve check (0.3-0.4 ms), more than
# the sign or verify itself, and services use a handful of keys over and over.
@lru_cache(maxsize=256)
def _native_private(key: Sm2PrivateKey) -> Any:
    return ec.derive_private_key(key.d, ec.SM2())


@lru_cache(maxsize=1024)
def _native_public(key: Sm2PublicKey) -> Any:
    return ec.EllipticCurvePublicNumbers(key.x, key.y, ec.SM2()).public_key()


@lru_cache(maxsize=256)
def _public_of(key: Sm2PrivateKey) -> Sm2PublicKey:
    numbers = _native_private(key).public_key().public_numbers()
    return Sm2PublicKey(numbers.x, numbers.y)


def _sm3(data: bytes) -> bytes:
    h = hashes.Hash(hashes.SM3())
    h.update(data)
    return h.finalize()


# Z = SM3(ENTL || ID || curve || public key) depends only on the user id and the key: the same few pairs
# sign and verify every request (a partner's key, ours, a channel's), so it is computed once per pair.
@lru_cache(maxsize=1024)
def _z_value(user_id: bytes, x: int, y: int) -> bytes:
    return sm2_curve.z_value(user_id, x, y, _sm3)


def _pkey_ctx(native_key: Any) -> Any:
    ctx = _lib.EVP_PKEY_CTX_new(native_key._evp_pkey, _ffi.NULL)
    if ctx == _ffi.NULL:
        _tongsuo._consume_errors()
        raise CryptoError("could not create an SM2 context")
    return _ffi.gc(ctx, _lib.EVP_PKEY_CTX_free)


def _fail(message: str) -> CryptoError:
    # Leave nothing on OpenSSL's per-thread error queue for the next, unrelated call to trip on.
    _tongsuo._consume_errors()
    return CryptoError(message)


class OpenSslBackend:
    name = "openssl"

    # ------------------------------------------------------------ SM3 / HMAC

    def sm3(self, data: bytes) -> bytes:
        return _sm3(data)

    def hmac_sm3(self, key: bytes, data: bytes) -> bytes:
        mac = hmac.HMAC(key, hashes.SM3())
        mac.update(data)
        return mac.finalize()

    # ------------------------------------------------------------ SM4

    def sm4_ecb_encrypt(self, key: bytes, data: bytes, *, pad: bool = True) -> bytes:
        data = _pad(data) if pad else _whole_blocks(data)
        return _run(Cipher(_sm4(key), modes.ECB()), data, encrypt=True)

    def sm4_ecb_decrypt(self, key: bytes, data: bytes, *, pad: bool = True) -> bytes:
        out = _run(Cipher(_sm4(key), modes.ECB()), _whole_blocks(data), encrypt=False)
        return _unpad(out) if pad else out

    def sm4_cbc_encrypt(self, key: bytes, iv: bytes, data: bytes, *, pad: bool = True) -> bytes:
        data = _pad(data) if pad else _whole_blocks(data)
        return _run(Cipher(_sm4(key), modes.CBC(_iv16(iv))), data, encrypt=True)

    def sm4_cbc_decrypt(self, key: bytes, iv: bytes, data: bytes, *, pad: bool = True) -> bytes:
        out = _run(Cipher(_sm4(key), modes.CBC(_iv16(iv))), _whole_blocks(data), encrypt=False)
        return _unpad(out) if pad else out

    def sm4_gcm_encrypt(self, key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        enc = Cipher(_sm4(key), modes.GCM(_nonce(nonce))).encryptor()
        enc.authenticate_additional_data(aad)
        out = enc.update(data) + enc.finalize()
        return out + enc.tag

    def sm4_gcm_decrypt(self, key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        if len(data) < _TAG_BYTES:
            raise CryptoError("SM4-GCM input shorter than its tag")
        body, tag = data[:-_TAG_BYTES], data[-_TAG_BYTES:]
        dec = Cipher(_sm4(key), modes.GCM(_nonce(nonce), tag)).decryptor()
        dec.authenticate_additional_data(aad)
        try:
            return dec.update(body) + dec.finalize()
        except InvalidTag:
            raise CryptoError("SM4-GCM tag mismatch") from None

    # ------------------------------------------------------------ SM2

    def sm2_generate_key(self) -> Sm2PrivateKey:
        while True:
            native = ec.generate_private_key(ec.SM2())
            d = native.private_numbers().private_value
            # OpenSSL draws d from [1, n-1]; SM2 forbids n-1.
            if d <= sm2_curve.N - 2:
                break
        numbers = native.public_key().public_numbers()
        return _remember_public_key(Sm2PrivateKey(d), Sm2PublicKey(numbers.x, numbers.y))

    def _digest(self, public: Sm2PublicKey, message: bytes, user_id: bytes) -> bytes:
        try:
            z = _z_value(bytes(user_id), public.x, public.y)
        except ValueError as exc:
            raise CryptoError(str(exc)) from None
        return self.sm3(z + message)

    def sm2_sign_digest(self, key: Sm2PrivateKey, e: bytes) -> bytes:
        """DER signature over a 32-byte e = SM3(Z || M) the caller already computed."""
        if len(e) != 32:
            raise CryptoError("SM2 digest must be 32 bytes")
        ctx = _pkey_ctx(_native_private(key))
        if _lib.EVP_PKEY_sign_init(ctx) != 1:
            raise _fail("SM2 sign init failed")
        size = _ffi.new("size_t *", _MAX_SIG_BYTES)
        buf = _ffi.new("unsigned char[]", _MAX_SIG_BYTES)
        if _lib.EVP_PKEY_sign(ctx, buf, size, e, len(e)) != 1:
            raise _fail("SM2 sign failed")
        return bytes(_ffi.buffer(buf, size[0]))

    def sm2_verify_digest(self, key: Sm2PublicKey, e: bytes, signature: bytes) -> bool:
        if len(e) != 32:
            return False
        try:
            r, s = asn1.decode_signature(signature)
        except ValueError:
            return False
        if not (1 <= r < sm2_curve.N and 1 <= s < sm2_curve.N):
            return False
        ctx = _pkey_ctx(_native_public(key))
        if _lib.EVP_PKEY_verify_init(ctx) != 1:
            raise _fail("SM2 verify init failed")
        result = _lib.EVP_PKEY_verify(ctx, signature, len(signature), e, len(e))
        if result != 1:
            _tongsuo._consume_errors()
        return result == 1

    def sm2_sign(self, key: Sm2PrivateKey, message: bytes, user_id: bytes = DEFAULT_SM2_USER_ID) -> bytes:
        return self.sm2_sign_digest(key, self._digest(_public_of(key), message, user_id))

    def sm2_verify(
        self, key: Sm2PublicKey, message: bytes, signature: bytes, user_id: bytes = DEFAULT_SM2_USER_ID
    ) -> bool:
        return self.sm2_verify_digest(key, self._digest(key, message, user_id), signature)

    def sm2_encrypt(self, key: Sm2PublicKey, plaintext: bytes) -> bytes:
        if not plaintext:
            raise CryptoError("SM2 cannot encrypt an empty message")
        ctx = _pkey_ctx(_native_public(key))
        if _lib.EVP_PKEY_encrypt_init(ctx) != 1:
            raise _fail("SM2 encrypt init failed")
        size = _ffi.new("size_t *")
        if _lib.EVP_PKEY_encrypt(ctx, _ffi.NULL, size, plaintext, len(plaintext)) != 1:
            raise _fail("SM2 encrypt failed")
        buf = _ffi.new("unsigned char[]", size[0])
        if _lib.EVP_PKEY_encrypt(ctx, buf, size, plaintext, len(plaintext)) != 1:
            raise _fail("SM2 encrypt failed")
        x, y, c3, c2 = asn1.decode_ciphertext(bytes(_ffi.buffer(buf, size[0])))
        return join_sm2_ciphertext(x, y, c3, c2)

    def sm2_decrypt(self, key: Sm2PrivateKey, ciphertext: bytes) -> bytes:
        x, y, c3, c2 = split_sm2_ciphertext(ciphertext)
        der = asn1.encode_ciphertext(x, y, c3, c2)
        ctx = _pkey_ctx(_native_private(key))
        if _lib.EVP_PKEY_decrypt_init(ctx) != 1:
            raise _fail("SM2 decrypt init failed")
        size = _ffi.new("size_t *")
        if _lib.EVP_PKEY_decrypt(ctx, _ffi.NULL, size, der, len(der)) != 1:
            raise _fail("malformed SM2 ciphertext")
        buf = _ffi.new("unsigned char[]", size[0])
        # Tongsuo recomputes C3 and fails here on any tamper.
        if _lib.EVP_PKEY_decrypt(ctx, buf, size, der, len(der)) != 1:
            raise _fail("SM2 ciphertext failed its integrity check")
        return bytes(_ffi.buffer(buf, size[0]))


def create() -> OpenSslBackend:
    # Fail at first use, not at first SM2 call, if the native library lacks what we need.
    for name in ("EVP_PKEY_sign", "EVP_PKEY_verify", "EVP_PKEY_encrypt", "EVP_PKEY_decrypt"):
        if not hasattr(_lib, name):
            raise RuntimeError(f"tongsuopy lacks {name}")
    return OpenSslBackend()
