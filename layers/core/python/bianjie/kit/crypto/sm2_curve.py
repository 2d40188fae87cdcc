"""The SM2 recommended curve (GB/T 32918.5, sm2p256v1) in pure Python.

Used where no native code is wanted: deriving a public key from a private key on the
backend-neutral value objects, key generation for the pure-Python backend, point checks on
untrusted input, and the user-id digest Z that both backends need.

Python integers are not constant-time. The Montgomery ladder below does the same sequence of
group operations for every scalar of a given size, which removes the gross bit-by-bit timing
difference of double-and-add, but it is no substitute for the native backend on hot paths.
"""

from __future__ import annotations

from collections.abc import Callable

P = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF
A = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC
B = 0x28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93
N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123
GX = 0x32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7
GY = 0xBC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0

# Z hashes the curve constants in this order; building the 128-byte block once saves work per call.
_CURVE_BLOCK = b"".join(v.to_bytes(32, "big") for v in (A, B, GX, GY))

# The ID length goes into Z as a 16-bit count of bits.
MAX_USER_ID_BYTES = 0xFFFF // 8

_Jacobian = tuple[int, int, int]
_INFINITY: _Jacobian = (1, 1, 0)


def is_on_curve(x: int, y: int) -> bool:
    if not (0 <= x < P and 0 <= y < P):
        return False
    return (y * y - (x * x * x + A * x + B)) % P == 0


def decompress(prefix: int, x: int) -> int:
    """The y for a compressed point (prefix 2 or 3); raises ValueError when x is not on the curve."""
    if prefix not in (2, 3) or not 0 <= x < P:
        raise ValueError("not a compressed SM2 point")
    rhs = (x * x * x + A * x + B) % P
    # P = 3 (mod 4), so a square root is a single exponentiation.
    y = pow(rhs, (P + 1) // 4, P)
    if (y * y) % P != rhs:
        raise ValueError("x is not on the SM2 curve")
    if (y & 1) != (prefix & 1):
        y = P - y
    return y


def _double(pt: _Jacobian) -> _Jacobian:
    x1, y1, z1 = pt
    if z1 == 0 or y1 == 0:
        return _INFINITY
    # dbl-2001-b: valid because a = -3 on this curve.
    delta = z1 * z1 % P
    gamma = y1 * y1 % P
    beta = x1 * gamma % P
    alpha = 3 * (x1 - delta) * (x1 + delta) % P
    x3 = (alpha * alpha - 8 * beta) % P
    z3 = ((y1 + z1) ** 2 - gamma - delta) % P
    y3 = (alpha * (4 * beta - x3) - 8 * gamma * gamma) % P
    return (x3, y3, z3)


def _add(p1: _Jacobian, p2: _Jacobian) -> _Jacobian:
    x1, y1, z1 = p1
    x2, y2, z2 = p2
    if z1 == 0:
        return p2
    if z2 == 0:
        return p1
    z1z1 = z1 * z1 % P
    z2z2 = z2 * z2 % P
    u1 = x1 * z2z2 % P
    u2 = x2 * z1z1 % P
    s1 = y1 * z2 * z2z2 % P
    s2 = y2 * z1 * z1z1 % P
    if u1 == u2:
        return _double(p1) if s1 == s2 else _INFINITY
    h = (u2 - u1) % P
    r = (s2 - s1) % P
    hh = h * h % P
    hhh = h * hh % P
    v = u1 * hh % P
    x3 = (r * r - hhh - 2 * v) % P
    y3 = (r * (v - x3) - s1 * hhh) % P
    z3 = h * z1 * z2 % P
    return (x3, y3, z3)


def _to_affine(pt: _Jacobian) -> tuple[int, int] | None:
    x, y, z = pt
    if z == 0:
        return None
    zi = pow(z, -1, P)
    zi2 = zi * zi % P
    return (x * zi2 % P, y * zi2 * zi % P)


def multiply(k: int, x: int, y: int) -> tuple[int, int] | None:
    """k·(x, y) in affine coordinates; None for the point at infinity."""
    k %= N
    r0: _Jacobian = _INFINITY
    r1: _Jacobian = (x, y, 1)
    for i in range(N.bit_length() - 1, -1, -1):
        if (k >> i) & 1:
            r0, r1 = _add(r0, r1), _double(r1)
        else:
            r1, r0 = _add(r0, r1), _double(r0)
    return _to_affine(r0)


def multiply_g(k: int) -> tuple[int, int]:
    point = multiply(k, GX, GY)
    if point is None:
        raise ValueError("scalar is a multiple of the group order")
    return point


def z_value(user_id: bytes, x: int, y: int, sm3: Callable[[bytes], bytes]) -> bytes:
    """Z = SM3(ENTL || ID || a || b || Gx || Gy || Px || Py) (GB/T 32918.2, 5.5)."""
    if len(user_id) > MAX_USER_ID_BYTES:
        raise ValueError(f"SM2 user id longer than {MAX_USER_ID_BYTES} bytes")
    entl = (len(user_id) * 8).to_bytes(2, "big")
    return sm3(entl + user_id + _CURVE_BLOCK + x.to_bytes(32, "big") + y.to_bytes(32, "big"))
