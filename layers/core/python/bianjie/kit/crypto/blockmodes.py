"""ECB, CBC and GCM over any 128-bit block cipher, plus PKCS#7, in pure Python.

The pure-Python backend builds its modes here on top of gmssl's single-block SM4, so that GCM, which
gmssl lacks, is still cross-checked by a second, independent implementation. GCM follows NIST SP
800-38D. Errors are ``ValueError``; the backend turns them into ``CryptoError``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

BLOCK = 16
TAG_BYTES = 16

Block = Callable[[bytes], bytes]

# The GHASH reduction constant, x^128 + x^7 + x^2 + x + 1 in GCM's reflected bit order.
_R = 0xE1 << 120


def pkcs7_pad(data: bytes) -> bytes:
    n = BLOCK - len(data) % BLOCK
    return data + bytes([n]) * n


def pkcs7_unpad(data: bytes) -> bytes:
    if not data or len(data) % BLOCK:
        raise ValueError("padded data is not a whole number of blocks")
    n = data[-1]
    if not 1 <= n <= BLOCK or data[-n:] != bytes([n]) * n:
        raise ValueError("bad PKCS#7 padding")
    return data[:-n]


def _blocks(data: bytes) -> list[bytes]:
    if len(data) % BLOCK:
        raise ValueError("data is not a whole number of 16-byte blocks")
    return [data[i : i + BLOCK] for i in range(0, len(data), BLOCK)]


def _xor(a: bytes, b: bytes) -> bytes:
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).to_bytes(len(a), "big")


def ecb(block: Block, data: bytes) -> bytes:
    return b"".join(block(b) for b in _blocks(data))


def cbc_encrypt(encrypt: Block, iv: bytes, data: bytes) -> bytes:
    out = []
    prev = iv
    for b in _blocks(data):
        prev = encrypt(_xor(b, prev))
        out.append(prev)
    return b"".join(out)


def cbc_decrypt(decrypt: Block, iv: bytes, data: bytes) -> bytes:
    out = []
    prev = iv
    for b in _blocks(data):
        out.append(_xor(decrypt(b), prev))
        prev = b
    return b"".join(out)


def _gf_mult(x: int, y: int) -> int:
    z = 0
    v = y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def _ghash(h: int, *parts: bytes) -> int:
    """GHASH over each part zero-padded to whole blocks (the length block is passed as a part)."""
    y = 0
    for part in parts:
        for i in range(0, len(part), BLOCK):
            chunk = part[i : i + BLOCK].ljust(BLOCK, b"\0")
            y = _gf_mult(y ^ int.from_bytes(chunk, "big"), h)
    return y


def _lengths(a: int, b: int) -> bytes:
    return (a * 8).to_bytes(8, "big") + (b * 8).to_bytes(8, "big")


def _inc32(counter: int) -> int:
    # Only the low 32 bits count, wrapping, as SP 800-38D specifies.
    return (counter & ~0xFFFFFFFF) | ((counter + 1) & 0xFFFFFFFF)


def _ctr(encrypt: Block, counter: int, data: bytes) -> bytes:
    out = []
    for i in range(0, len(data), BLOCK):
        chunk = data[i : i + BLOCK]
        keystream = encrypt(counter.to_bytes(BLOCK, "big"))
        out.append(_xor(chunk, keystream[: len(chunk)]))
        counter = _inc32(counter)
    return b"".join(out)


def _gcm_setup(encrypt: Block, nonce: bytes) -> tuple[int, int]:
    if not 8 <= len(nonce) <= 128:
        raise ValueError("GCM nonce must be 8 to 128 bytes")
    h = int.from_bytes(encrypt(bytes(BLOCK)), "big")
    if len(nonce) == 12:
        j0 = int.from_bytes(nonce + b"\0\0\0\1", "big")
    else:
        j0 = _ghash(h, nonce, _lengths(0, len(nonce)))
    return h, j0


def _gcm_tag(encrypt: Block, h: int, j0: int, aad: bytes, ciphertext: bytes) -> bytes:
    s = _ghash(h, aad, ciphertext, _lengths(len(aad), len(ciphertext)))
    return _xor(encrypt(j0.to_bytes(BLOCK, "big")), s.to_bytes(BLOCK, "big"))


def gcm_encrypt(encrypt: Block, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    h, j0 = _gcm_setup(encrypt, nonce)
    ciphertext = _ctr(encrypt, _inc32(j0), data)
    return ciphertext + _gcm_tag(encrypt, h, j0, aad, ciphertext)


def gcm_decrypt(encrypt: Block, nonce: bytes, data: bytes, aad: bytes) -> bytes:
    h, j0 = _gcm_setup(encrypt, nonce)
    if len(data) < TAG_BYTES:
        raise ValueError("GCM input shorter than its tag")
    ciphertext, tag = data[:-TAG_BYTES], data[-TAG_BYTES:]
    if not hmac.compare_digest(_gcm_tag(encrypt, h, j0, aad, ciphertext), tag):
        raise ValueError("GCM tag mismatch")
    return _ctr(encrypt, _inc32(j0), ciphertext)
