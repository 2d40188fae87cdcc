"""Patient/staff tokens: format, expiry, tamper, kid rotation, roles."""

from __future__ import annotations

import base64
import json

import pytest
from bianjie.kit.crypto import hmac_sm3
from bianjie.kit.errors import AppError
from bianjie.kit.tokens import (
    MAX_TTL,
    Claims,
    TokenIssuer,
    bearer_token,
    require_kind,
    require_roles,
)

from tests.fakes import Clock

NOW = 1_767_225_600
S1 = b"k1-secret-0123456789abcdef012345"
S2 = b"k2-secret-0123456789abcdef012345"


def b64d(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def b64e(obj: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj, separators=(",", ":")).encode()).rstrip(b"=").decode()


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


@pytest.fixture
def issuer(clock: Clock) -> TokenIssuer:
    return TokenIssuer({"k1": S1}, "k1", clock)


def code(issuer: TokenIssuer, token: str | None) -> tuple[int, str]:
    with pytest.raises(AppError) as err:
        issuer.verify(token)
    return err.value.status, err.value.code


def test_issue_and_verify(issuer: TokenIssuer) -> None:
    token = issuer.issue("p-42", "patient", ["patient"], hospital="h-rj", openid_hash="ab12")
    header_s, payload_s, mac_s = token.split(".")
    assert b64d(header_s) == {"alg": "HS-SM3", "kid": "k1", "typ": "BJT"}
    payload = b64d(payload_s)
    assert payload["iss"] == "bianjie" and payload["exp"] - payload["iat"] == 900
    # the MAC is HMAC-SM3 over the two encoded parts, base64url without padding
    mac = hmac_sm3(S1, f"{header_s}.{payload_s}".encode())
    assert mac_s == base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
    claims = issuer.verify(token)
    assert isinstance(claims, Claims)
    assert (claims.sub, claims.kind, claims.roles, claims.hospital) == ("p-42", "patient", ("patient",), "h-rj")
    assert claims.extra == {"openid_hash": "ab12"}
    assert len(claims.jti) >= 16


def test_jti_unique(issuer: TokenIssuer) -> None:
    jtis = {issuer.verify(issuer.issue("s", "staff", ["doctor"])).jti for _ in range(50)}
    assert len(jtis) == 50


def test_ttl_limits(issuer: TokenIssuer) -> None:
    issuer.issue("s", "staff", ttl_seconds=MAX_TTL)
    for bad in (0, -1, MAX_TTL + 1):
        with pytest.raises(ValueError):
            issuer.issue("s", "staff", ttl_seconds=bad)
    with pytest.raises(ValueError):
        issuer.issue("s", "staff", exp=1)  # reserved claim


def test_expiry(issuer: TokenIssuer, clock: Clock) -> None:
    token = issuer.issue("p", "patient", ttl_seconds=60)
    clock.t = NOW + 59
    issuer.verify(token)
    clock.t = NOW + 60
    assert code(issuer, token) == (401, "TOKEN_EXPIRED")


def test_iat_in_the_future_is_rejected(clock: Clock) -> None:
    future = TokenIssuer({"k1": S1}, "k1", Clock(NOW + 3600))
    token = future.issue("p", "patient")
    assert code(TokenIssuer({"k1": S1}, "k1", clock), token) == (401, "TOKEN_INVALID")


@pytest.mark.parametrize("token", [None, ""])
def test_missing(issuer: TokenIssuer, token: str | None) -> None:
    assert code(issuer, token) == (401, "TOKEN_MISSING")


@pytest.mark.parametrize(
    "token",
    ["abc", "a.b", "a.b.c.d", "!!.??.**", "a b.c.d", "eyJ.eyJ.sig", "x" * 9000, "全角.token.值"],
)
def test_malformed(issuer: TokenIssuer, token: str) -> None:
    assert code(issuer, token) == (401, "TOKEN_MALFORMED")


def test_wrong_alg_or_typ_is_malformed(issuer: TokenIssuer) -> None:
    _, payload_s, mac_s = issuer.issue("p", "patient").split(".")
    for header in ({"alg": "none", "typ": "BJT", "kid": "k1"}, {"alg": "HS-SM3", "typ": "JWT", "kid": "k1"}):
        assert code(issuer, f"{b64e(header)}.{payload_s}.{mac_s}") == (401, "TOKEN_MALFORMED")


