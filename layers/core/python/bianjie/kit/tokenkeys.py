"""Token signing keys: the two algorithms, public keys as JWKs (RFC 7517), and the issuer's signers.

Algorithms (the JWS ``alg`` of a token and of the key that signed it; a key signs with one only):

- ``SM2-SM3``: SM2 signature with SM3 and the default distinguishing id ``1234567812345678`` (GM/T 0009),
  as AWS KMS ``SM2DSA`` with ``MessageType=RAW`` computes it. The default: GB/T 39786 level 3 wants
  commercial cryptography for identity authentication. JWK ``{"kty":"EC","crv":"SM2"}``.
- ``ES256``: ECDSA P-256 with SHA-256 (RFC 7518), for a key whose tokens a standard JOSE client must
  verify (a partner's app with an off-the-shelf JWT library). JWK ``{"kty":"EC","crv":"P-256"}``.

Both sign ``r || s`` (64 bytes, big-endian), the JWS form. A key's ``kid`` is its thumbprint (SM3 over
the RFC 7638 member set), so a kid names exactly one key and needs no registry.

Only the issuer holds a ``TokenSigner``: ``KmsTokenSigner`` (the private key never leaves KMS; only the
issuer's role may ``kms:Sign``) or ``LocalTokenSigner`` (on premises: a private key the issuer unwraps
through the key port; in tests: a throwaway pair). Verifiers hold a ``PublicKeySet`` (the JWKS).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bianjie.kit.crypto import (
    Sm2PrivateKey,
    Sm2PublicKey,
    sig_from_raw,
    sig_to_raw,
    sm2_generate_key,
    sm2_sign,
    sm2_verify,
    sm3,
)
from bianjie.kit.crypto.asn1 import decode_public_key
from bianjie.kit.crypto.provider import CryptoError

SM2_SM3 = "SM2-SM3"
ES256 = "ES256"
ALGORITHMS = (SM2_SM3, ES256)
_CURVE = {SM2_SM3: "SM2", ES256: "P-256"}
_KMS_ALGORITHM = {"SM2": (SM2_SM3, "SM2DSA"), "ECC_NIST_P256": (ES256, "ECDSA_SHA_256")}
COORD_BYTES = 32
SIGNATURE_BYTES = 2 * COORD_BYTES


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _p256_public(x: int, y: int) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()


@dataclass(frozen=True)
class TokenPublicKey:
    """One verification key: its algorithm and point; ``kid`` is derived, never chosen."""

    alg: str
    x: int
    y: int
    _native: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.alg not in ALGORITHMS:
            raise ValueError(f"unsupported token algorithm {self.alg!r}")
        try:  # checks the point is on the curve, once, and keeps the key verify uses
            native = Sm2PublicKey(self.x, self.y) if self.alg == SM2_SM3 else _p256_public(self.x, self.y)
        except (CryptoError, ValueError) as exc:
            raise ValueError("the public key is not a point on its curve") from exc
        object.__setattr__(self, "_native", native)

    @property
    def kid(self) -> str:
        return key_id(self.alg, self.x, self.y)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """True if ``signature`` (r || s) is this key's signature of ``signing_input``; never raises."""
        if len(signature) != SIGNATURE_BYTES:
            return False
        r = int.from_bytes(signature[:COORD_BYTES], "big")
        s = int.from_bytes(signature[COORD_BYTES:], "big")
        if not (r and s):
            return False
        if self.alg == SM2_SM3:
            try:
                return sm2_verify(self._native, signing_input, sig_from_raw(signature))
            except CryptoError:
                return False
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        try:
            self._native.verify(encode_dss_signature(r, s), signing_input, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    def to_jwk(self) -> dict[str, str]:
        return {
            "kty": "EC",
            "crv": _CURVE[self.alg],
            "x": b64url(self.x.to_bytes(COORD_BYTES, "big")),
            "y": b64url(self.y.to_bytes(COORD_BYTES, "big")),
            "alg": self.alg,
            "use": "sig",
            "kid": self.kid,
        }

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> TokenPublicKey:
        """A key from its JWK; ``ValueError`` unless it is a signing EC key whose kid is its thumbprint."""
        alg = jwk.get("alg")
        if jwk.get("kty") != "EC" or alg not in ALGORITHMS or jwk.get("crv") != _CURVE[str(alg)]:
            raise ValueError("a token key is an EC JWK with alg SM2-SM3 (crv SM2) or ES256 (crv P-256)")
        if jwk.get("use", "sig") != "sig":
            raise ValueError("a token key is a signing key (use: sig)")
        try:
            xb, yb = b64url_decode(str(jwk["x"])), b64url_decode(str(jwk["y"]))
        except (KeyError, ValueError) as exc:
            raise ValueError("a JWK needs base64url x and y") from exc
        if len(xb) != COORD_BYTES or len(yb) != COORD_BYTES:
            raise ValueError("x and y are 32 bytes each")
        key = cls(str(alg), int.from_bytes(xb, "big"), int.from_bytes(yb, "big"))
        if "kid" in jwk and jwk["kid"] != key.kid:
            raise ValueError("the JWK's kid is not its key's thumbprint")
        return key

    @classmethod
    def from_spki(cls, der: bytes, alg: str) -> TokenPublicKey:
        """A key from a DER SubjectPublicKeyInfo (what KMS GetPublicKey returns)."""
        if alg == SM2_SM3:
            return cls(alg, *decode_public_key(der))
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        numbers = load_der_public_key(der).public_numbers()  # type: ignore[union-attr]
        return cls(alg, numbers.x, numbers.y)


def key_id(alg: str, x: int, y: int) -> str:
    """The kid of a key: SM3 over its RFC 7638 required members (crv, kty, x, y), base64url, 22 chars."""
    members = {
        "crv": _CURVE[alg],
        "kty": "EC",
        "x": b64url(x.to_bytes(COORD_BYTES, "big")),
        "y": b64url(y.to_bytes(COORD_BYTES, "big")),
    }
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("ascii")
    return b64url(sm3(canonical))[:22]


class PublicKeySet:
    """The published verification keys by kid: a JWKS document (``{"keys": [...]}``)."""

    def __init__(self, keys: Iterable[TokenPublicKey]) -> None:
        self._keys = {key.kid: key for key in keys}

    def get(self, kid: str) -> TokenPublicKey | None:
        return self._keys.get(kid)

    def __iter__(self) -> Iterator[TokenPublicKey]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"PublicKeySet(kids={sorted(self._keys)})"

    def to_jwks(self) -> dict[str, list[dict[str, str]]]:
        return {"keys": [key.to_jwk() for key in self._keys.values()]}

    def to_json(self) -> str:
        return json.dumps(self.to_jwks(), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_jwks(cls, document: Mapping[str, Any] | str) -> PublicKeySet:
        """Parse a JWKS (dict or JSON text); ``ValueError`` on anything that is not a valid token key."""
        if isinstance(document, str):
            try:
                document = json.loads(document)
            except ValueError as exc:
                raise ValueError("the JWKS is not JSON") from exc
        keys = document.get("keys") if isinstance(document, Mapping) else None
        if not isinstance(keys, list):
            raise ValueError('a JWKS is {"keys": [...]}')
        return cls(TokenPublicKey.from_jwk(jwk) for jwk in keys)

    def merged(self, *others: PublicKeySet) -> PublicKeySet:
        return PublicKeySet([*self, *(key for other in others for key in other)])


class TokenSigner(Protocol):
    """What the issuer signs with. ``sign`` returns r || s (64 bytes)."""

    @property
    def public_key(self) -> TokenPublicKey: ...

    def sign(self, signing_input: bytes) -> bytes: ...


class LocalTokenSigner:
    """A private key held in this process: the issuer's on premises (unwrapped from the key port), or a test's.

    ``alg`` follows the key: an ``Sm2PrivateKey`` signs SM2-SM3; a ``cryptography`` P-256 key signs ES256.
    """

    def __init__(self, private_key: Any) -> None:
        self._key = private_key
        if isinstance(private_key, Sm2PrivateKey):
            pub = private_key.public_key
            self._public = TokenPublicKey(SM2_SM3, pub.x, pub.y)
        else:
            numbers = private_key.public_key().public_numbers()
            if numbers.curve.name != "secp256r1":
                raise ValueError("an ES256 key is on P-256")
            self._public = TokenPublicKey(ES256, numbers.x, numbers.y)

    def __repr__(self) -> str:  # never print key material
        return f"LocalTokenSigner(kid={self._public.kid!r}, alg={self._public.alg!r})"

    @classmethod
    def generate(cls, alg: str = SM2_SM3) -> LocalTokenSigner:
        if alg == SM2_SM3:
            return cls(sm2_generate_key())
        if alg == ES256:
            from cryptography.hazmat.primitives.asymmetric import ec

            return cls(ec.generate_private_key(ec.SECP256R1()))
        raise ValueError(f"unsupported token algorithm {alg!r}")

    @classmethod
    def from_pem(cls, pem: str | bytes) -> LocalTokenSigner:
        """A PKCS#8 PEM private key on the SM2 curve or on P-256."""
        text = pem.encode("ascii") if isinstance(pem, str) else pem
        try:
            return cls(Sm2PrivateKey.from_pem(text))
        except (CryptoError, ValueError):
            from cryptography.hazmat.primitives.serialization import load_pem_private_key

            return cls(load_pem_private_key(text, password=None))

    def to_pem(self) -> str:
        if isinstance(self._key, Sm2PrivateKey):
            return self._key.to_pem()
        from cryptography.hazmat.primitives import serialization

        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")

    @property
    def public_key(self) -> TokenPublicKey:
        return self._public

    def sign(self, signing_input: bytes) -> bytes:
        if isinstance(self._key, Sm2PrivateKey):
            return sig_to_raw(sm2_sign(self._key, signing_input))
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(self._key.sign(signing_input, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(COORD_BYTES, "big") + s.to_bytes(COORD_BYTES, "big")


class KmsTokenSigner:
    """A KMS asymmetric key (KeySpec SM2 in the China regions, or ECC_NIST_P256): the key never leaves KMS.

    The public key is read once (``kms:GetPublicKey``) to learn the algorithm and kid; each token is one
    ``kms:Sign`` with ``MessageType=RAW``. ``kms_client`` is a boto3 client made by the caller.
    """

    def __init__(self, kms_client: Any, key_id: str) -> None:
        self._kms = kms_client
        self.key_id = key_id
        self._public = public_key_of_kms_key(kms_client, key_id)
        self._kms_alg = next(kms for alg, kms in _KMS_ALGORITHM.values() if alg == self._public.alg)

    def __repr__(self) -> str:
        return f"KmsTokenSigner(key_id={self.key_id!r}, kid={self._public.kid!r})"

    @property
    def public_key(self) -> TokenPublicKey:
        return self._public

    def sign(self, signing_input: bytes) -> bytes:
        out = self._kms.sign(
            KeyId=self.key_id, Message=signing_input, MessageType="RAW", SigningAlgorithm=self._kms_alg
        )
        der = bytes(out["Signature"])
        if self._public.alg == SM2_SM3:
            return sig_to_raw(der)
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(der)  # not sig_to_raw: it bounds r and s by the SM2 order
        return r.to_bytes(COORD_BYTES, "big") + s.to_bytes(COORD_BYTES, "big")


def public_key_of_kms_key(kms_client: Any, key_id: str) -> TokenPublicKey:
    """The token public key of a KMS signing key (``kms:GetPublicKey``)."""
    out = kms_client.get_public_key(KeyId=key_id)
    spec = out.get("KeySpec") or out.get("CustomerMasterKeySpec")
    if spec not in _KMS_ALGORITHM or out.get("KeyUsage") != "SIGN_VERIFY":
        raise ValueError(f"KMS key {key_id} is not an SM2 or ECC_NIST_P256 signing key (it is {spec})")
    return TokenPublicKey.from_spki(bytes(out["PublicKey"]), _KMS_ALGORITHM[spec][0])
