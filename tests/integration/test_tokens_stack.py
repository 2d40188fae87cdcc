"""Tokens on the real local stack: minted by TokenIssueFunction (through the CLI), accepted by guide, pay
and rx routes, refused when forged; the JWKS served publicly is the one every function verifies with."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from bianjie.kit.crypto import hmac_sm3
from bianjie.kit.tokenkeys import LocalTokenSigner
from bianjie.kit.tokens import TokenIssuer
from bianjie_dev.runtime.child import StackProcess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("tokens-stack"), seed=["rx"])
    yield s
    s.stop()


def get(stack: StackProcess, path: str, token: str | None = None) -> tuple[int, Any, Any]:
    """Status, JSON body and headers (case-insensitive, as HTTP's are)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(f"{stack.url}{path}", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read()), r.headers
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


def cli_token(stack: StackProcess, *args: str) -> str:
    result = stack.cli(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_jwks_is_served_and_is_what_the_stack_was_given(stack: StackProcess) -> None:
    status, body, headers = get(stack, "/.well-known/jwks.json")
    assert status == 200 and headers["Cache-Control"] == "public, max-age=300"
    assert body == json.loads(stack.deployment["parameters"]["TokenJwks"])
    # the platform's SM2 token key and the identity provider's ES256 key for standard relying parties
    assert sorted(k["alg"] for k in body["keys"]) == ["ES256", "SM2-SM3"]


def test_issuer_tokens_work_on_guide_pay_and_rx(stack: StackProcess) -> None:
    kid = get(stack, "/.well-known/jwks.json")[1]["keys"][0]["kid"]
    patient = cli_token(stack, "guide", "token", "p-tok-1")
    header = json.loads(base64.urlsafe_b64decode(patient.split(".")[0] + "=="))
    assert header == {"alg": "SM2-SM3", "kid": kid, "typ": "JWT"}
    assert get(stack, "/guide/dashboard", patient)[0] == 200
    assert get(stack, "/pay/agreements", cli_token(stack, "pay", "token", "p-tok-1"))[0] == 200
    status, body, _ = get(stack, "/rx/me/prescriptions", cli_token(stack, "rx", "token", "patient"))
    assert status == 200, body


def test_forged_tokens_are_refused(stack: StackProcess) -> None:
    kid = get(stack, "/.well-known/jwks.json")[1]["keys"][0]["kid"]
    # a key of our own under the published kid, and under its own kid
    stranger = TokenIssuer(LocalTokenSigner.generate()).issue("p-tok-1", "patient")
    _, payload_s, sig_s = stranger.split(".")
    relabelled = b64(json.dumps({"alg": "SM2-SM3", "typ": "JWT", "kid": kid}).encode())
    for token in (stranger, f"{relabelled}.{payload_s}.{sig_s}"):
        status, body, _ = get(stack, "/guide/dashboard", token)
        assert (status, body["error"]["code"]) == (401, "TOKEN_INVALID")
    # the old HMAC format, keyed with anything: refused before any key is looked at
    hs = b64(json.dumps({"alg": "HS-SM3", "typ": "BJT", "kid": "k1"}).encode())
    forged = f"{hs}.{payload_s}.{b64(hmac_sm3(b'k' * 32, f'{hs}.{payload_s}'.encode()))}"
    status, body, _ = get(stack, "/guide/dashboard", forged)
    assert (status, body["error"]["code"]) == (401, "TOKEN_MALFORMED")


def test_direct_invoke_names_a_function(stack: StackProcess) -> None:
    request = urllib.request.Request(f"{stack.url}/_local/invoke?name=NoSuchFunction", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=10)
    assert err.value.code == 404
    assert json.loads(err.value.read())["error"]["code"] == "FUNCTION_NOT_FOUND"


def test_only_the_issuers_role_may_sign_with_the_token_signing_key(stack: StackProcess) -> None:
    """IAM is enforced on the local stack: another function's credentials are refused kms:Sign."""
    from botocore.exceptions import ClientError

    iam, sts = stack.client("iam"), stack.client("sts")

    def kms_as(function_id: str) -> Any:
        # the issuer's role has the fixed name the token keys' policies name; the others, SAM's
        name = "bianjie-token-issuer" if function_id == "TokenIssueFunction" else f"bianjie-{function_id}Role"
        arn = iam.get_role(RoleName=name)["Role"]["Arn"]
        creds = sts.assume_role(RoleArn=arn, RoleSessionName=function_id)["Credentials"]
        return stack.client(
            "kms",
            {
                "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
                "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
                "AWS_SESSION_TOKEN": creds["SessionToken"],
            },
        )

    key = stack.ref("TokenSigningKey")
    sign = {"KeyId": key, "Message": b"header.payload", "MessageType": "RAW", "SigningAlgorithm": "SM2DSA"}
    assert kms_as("TokenIssueFunction").sign(**sign)["Signature"]
    for other in ("GuideDashboardFunction", "PartnersMeFunction"):
        with pytest.raises(ClientError) as refused:
            kms_as(other).sign(**sign)
        assert refused.value.response["Error"]["Code"] == "AccessDeniedException", other
    # the operator is allowed everything by IAM; the key policy's Deny still refuses it the signature
    with pytest.raises(ClientError) as operator:
        stack.client("kms").sign(**sign)
    assert operator.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "explicit deny in a resource-based policy" in operator.value.response["Error"]["Message"]
