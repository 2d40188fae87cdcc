"""The pure-Python second backend, built on ``gmssl`` 3.2.2, with that package's defects fenced off.

It exists to cross-check the native backend in tests and to serve where no native wheel exists. It
is about a thousand times slower and its big-integer arithmetic is not constant-time, so keep it
off the payment path.

What gmssl gets wrong and what we do instead:
- It draws SM2 nonces from ``random``: every k here comes from ``secrets``, passed to its low-level
  ``sign(e, K)``; encryption is assembled from its point multiplication, KDF and SM3 with our k.
- ``CryptSM2`` runs ``lstrip("04")`` on public keys, mangling keys whose X begins with 0 or 4
  characters: we set the 128-hex ``X||Y`` on the object after construction.
- ``decrypt`` never checks C3 and never checks that C1 is on the curve: we check both.
- SM4 unpadding is unchecked: we only use its single-block function and do PKCS#7 ourselves.
- The SM2 user id is fixed: we compute Z and e and call the low-level sign/verify on e.
- No HMAC and no GCM: HMAC (RFC 2104) and GCM (SP 800-38D) are built here on its SM3 and SM4.
"""

from __future__ import annotations

import hmac
import secrets

from gmssl import sm2 as gm_sm2
from gmssl import sm3 as gm_sm3
from gmssl import sm4 as gm_sm4

from bianjie.kit.crypto import asn1, blockmodes, sm2_curve
from bianjie.kit.crypto.provider import (
    DEFAULT_SM2_USER_ID,
    CryptoError,
    Sm2PrivateKey,
    Sm2PublicKey,
    join_sm2_ciphertext,
    split_sm2_ciphertext,
)

_HMAC_BLOCK = 64
_G_HEX = f"{sm2_curve.GX:064x}{sm2_curve.GY:064x}"


def _xy_hex(x: int, y: int) -> str:
    return f"{x:064x}{y:064x}"


def _sm2(public: Sm2PublicKey | None, private: Sm2PrivateKey | None = None) -> gm_sm2.CryptSM2:
    xy = _xy_hex(public.x, public.y) if public is not None else ""
    crypt = gm_sm2.CryptSM2(private_key=f"{private.d:064x}" if private else "", public_key=xy, mode=1)
    # The constructor's lstrip("04") eats leading 0/4 characters of X; put the key back untouched.
    crypt.public_key = xy
    return crypt


def _parse_affine(point_hex: str | None) -> tuple[int, int]:
    if not point_hex:
        raise CryptoError("SM2 point arithmetic reached the point at infinity")
    return int(point_hex[:64], 16), int(point_hex[64:128], 16)


def _check_key(key: bytes) -> bytes:
    if len(key) != 16:
        raise CryptoError("SM4 key must be 16 bytes")
    return key


def _block_function(key: bytes, mode: int) -> blockmodes.Block:
    crypt = gm_sm4.CryptSM4()
    crypt.set_key(_check_key(key), mode)
    round_keys = crypt.sk

    def block(data: bytes) -> bytes:
        return bytes(crypt.one_round(round_keys, list(data)))

    return block


def _encryptor(key: bytes) -> blockmodes.Block:
    return _block_function(key, gm_sm4.SM4_ENCRYPT)


def _decryptor(key: bytes) -> blockmodes.Block:
    return _block_function(key, gm_sm4.SM4_DECRYPT)


def _iv16(iv: bytes) -> bytes:
    if len(iv) != 16:
        raise CryptoError("SM4-CBC IV must be 16 bytes")
    return iv


def _pad(data: bytes, pad: bool) -> bytes:
    if pad:
        return blockmodes.pkcs7_pad(data)
    if len(data) % blockmodes.BLOCK:
        raise CryptoError("SM4 input must be a whole number of 16-byte blocks")
    return data


def _unpad(data: bytes, pad: bool) -> bytes:
    if not pad:
        return data
    try:
        return blockmodes.pkcs7_unpad(data)
    except ValueError as exc:
        raise CryptoError(str(exc)) from None


def _checked_blocks(data: bytes) -> bytes:
    if len(data) % blockmodes.BLOCK:
        raise CryptoError("SM4 input must be a whole number of 16-byte blocks")
    return data


def _random_k() -> int:
    return secrets.randbelow(sm2_curve.N - 1) + 1