def test_tampered_payload_is_invalid(issuer: TokenIssuer) -> None:
    header_s, payload_s, mac_s = issuer.issue("p-1", "patient", ["patient"]).split(".")
    payload = b64d(payload_s)
    for change in ({"sub": "p-2"}, {"roles": ["admin"]}, {"kind": "staff"}, {"exp": payload["exp"] + 3600}):
        forged = b64e({**payload, **change})
        assert code(issuer, f"{header_s}.{forged}.{mac_s}") == (401, "TOKEN_INVALID")


def test_tampered_mac_is_invalid(issuer: TokenIssuer) -> None:
    token = issuer.issue("p", "patient")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    assert code(issuer, flipped) == (401, "TOKEN_INVALID")
    header_s, payload_s, _ = token.split(".")
    assert code(issuer, f"{header_s}.{payload_s}.AAAA") == (401, "TOKEN_INVALID")


def test_token_from_another_secret_is_invalid(clock: Clock) -> None:
    other = TokenIssuer({"k1": S2}, "k1", clock)
    assert code(TokenIssuer({"k1": S1}, "k1", clock), other.issue("p", "patient")) == (401, "TOKEN_INVALID")


def test_kid_rotation(clock: Clock) -> None:
    old = TokenIssuer({"k1": S1}, "k1", clock)
    token_k1 = old.issue("s", "staff", ["doctor"])
    # step 1: add k2 and make it current; k1 tokens still verify
    both = TokenIssuer({"k1": S1, "k2": S2}, "k2", clock)
    token_k2 = both.issue("s", "staff", ["doctor"])
    assert b64d(token_k2.split(".")[0])["kid"] == "k2"
    assert both.verify(token_k1).sub == both.verify(token_k2).sub == "s"
    # an issuer that does not know k2 yet rejects it (deploy verifiers first, then switch issuing)
    assert code(old, token_k2) == (401, "TOKEN_INVALID")
    # step 2: drop k1 after the longest TTL
    new = TokenIssuer({"k2": S2}, "k2", clock)
    assert code(new, token_k1) == (401, "TOKEN_INVALID")
    new.verify(token_k2)


def test_issuer_rejects_bad_secrets() -> None:
    with pytest.raises(ValueError):
        TokenIssuer({"k1": b"short"}, "k1")
    with pytest.raises(ValueError):
        TokenIssuer({"k1": S1}, "k2")
    assert S1.decode() not in repr(TokenIssuer({"k1": S1}, "k1"))


def test_roles(issuer: TokenIssuer) -> None:
    claims = issuer.verify(issuer.issue("d-1", "staff", ["doctor", "mdt_member"]))
    assert claims.require("doctor") is claims
    assert require_roles(claims, "admin", "mdt_member") is claims  # any-of
    with pytest.raises(AppError) as err:
        require_roles(claims, "pharmacist", "admin")
    assert (err.value.status, err.value.code) == (403, "ROLE_REQUIRED")
    assert err.value.details == {"required_any": ["pharmacist", "admin"]}
    assert "pharmacist" in err.value.message and "admin" in err.value.message
    with pytest.raises(AppError):
        claims.require("nurse")


def test_kind(issuer: TokenIssuer) -> None:
    patient = issuer.verify(issuer.issue("p-1", "patient", ["patient"]))
    assert require_kind(patient, "patient") is patient
    assert patient.require_kind("patient", "staff") is patient
    with pytest.raises(AppError) as err:
        require_kind(patient, "staff")
    assert (err.value.status, err.value.code) == (403, "KIND_REQUIRED")


def test_bearer_token_extraction(issuer: TokenIssuer) -> None:
    token = issuer.issue("p", "patient")
    assert bearer_token({"Authorization": f"Bearer {token}"}) == token
    assert bearer_token({"authorization": f"bearer  {token} "}) == token
    assert bearer_token({"AUTHORIZATION": f"Bearer {token}"}) == token
    assert bearer_token({"Authorization": 'SM2-SM3 app_id="x"'}) is None
    assert bearer_token({"Authorization": "Bearer "}) is None
    assert bearer_token({}) is None
    assert bearer_token(None) is None
    assert issuer.verify_headers({"authorization": f"Bearer {token}"}).sub == "p"
    with pytest.raises(AppError) as err:
        issuer.verify_headers({})
    assert err.value.code == "TOKEN_MISSING"
