"""Patient/staff tokens: JWS format, expiry, tamper, wrong keys, alg confusion, kid rotation, roles."""

from __future__ import annotations

import base64
import json

import pytest
from bianjie.kit.crypto import hmac_sm3, sig_from_raw, sm2_verify
from bianjie.kit.errors import AppError
from bianjie.kit.tokenkeys import ES256, SM2_SM3, LocalTokenSigner, PublicKeySet
from bianjie.kit.tokens import (
    MAX_TTL,
    Claims,
    TokenIssuer,
    TokenVerifier,
    bearer_token,
    require_kind,
    require_roles,
)

from tests.fakes import Clock

NOW = 1_767_225_600
# one SM2 and one P-256 key for the whole module: key generation is the slow part
K1 = LocalTokenSigner.generate(SM2_SM3)
K2 = LocalTokenSigner.generate(SM2_SM3)
P1 = LocalTokenSigner.generate(ES256)


def b64d(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def b64e(obj: dict) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def raw(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verifier_of(*signers: LocalTokenSigner, clock: Clock | None = None) -> TokenVerifier:
    return TokenVerifier(PublicKeySet(s.public_key for s in signers), clock or Clock(NOW))


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def issuer(clock: Clock) -> TokenIssuer:
    return TokenIssuer(K1, clock)


@pytest.fixture
def verifier(clock: Clock) -> TokenVerifier:
    return verifier_of(K1, clock=clock)


def code(verifier: TokenVerifier, token: str | None) -> tuple[int, str]:
    with pytest.raises(AppError) as err:
        verifier.verify(token)
    return err.value.status, err.value.code


def test_issue_and_verify(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("p-42", "patient", ["patient"], hospital="h-rj", openid_hash="ab12")
    header_s, payload_s, sig_s = token.split(".")
    assert b64d(header_s) == {"alg": "SM2-SM3", "kid": K1.public_key.kid, "typ": "JWT"}
    payload = b64d(payload_s)
    assert payload["iss"] == "bianjie" and payload["exp"] - payload["iat"] == 900
    # the signature is SM2-with-SM3 (default user id) over the two encoded parts, as r || s
    signature = raw(sig_s)
    assert len(signature) == 64
    assert sm2_verify(K1._key.public_key, f"{header_s}.{payload_s}".encode(), sig_from_raw(signature))
    claims = verifier.verify(token)
    assert isinstance(claims, Claims)
    assert (claims.sub, claims.kind, claims.roles, claims.hospital) == ("p-42", "patient", ("patient",), "h-rj")
    assert claims.extra == {"openid_hash": "ab12"}
    assert len(claims.jti) >= 16


def test_es256_tokens_verify_with_a_standard_ecdsa_check(clock: Clock) -> None:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    token = TokenIssuer(P1, clock).issue("d-1", "staff", ["doctor"])
    header_s, payload_s, sig_s = token.split(".")
    assert b64d(header_s)["alg"] == "ES256"
    signature = raw(sig_s)
    # what any JOSE library does with the JWK: ECDSA P-256 / SHA-256 over header.payload
    jwk = P1.public_key.to_jwk()
    x, y = (int.from_bytes(raw(jwk[c]), "big") for c in ("x", "y"))
    ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key().verify(
        encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")),
        f"{header_s}.{payload_s}".encode(),
        ec.ECDSA(hashes.SHA256()),
    )
    assert verifier_of(P1, clock=clock).verify(token).roles == ("doctor",)


def test_jti_unique(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    jtis = {verifier.verify(issuer.issue("s", "staff", ["doctor"])).jti for _ in range(20)}
    assert len(jtis) == 20


def test_ttl_limits(issuer: TokenIssuer) -> None:
    issuer.issue("s", "staff", ttl_seconds=MAX_TTL)
    for bad in (0, -1, MAX_TTL + 1):
        with pytest.raises(ValueError):
            issuer.issue("s", "staff", ttl_seconds=bad)
    with pytest.raises(ValueError):
        issuer.issue("s", "staff", exp=1)  # reserved claim


def test_expiry(issuer: TokenIssuer, verifier: TokenVerifier, clock: Clock) -> None:
    token = issuer.issue("p", "patient", ttl_seconds=60)
    clock.t = NOW + 59
    verifier.verify(token)
    clock.t = NOW + 60
    assert code(verifier, token) == (401, "TOKEN_EXPIRED")


def test_iat_in_the_future_is_rejected(verifier: TokenVerifier) -> None:
    token = TokenIssuer(K1, Clock(NOW + 3600)).issue("p", "patient")
    assert code(verifier, token) == (401, "TOKEN_INVALID")


@pytest.mark.parametrize("token", [None, ""])
def test_missing(verifier: TokenVerifier, token: str | None) -> None:
    assert code(verifier, token) == (401, "TOKEN_MISSING")


@pytest.mark.parametrize(
    "token",
    ["abc", "a.b", "a.b.c.d", "!!.??.**", "a b.c.d", "eyJ.eyJ.sig", "x" * 9000, "全角.token.值"],
)
def test_malformed(verifier: TokenVerifier, token: str) -> None:
    assert code(verifier, token) == (401, "TOKEN_MALFORMED")


def test_hmac_and_none_tokens_are_refused(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    """Alg confusion: whatever a forger puts in the signature, only the key's own alg is accepted."""
    kid = K1.public_key.kid
    _, payload_s, _ = issuer.issue("p", "patient").split(".")
    for alg in ("none", "HS256", "HS-SM3"):
        header_s = b64e({"alg": alg, "typ": "JWT", "kid": kid})
        signing_input = f"{header_s}.{payload_s}".encode()
        # an HMAC "signed" with the public key's bytes (the classic RS/HS confusion), or nothing at all
        for signature in (hmac_sm3(json.dumps(K1.public_key.to_jwk()).encode(), signing_input), b"\0" * 64):
            assert code(verifier, f"{header_s}.{payload_s}.{b64(signature)}") == (401, "TOKEN_MALFORMED")
    # the old token format (typ BJT) and "crit" extensions are refused too
    for header in ({"alg": "SM2-SM3", "typ": "BJT", "kid": kid}, {"alg": "SM2-SM3", "kid": kid, "crit": ["x"]}):
        assert code(verifier, f"{b64e(header)}.{payload_s}.{b64(b'0' * 64)}") == (401, "TOKEN_MALFORMED")


def test_es256_token_under_an_sm2_kid_is_invalid(clock: Clock) -> None:
    token = TokenIssuer(P1, clock).issue("p", "patient")
    _, payload_s, sig_s = token.split(".")
    relabelled = b64e({"alg": "ES256", "typ": "JWT", "kid": K1.public_key.kid})
    assert code(verifier_of(K1, P1, clock=clock), f"{relabelled}.{payload_s}.{sig_s}") == (401, "TOKEN_INVALID")
    as_sm2 = b64e({"alg": "SM2-SM3", "typ": "JWT", "kid": P1.public_key.kid})
    assert code(verifier_of(K1, P1, clock=clock), f"{as_sm2}.{payload_s}.{sig_s}") == (401, "TOKEN_INVALID")


def test_tampered_payload_is_invalid(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    header_s, payload_s, sig_s = issuer.issue("p-1", "patient", ["patient"]).split(".")
    payload = b64d(payload_s)
    for change in ({"sub": "p-2"}, {"roles": ["admin"]}, {"kind": "staff"}, {"exp": payload["exp"] + 3600}):
        forged = b64e({**payload, **change})
        assert code(verifier, f"{header_s}.{forged}.{sig_s}") == (401, "TOKEN_INVALID")


def test_tampered_signature_is_invalid(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("p", "patient")
    header_s, payload_s, sig_s = token.split(".")
    signature = bytearray(raw(sig_s))
    signature[10] ^= 1
    assert code(verifier, f"{header_s}.{payload_s}.{b64(bytes(signature))}") == (401, "TOKEN_INVALID")
    assert code(verifier, f"{header_s}.{payload_s}.AAAA") == (401, "TOKEN_INVALID")  # wrong length
    assert code(verifier, f"{header_s}.{payload_s}.{b64(bytes(64))}") == (401, "TOKEN_INVALID")  # r = s = 0


def test_token_of_another_key_is_invalid(clock: Clock) -> None:
    # signed by K2 but claiming K1's kid: the signature does not verify under K1
    token = TokenIssuer(K2, clock).issue("p", "patient")
    _, payload_s, sig_s = token.split(".")
    header_s = b64e({"alg": "SM2-SM3", "typ": "JWT", "kid": K1.public_key.kid})
    assert code(verifier_of(K1, clock=clock), f"{header_s}.{payload_s}.{sig_s}") == (401, "TOKEN_INVALID")
    # and under its own kid, unknown to this verifier
    assert code(verifier_of(K1, clock=clock), token) == (401, "TOKEN_INVALID")


def test_kid_rotation(clock: Clock) -> None:
    token_k1 = TokenIssuer(K1, clock).issue("s", "staff", ["doctor"])
    # step 1: publish K2 beside K1; verifiers now accept both
    both = verifier_of(K1, K2, clock=clock)
    # step 2: the issuer switches to K2; K1's tokens still verify until they expire
    token_k2 = TokenIssuer(K2, clock).issue("s", "staff", ["doctor"])
    assert b64d(token_k2.split(".")[0])["kid"] == K2.public_key.kid != K1.public_key.kid
    assert both.verify(token_k1).sub == both.verify(token_k2).sub == "s"
    # a verifier not yet given K2 refuses its tokens: that is why K2 is published first
    assert code(verifier_of(K1, clock=clock), token_k2) == (401, "TOKEN_INVALID")
    # step 3: after the longest TTL K1 leaves the JWKS; its tokens are refused
    new = verifier_of(K2, clock=clock)
    assert code(new, token_k1) == (401, "TOKEN_INVALID")
    new.verify(token_k2)


def test_issuer_holds_no_printable_key_material() -> None:
    assert K1.to_pem().split("\n")[1] not in repr(TokenIssuer(K1))
    assert "PRIVATE" not in repr(K1)


def test_roles(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    claims = verifier.verify(issuer.issue("d-1", "staff", ["doctor", "mdt_member"]))
    assert claims.require("doctor") is claims
    assert require_roles(claims, "admin", "mdt_member") is claims  # any-of
    with pytest.raises(AppError) as err:
        require_roles(claims, "pharmacist", "admin")
    assert (err.value.status, err.value.code) == (403, "ROLE_REQUIRED")
    assert err.value.details == {"required_any": ["pharmacist", "admin"]}
    assert "pharmacist" in err.value.message and "admin" in err.value.message
    with pytest.raises(AppError):
        claims.require("nurse")


def test_kind(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    patient = verifier.verify(issuer.issue("p-1", "patient", ["patient"]))
    assert require_kind(patient, "patient") is patient
    assert patient.require_kind("patient", "staff") is patient
    with pytest.raises(AppError) as err:
        require_kind(patient, "staff")
    assert (err.value.status, err.value.code) == (403, "KIND_REQUIRED")


def test_bearer_token_extraction(issuer: TokenIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("p", "patient")
    assert bearer_token({"Authorization": f"Bearer {token}"}) == token
    assert bearer_token({"authorization": f"bearer  {token} "}) == token
    assert bearer_token({"AUTHORIZATION": f"Bearer {token}"}) == token
    assert bearer_token({"Authorization": 'SM2-SM3 app_id="x"'}) is None
    assert bearer_token({"Authorization": "Bearer "}) is None
    assert bearer_token({}) is None
    assert bearer_token(None) is None
    assert verifier.verify_headers({"authorization": f"Bearer {token}"}).sub == "p"
    with pytest.raises(AppError) as err:
        verifier.verify_headers({})
    assert err.value.code == "TOKEN_MISSING"


def test_a_function_without_a_jwks_refuses_every_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from bianjie.kit import deps

    issuer = TokenIssuer(K1)  # the real clock, as deps' verifier has

    monkeypatch.setenv("BIANJIE_TOKEN_JWKS", "")
    deps.reset()
    try:
        assert code(deps.token_verifier(), issuer.issue("p", "patient")) == (401, "TOKEN_INVALID")
        monkeypatch.setenv("BIANJIE_TOKEN_JWKS", PublicKeySet([K1.public_key]).to_json())
        deps.reset()
        assert deps.token_verifier().verify(issuer.issue("p", "patient")).sub == "p"
    finally:
        deps.reset()
