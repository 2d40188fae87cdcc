"""The few DER and PEM structures SM2 needs, encoded and parsed strictly.

Hand-written so that the value objects and the pure-Python backend need no native library, and so
that both backends accept and reject exactly the same encodings. Parsing is strict DER: minimal
lengths, minimal non-negative integers, no trailing bytes. Anything else raises ``ValueError``;
callers turn that into ``CryptoError``.
"""

from __future__ import annotations

import base64
import binascii
import re

from bianjie.kit.crypto import sm2_curve

_INTEGER, _BIT_STRING, _OCTET_STRING, _OID, _SEQUENCE = 0x02, 0x03, 0x04, 0x06, 0x30
_CONTEXT_0, _CONTEXT_1 = 0xA0, 0xA1

COORD_BYTES = 32


# ---------------------------------------------------------------- encoding


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _length(len(value)) + value


def _integer(value: int) -> bytes:
    if value < 0:
        raise ValueError("negative integers are not used here")
    # One extra byte keeps the sign bit clear, as DER requires for non-negative values.
    return _tlv(_INTEGER, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def _oid(dotted: str) -> bytes:
    parts = [int(p) for p in dotted.split(".")]
    body = bytearray([40 * parts[0] + parts[1]])
    for part in parts[2:]:
        chunk = [part & 0x7F]
        part >>= 7
        while part:
            chunk.append(0x80 | (part & 0x7F))
            part >>= 7
        body.extend(reversed(chunk))
    return _tlv(_OID, bytes(body))


def _sequence(*items: bytes) -> bytes:
    return _tlv(_SEQUENCE, b"".join(items))


OID_EC_PUBLIC_KEY = _oid("1.2.840.10045.2.1")
OID_SM2_CURVE = _oid("1.2.156.10197.1.301")
_ALGORITHM = _sequence(OID_EC_PUBLIC_KEY, OID_SM2_CURVE)


# ---------------------------------------------------------------- parsing


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def done(self) -> bool:
        return self.pos == len(self.data)

    def peek_tag(self) -> int | None:
        return None if self.done() else self.data[self.pos]

    def read(self, expected_tag: int) -> bytes:
        """The value of the next TLV, which must carry ``expected_tag``."""
        data, pos = self.data, self.pos
        if pos + 2 > len(data):
            raise ValueError("truncated DER")
        tag, first = data[pos], data[pos + 1]
        if tag != expected_tag:
            raise ValueError(f"expected DER tag {expected_tag:#x}, found {tag:#x}")
        pos += 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 4 or pos + count > len(data):
                raise ValueError("bad DER length")
            raw = data[pos : pos + count]
            length = int.from_bytes(raw, "big")
            if raw[0] == 0 or length < 0x80:
                raise ValueError("non-minimal DER length")
            pos += count
        end = pos + length
        if end > len(data):
            raise ValueError("truncated DER")
        self.pos = end
        return data[pos:end]

    def read_integer(self) -> int:
        raw = self.read(_INTEGER)
        if not raw:
            raise ValueError("empty DER integer")
        if raw[0] & 0x80:
            raise ValueError("negative DER integer")
        if len(raw) > 1 and raw[0] == 0 and not raw[1] & 0x80:
            raise ValueError("non-minimal DER integer")
        return int.from_bytes(raw, "big")


def _single(data: bytes, tag: int) -> _Reader:
    """A reader over the body of the one TLV that makes up ``data``."""
    outer = _Reader(data)
    body = outer.read(tag)
    if not outer.done():
        raise ValueError("trailing bytes after DER value")
    return _Reader(body)


# ---------------------------------------------------------------- SM2 signature and ciphertext


def encode_signature(r: int, s: int) -> bytes:
    return _sequence(_integer(r), _integer(s))


def decode_signature(der: bytes) -> tuple[int, int]:
    body = _single(der, _SEQUENCE)
    r = body.read_integer()
    s = body.read_integer()
    if not body.done():
        raise ValueError("trailing bytes in signature")
    return r, s


def encode_ciphertext(x: int, y: int, c3: bytes, c2: bytes) -> bytes:
    """GM/T 0009 SM2Cipher: SEQUENCE { x INTEGER, y INTEGER, hash OCTET STRING, ciphertext OCTET STRING }."""
    return _sequence(_integer(x), _integer(y), _tlv(_OCTET_STRING, c3), _tlv(_OCTET_STRING, c2))


def decode_ciphertext(der: bytes) -> tuple[int, int, bytes, bytes]:
    body = _single(der, _SEQUENCE)
    x = body.read_integer()
    y = body.read_integer()
    c3 = body.read(_OCTET_STRING)
    c2 = body.read(_OCTET_STRING)
    if not body.done():
        raise ValueError("trailing bytes in ciphertext")
    return x, y, c3, c2


# ---------------------------------------------------------------- keys


def _point(x: int, y: int) -> bytes:
    return b"\x04" + x.to_bytes(COORD_BYTES, "big") + y.to_bytes(COORD_BYTES, "big")


def parse_point(raw: bytes) -> tuple[int, int]:
    """An uncompressed (04) or compressed (02/03) SEC1 point on the SM2 curve."""
    if len(raw) == 1 + 2 * COORD_BYTES and raw[0] == 4:
        x = int.from_bytes(raw[1 : 1 + COORD_BYTES], "big")
        y = int.from_bytes(raw[1 + COORD_BYTES :], "big")
    elif len(raw) == 1 + COORD_BYTES and raw[0] in (2, 3):
        x = int.from_bytes(raw[1:], "big")
        y = sm2_curve.decompress(raw[0], x)
    else:
        raise ValueError("not an SM2 point encoding")
    if not sm2_curve.is_on_curve(x, y):
        raise ValueError("point is not on the SM2 curve")
    return x, y


def encode_public_key(x: int, y: int) -> bytes:
    """SubjectPublicKeyInfo with id-ecPublicKey and the SM2 curve OID."""
    return _sequence(_ALGORITHM, _tlv(_BIT_STRING, b"\x00" + _point(x, y)))


def _read_algorithm(reader: _Reader) -> None:
    alg = _Reader(reader.read(_SEQUENCE))
    if alg.read(_OID) != OID_EC_PUBLIC_KEY[2:]:
        raise ValueError("not an elliptic-curve key")
    if alg.read(_OID) != OID_SM2_CURVE[2:] or not alg.done():
        raise ValueError("not a key on the SM2 curve")


def _bit_string_bytes(raw: bytes) -> bytes:
    if not raw or raw[0] != 0:
        raise ValueError("public key bit string must have no unused bits")
    return raw[1:]


def decode_public_key(der: bytes) -> tuple[int, int]:
    spki = _single(der, _SEQUENCE)
    _read_algorithm(spki)
    point = _bit_string_bytes(spki.read(_BIT_STRING))
    if not spki.done():
        raise ValueError("trailing bytes in SubjectPublicKeyInfo")
    return parse_point(point)


def encode_private_key(d: int, x: int, y: int) -> bytes:
    """PKCS#8 PrivateKeyInfo wrapping an RFC 5915 ECPrivateKey that carries the public key too."""
    ec_private_key = _sequence(
        _integer(1),
        _tlv(_OCTET_STRING, d.to_bytes(COORD_BYTES, "big")),
        _tlv(_CONTEXT_1, _tlv(_BIT_STRING, b"\x00" + _point(x, y))),
    )
    return _sequence(_integer(0), _ALGORITHM, _tlv(_OCTET_STRING, ec_private_key))


def _decode_ec_private_key(der: bytes) -> tuple[int, tuple[int, int] | None]:
    body = _single(der, _SEQUENCE)
    if body.read_integer() != 1:
        raise ValueError("unsupported ECPrivateKey version")
    raw = body.read(_OCTET_STRING)
    if not 0 < len(raw) <= COORD_BYTES:
        raise ValueError("bad private key length")
    public: tuple[int, int] | None = None
    if body.peek_tag() == _CONTEXT_0 and body.read(_CONTEXT_0) != OID_SM2_CURVE:
        raise ValueError("not a key on the SM2 curve")
    if body.peek_tag() == _CONTEXT_1:
        public = parse_point(_bit_string_bytes(_single(body.read(_CONTEXT_1), _BIT_STRING).data))
    if not body.done():
        raise ValueError("trailing bytes in ECPrivateKey")
    return int.from_bytes(raw, "big"), public


def decode_private_key(der: bytes) -> tuple[int, tuple[int, int] | None]:
    """PKCS#8 PrivateKeyInfo, or a bare RFC 5915 ECPrivateKey ("EC PRIVATE KEY")."""
    outer = _single(der, _SEQUENCE)
    version = outer.read_integer()
    if version == 1 and outer.peek_tag() == _OCTET_STRING:
        return _decode_ec_private_key(der)
    if version not in (0, 1):
        raise ValueError("unsupported PrivateKeyInfo version")
    _read_algorithm(outer)
    result = _decode_ec_private_key(outer.read(_OCTET_STRING))
    # Attributes [0] and, in version 2 (OneAsymmetricKey), a public key [1] may follow; they add
    # nothing the ECPrivateKey does not already say.
    return result


# ---------------------------------------------------------------- PEM

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


def pem_encode(label: str, der: bytes) -> str:
    b64 = base64.b64encode(der).decode("ascii")
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----\n"


def pem_decode(pem: str | bytes, labels: tuple[str, ...]) -> tuple[str, bytes]:
    """The first block whose label is one of ``labels`` (others, like EC PARAMETERS, are skipped)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    for match in _PEM.finditer(data):
        label = match.group(1).decode("ascii")
        if label not in labels:
            continue
        body = b"".join(match.group(2).split())
        try:
            return label, binascii.a2b_base64(body, strict_mode=True)
        except binascii.Error as exc:
            raise ValueError("bad base64 in PEM") from exc
    raise ValueError(f"no PEM block labelled {' or '.join(labels)}")
