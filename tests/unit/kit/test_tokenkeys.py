"""Token keys: JWK/JWKS round trips and refusals, kids, and the KMS signer (SM2 and P-256 on moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from bianjie.kit.tokenkeys import (
    ES256,
    SM2_SM3,
    KmsTokenSigner,
    LocalTokenSigner,
    PublicKeySet,
    TokenPublicKey,
    public_key_of_kms_key,
)
from bianjie.kit.tokens import TokenIssuer, TokenVerifier
from bianjie_dev.runtime.motokms import teach_kms_sm2
from moto import mock_aws

SM2 = LocalTokenSigner.generate(SM2_SM3)
P256 = LocalTokenSigner.generate(ES256)


@pytest.fixture
def kms(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("BIANJIE_AWS_ENDPOINT_URL", raising=False)
    teach_kms_sm2()
    with mock_aws():
        yield boto3.client("kms", region_name="cn-north-1")


@pytest.mark.parametrize("signer", [SM2, P256], ids=["sm2", "es256"])
def test_jwks_round_trip(signer: LocalTokenSigner) -> None:
    jwk = signer.public_key.to_jwk()
    assert jwk["kty"] == "EC" and jwk["use"] == "sig" and jwk["crv"] == {"SM2-SM3": "SM2", "ES256": "P-256"}[jwk["alg"]]
    keys = PublicKeySet.from_jwks(PublicKeySet([signer.public_key]).to_json())
    assert keys.get(jwk["kid"]) == signer.public_key
    assert len(jwk["kid"]) == 22 and SM2.public_key.kid != P256.public_key.kid


def test_pem_round_trip_keeps_the_key() -> None:
    for signer in (SM2, P256):
        again = LocalTokenSigner.from_pem(signer.to_pem())
        assert again.public_key == signer.public_key
        assert signer.public_key.verify(b"m", again.sign(b"m"))


def test_merged_sets_know_every_kid() -> None:
    merged = PublicKeySet([SM2.public_key]).merged(PublicKeySet([P256.public_key]))
    assert {k.kid for k in merged} == {SM2.public_key.kid, P256.public_key.kid}


@pytest.mark.parametrize(
    "change",
    [
        {"kty": "RSA"},
        {"alg": "HS256"},
        {"alg": "none"},
        {"crv": "P-256"},  # an SM2 key labelled with the other curve
        {"use": "enc"},
        {"x": "AAAA"},
        {"kid": "someone-elses-kid"},
        {"y": None},
    ],
)
def test_bad_jwk_is_refused(change: dict[str, Any]) -> None:
    jwk = {**SM2.public_key.to_jwk(), **change}
    jwk = {k: v for k, v in jwk.items() if v is not None}
    with pytest.raises(ValueError):
        TokenPublicKey.from_jwk(jwk)


def test_a_point_off_the_curve_is_refused() -> None:
    key = SM2.public_key
    with pytest.raises(ValueError):
        TokenPublicKey(SM2_SM3, key.x, key.y + 1)
    with pytest.raises(ValueError):
        TokenPublicKey(ES256, key.x, key.y)  # an SM2 point is not on P-256


@pytest.mark.parametrize("document", ["", "[]", "{}", '{"keys": {}}', "not json"])
def test_bad_jwks_is_refused(document: str) -> None:
    with pytest.raises(ValueError):
        PublicKeySet.from_jwks(document)


def test_verify_never_raises_on_junk() -> None:
    for signer in (SM2, P256):
        for junk in (b"", b"\0" * 64, b"\xff" * 64, b"x" * 63):
            assert signer.public_key.verify(b"m", junk) is False


@pytest.mark.parametrize(("spec", "alg"), [("SM2", SM2_SM3), ("ECC_NIST_P256", ES256)])
def test_kms_signer(kms: Any, spec: str, alg: str) -> None:
    key_id = kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    signer = KmsTokenSigner(kms, key_id)
    assert signer.public_key.alg == alg
    token = TokenIssuer(signer).issue("d-1", "staff", ["doctor"], hospital="h1")
    claims = TokenVerifier(PublicKeySet([public_key_of_kms_key(kms, key_id)])).verify(token)
    assert (claims.sub, claims.hospital) == ("d-1", "h1")


def test_kms_sm2_signature_is_standard_sm2_with_the_default_user_id(kms: Any) -> None:
    """What AWS KMS answers for SM2DSA over a RAW message, and what our verifier checks."""
    from bianjie.kit.crypto import Sm2PublicKey, sm2_verify
    from bianjie.kit.crypto.asn1 import decode_public_key

    key_id = kms.create_key(KeySpec="SM2", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
    public = Sm2PublicKey(*decode_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"]))
    out = kms.sign(KeyId=key_id, Message=b"hello", MessageType="RAW", SigningAlgorithm="SM2DSA")
    assert sm2_verify(public, b"hello", out["Signature"])
    assert kms.verify(
        KeyId=key_id, Message=b"hello", Signature=out["Signature"], MessageType="RAW", SigningAlgorithm="SM2DSA"
    )["SignatureValid"]


def test_kms_signer_refuses_a_key_that_cannot_sign_tokens(kms: Any) -> None:
    for spec, usage in (("SYMMETRIC_DEFAULT", "ENCRYPT_DECRYPT"), ("RSA_2048", "SIGN_VERIFY")):
        key_id = kms.create_key(KeySpec=spec, KeyUsage=usage)["KeyMetadata"]["KeyId"]
        with pytest.raises(Exception, match=r"not an SM2 or ECC_NIST_P256 signing key|UnsupportedOperation"):
            KmsTokenSigner(kms, key_id)


def test_repr_names_the_key_not_its_material() -> None:
    assert json.dumps(SM2.public_key.to_jwk()["kid"]).strip('"') in repr(SM2)
    assert "BEGIN" not in repr(SM2) and "BEGIN" not in repr(P256)


def test_onprem_issuer_from_a_key_wrapped_by_the_master_key(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bianjie keys token-key` makes what the on-premises issuer is given; verifiers get only the JWKS."""
    from bianjie.kit import deps
    from bianjie.kit.config import reset_settings
    from bianjie.kit.keys import LocalKeyPort
    from bianjie_dev.cli.main import main

    master = tmp_path / "master.key"
    master.write_text(LocalKeyPort.new_master_key().hex())
    jwks_file = tmp_path / "token.jwks.json"
    assert main(["keys", "token-key", "--master-key-file", str(master), "--jwk-out", str(jwks_file)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert "PRIVATE" not in json.dumps(printed) and "PRIVATE" not in jwks_file.read_text()
    monkeypatch.setenv("BIANJIE_KEYS", "local")
    monkeypatch.setenv("BIANJIE_MASTER_KEY_FILE", str(master))
    monkeypatch.setenv("BIANJIE_TOKEN_SIGNING_KEY_WRAPPED", printed["BIANJIE_TOKEN_SIGNING_KEY_WRAPPED"])
    monkeypatch.setenv("BIANJIE_TOKEN_JWKS", jwks_file.read_text())
    reset_settings()
    deps.reset()
    try:
        issuer = deps.token_issuer()
        assert issuer.kid == printed["kid"]
        assert deps.token_verifier().verify(issuer.issue("s-1", "staff", ["nurse"])).roles == ("nurse",)
        # without the wrapped key (every other function), nothing can mint
        monkeypatch.delenv("BIANJIE_TOKEN_SIGNING_KEY_WRAPPED")
        deps.reset()
        with pytest.raises(RuntimeError, match="BIANJIE_TOKEN_SIGNING_KEY_WRAPPED"):
            deps.token_issuer()
    finally:
        reset_settings()
        deps.reset()