class GmsslBackend:
    name = "gmssl"

    # ------------------------------------------------------------ SM3 / HMAC

    def sm3(self, data: bytes) -> bytes:
        # sm3_hash appends padding to the list it is given; hand it a fresh one.
        return bytes.fromhex(gm_sm3.sm3_hash(list(data)))

    def hmac_sm3(self, key: bytes, data: bytes) -> bytes:
        if len(key) > _HMAC_BLOCK:
            key = self.sm3(key)
        key = key.ljust(_HMAC_BLOCK, b"\0")
        inner = self.sm3(bytes(b ^ 0x36 for b in key) + data)
        return self.sm3(bytes(b ^ 0x5C for b in key) + inner)

    # ------------------------------------------------------------ SM4

    def sm4_ecb_encrypt(self, key: bytes, data: bytes, *, pad: bool = True) -> bytes:
        return blockmodes.ecb(_encryptor(key), _pad(data, pad))

    def sm4_ecb_decrypt(self, key: bytes, data: bytes, *, pad: bool = True) -> bytes:
        return _unpad(blockmodes.ecb(_decryptor(key), _checked_blocks(data)), pad)

    def sm4_cbc_encrypt(self, key: bytes, iv: bytes, data: bytes, *, pad: bool = True) -> bytes:
        return blockmodes.cbc_encrypt(_encryptor(key), _iv16(iv), _pad(data, pad))

    def sm4_cbc_decrypt(self, key: bytes, iv: bytes, data: bytes, *, pad: bool = True) -> bytes:
        out = blockmodes.cbc_decrypt(_decryptor(key), _iv16(iv), _checked_blocks(data))
        return _unpad(out, pad)

    def sm4_gcm_encrypt(self, key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        try:
            return blockmodes.gcm_encrypt(_encryptor(key), nonce, data, aad)
        except ValueError as exc:
            raise CryptoError(str(exc)) from None

    def sm4_gcm_decrypt(self, key: bytes, nonce: bytes, data: bytes, aad: bytes = b"") -> bytes:
        try:
            return blockmodes.gcm_decrypt(_encryptor(key), nonce, data, aad)
        except ValueError as exc:
            raise CryptoError(str(exc)) from None

    # ------------------------------------------------------------ SM2

    def sm2_generate_key(self) -> Sm2PrivateKey:
        return Sm2PrivateKey(secrets.randbelow(sm2_curve.N - 2) + 1)

    def _digest(self, public: Sm2PublicKey, message: bytes, user_id: bytes) -> bytes:
        try:
            z = sm2_curve.z_value(user_id, public.x, public.y, self.sm3)
        except ValueError as exc:
            raise CryptoError(str(exc)) from None
        return self.sm3(z + message)

    def sm2_sign_digest_with_k(self, key: Sm2PrivateKey, e: bytes, k: int) -> bytes | None:
        """DER signature over e with a caller-chosen nonce, or None if this k is unusable.

        Public only so the tests can replay the standard's worked example; production code must
        never choose k itself.
        """
        raw = _sm2(None, key).sign(e, f"{k:064x}")
        if raw is None:
            return None
        return asn1.encode_signature(int(raw[:64], 16), int(raw[64:], 16))

    def sm2_sign_digest(self, key: Sm2PrivateKey, e: bytes) -> bytes:
        if len(e) != 32:
            raise CryptoError("SM2 digest must be 32 bytes")
        while True:
            signature = self.sm2_sign_digest_with_k(key, e, _random_k())
            if signature is not None:
                return signature

    def sm2_verify_digest(self, key: Sm2PublicKey, e: bytes, signature: bytes) -> bool:
        if len(e) != 32:
            return False
        try:
            r, s = asn1.decode_signature(signature)
        except ValueError:
            return False
        # gmssl checks neither range; with s = 0 its multiplication even returns G instead of O.
        if not (1 <= r < sm2_curve.N and 1 <= s < sm2_curve.N):
            return False
        try:
            return bool(_sm2(key).verify(f"{r:064x}{s:064x}", e))
        except (TypeError, ValueError):
            # Its point addition reaching infinity surfaces as None being indexed.
            return False

    def sm2_sign(self, key: Sm2PrivateKey, message: bytes, user_id: bytes = DEFAULT_SM2_USER_ID) -> bytes:
        return self.sm2_sign_digest(key, self._digest(key.public_key, message, user_id))

    def sm2_verify(
        self, key: Sm2PublicKey, message: bytes, signature: bytes, user_id: bytes = DEFAULT_SM2_USER_ID
    ) -> bool:
        return self.sm2_verify_digest(key, self._digest(key, message, user_id), signature)

    def sm2_encrypt_with_k(self, key: Sm2PublicKey, plaintext: bytes, k: int) -> bytes | None:
        """GB/T 32918.4 encryption with a caller-chosen k, or None if this k is unusable.

        Public only so the tests can replay the standard's worked example.
        """
        if not plaintext:
            raise CryptoError("SM2 cannot encrypt an empty message")
        crypt = _sm2(key)
        c1x, c1y = _parse_affine(crypt._kg(k, _G_HEX))
        shared = crypt._kg(k, crypt.public_key)
        x2, y2 = _parse_affine(shared)
        t = bytes.fromhex(gm_sm3.sm3_kdf(shared.encode("ascii"), len(plaintext)))
        if not any(t):
            return None
        c2 = bytes(m ^ s for m, s in zip(plaintext, t, strict=True))
        c3 = self.sm3(x2.to_bytes(32, "big") + plaintext + y2.to_bytes(32, "big"))
        return join_sm2_ciphertext(c1x, c1y, c3, c2)

    def sm2_encrypt(self, key: Sm2PublicKey, plaintext: bytes) -> bytes:
        while True:
            ciphertext = self.sm2_encrypt_with_k(key, plaintext, _random_k())
            if ciphertext is not None:
                return ciphertext

    def sm2_decrypt(self, key: Sm2PrivateKey, ciphertext: bytes) -> bytes:
        c1x, c1y, c3, c2 = split_sm2_ciphertext(ciphertext)
        crypt = _sm2(None, key)
        shared = crypt._kg(key.d, _xy_hex(c1x, c1y))
        x2, y2 = _parse_affine(shared)
        t = bytes.fromhex(gm_sm3.sm3_kdf(shared.encode("ascii"), len(c2)))
        if not any(t):
            raise CryptoError("malformed SM2 ciphertext")
        plaintext = bytes(c ^ s for c, s in zip(c2, t, strict=True))
        expected = self.sm3(x2.to_bytes(32, "big") + plaintext + y2.to_bytes(32, "big"))
        if not hmac.compare_digest(expected, c3):
            raise CryptoError("SM2 ciphertext failed its integrity check")
        return plaintext


def create() -> GmsslBackend:
    return GmsslBackend()
