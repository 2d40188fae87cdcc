"""One issuer: TokenIssueFunction mints tokens; no other function's environment or role can.

The per-function check builds each function's OWN environment from template.yaml (Globals plus its own
variables, as Lambda gives it) and shows the kit cannot build a token issuer from it; the role check
expands every function's template policies and shows only the issuer's grants kms:Sign on the token key.
(When per-function IAM enforcement runs on the local stack, a live kms:Sign refusal joins these.)
"""

from __future__ import annotations

import fnmatch
import json
import os
from typing import Any

import pytest
from bianjie.runtime.deployment import Deployment
from bianjie.runtime.template import load_template
from chalice.test import Client

from tests.conftest import ROOT
from tests.functional.conftest import _reset_kit, app_of, token_issuer

ISSUER = "TokenIssueFunction"
TOKEN_KEY = "TokenSigningKey"
TEMPLATE = load_template(ROOT / "template.yaml")

# KMS actions of the SAM policy templates the template uses (from SAM's policy_templates.json); a policy
# template not listed here fails the role test until someone says what it grants.
SAM_POLICY_TEMPLATE_KMS_ACTIONS: dict[str, set[str]] = {
    "DynamoDBCrudPolicy": set(),
    "DynamoDBReadPolicy": set(),
    "SQSSendMessagePolicy": set(),
    "SNSPublishMessagePolicy": set(),
    "S3ReadPolicy": set(),
    "S3WritePolicy": set(),
    "S3CrudPolicy": set(),
    "KMSDecryptPolicy": {"kms:Decrypt"},
    "KMSEncryptPolicy": {"kms:Encrypt"},
}


def _issuer_handler() -> Any:
    from bianjie.runtime.invoke import load_module

    return load_module(ROOT / "functions" / "identity" / "app.py").issue_token


def _own_environment(deployment: Deployment, logical_id: str) -> dict[str, str]:
    spec = next(f for f in TEMPLATE.functions if f.logical_id == logical_id)
    resolver = deployment.resolver()
    values = {name: resolver.resolve(raw) for name, raw in spec.environment.items()}
    return {name: str(value) for name, value in values.items() if value is not None}


def _use_only(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> None:
    for name in list(os.environ):
        if name.startswith("BIANJIE_") or name.endswith("_TABLE") or name.endswith("_BUCKET"):
            monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    _reset_kit()


def test_the_issuer_mints_tokens_the_verifiers_accept(aws_stack: Deployment) -> None:
    from bianjie.kit import deps

    answer = _issuer_handler()(
        {"subject": "d-1", "kind": "staff", "roles": ["doctor"], "hospital": "h1", "requested_by": "system:test"},
        None,
    )
    assert set(answer) == {"token", "kid", "expires_in"} and answer["expires_in"] == 900
    claims = deps.token_verifier().verify(answer["token"])
    assert (claims.sub, claims.kind, claims.roles, claims.hospital) == ("d-1", "staff", ("doctor",), "h1")
    # the kid is the token key's (SM2), as published in the JWKS every function is given; beside it the
    # ES256 key the identity provider signs standard relying parties' ID tokens with
    jwks = json.loads(os.environ["BIANJIE_TOKEN_JWKS"])
    by_kid = {k["kid"]: k["alg"] for k in jwks["keys"]}
    assert by_kid[answer["kid"]] == "SM2-SM3" and sorted(by_kid.values()) == ["ES256", "SM2-SM3"]
    # who asked is in the audit log, the token is not
    reports = deps.audit_log("identity").verify_all("identity")
    assert sum(r.records for r in reports) == 1 and all(r.ok for r in reports)


@pytest.mark.parametrize(
    "change",
    [
        {"kind": "admin"},
        {"ttl_seconds": 12 * 3600 + 1},
        {"ttl_seconds": 0},
        {"roles": ["Doctor"]},
        {"subject": ""},
        {"requested_by": "anyone"},
        {"requested_by": None},
        {"extra": {"exp": "1"}},
        {"sub": "x"},  # unknown field
    ],
)
def test_the_issuer_refuses_bad_requests(aws_stack: Deployment, change: dict[str, Any]) -> None:
    event = {"subject": "p-1", "kind": "patient", "requested_by": "system:test", **change}
    event = {k: v for k, v in event.items() if v is not None}
    answer = _issuer_handler()(event, None)
    assert answer["error"]["code"] == "VALIDATION_FAILED" and "token" not in answer


def test_no_function_but_the_issuer_can_mint(aws_stack: Deployment, monkeypatch: pytest.MonkeyPatch) -> None:
    from bianjie.kit import deps

    signing_key = {aws_stack.ref(TOKEN_KEY), aws_stack.resources[TOKEN_KEY]["attrs"]["Arn"]}
    others = [f.logical_id for f in TEMPLATE.functions if f.logical_id != ISSUER]
    assert len(others) > 20
    for logical_id in others:
        environment = _own_environment(aws_stack, logical_id)
        assert not signing_key & set(environment.values()), logical_id
        assert not [n for n in environment if "TOKEN_SECRET" in n or "SIGNING" in n], logical_id
        _use_only(monkeypatch, environment)
        with pytest.raises(RuntimeError, match="BIANJIE_TOKEN_SIGNING_KEY"):
            deps.token_issuer()
        deps.token_verifier()  # every function can still verify
    _use_only(monkeypatch, _own_environment(aws_stack, ISSUER))
    assert deps.token_issuer().kid == deps.token_verifier().keys.to_jwks()["keys"][0]["kid"]


def _grants(statement: dict[str, Any], action: str) -> bool:
    if statement.get("Effect") != "Allow":
        return False
    actions = statement.get("Action")
    actions = [actions] if isinstance(actions, str) else list(actions or [])
    return any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions)


def _may_name_token_key(resource: Any) -> bool:
    resources = resource if isinstance(resource, list) else [resource]
    for item in resources:
        text = json.dumps(item)
        if item == "*" or TOKEN_KEY in text or ("kms" in text and "*" in text):
            return True
    return False


def kms_sign_grants(logical_id: str) -> list[Any]:
    """The policies of a function that allow kms:Sign on anything that could be the token key."""
    resource = TEMPLATE.resources[logical_id]
    props = resource.get("Properties") or {}
    policies = props.get("Policies") or []
    policies = [policies] if isinstance(policies, str | dict) else policies
    found: list[Any] = []
    role = props.get("Role")
    if isinstance(role, dict) and "Fn::GetAtt" in role:  # a role the template writes out (the issuer's)
        role_props = TEMPLATE.resources[role["Fn::GetAtt"][0]]["Properties"]
        policies = [p["PolicyDocument"] for p in role_props.get("Policies") or []]
        for managed in role_props.get("ManagedPolicyArns") or []:
            text = json.dumps(managed)
            if not any(name in text for name in LAMBDA_EXECUTION_POLICIES):
                found.append(managed)  # any other managed policy could reach the key
    for policy in policies:
        if isinstance(policy, str):  # a managed policy: none is allowed near the token key
            found.append(policy)
            continue
        if "Statement" in policy:
            statements = policy["Statement"]
            for st in [statements] if isinstance(statements, dict) else statements:
                if _grants(st, "kms:Sign") and _may_name_token_key(st.get("Resource")):
                    found.append(st)
            continue
        (name,) = policy
        assert name in SAM_POLICY_TEMPLATE_KMS_ACTIONS, f"{logical_id}: classify SAM policy template {name}"
        if any(fnmatch.fnmatchcase("kms:Sign", a) for a in SAM_POLICY_TEMPLATE_KMS_ACTIONS[name]):
            found.append(policy)
    return found


LAMBDA_EXECUTION_POLICIES = ("AWSLambdaBasicExecutionRole", "AWSLambdaSQSQueueExecutionRole")


def test_the_token_keys_policies_deny_signing_to_every_principal_but_the_issuers_role() -> None:
    """IAM grants are not the only way to kms:Sign: an account administrator could grant it to anyone.
    Each token key's own policy denies it to every principal but the role the issuer runs as."""
    issuer = next(f for f in TEMPLATE.functions if f.logical_id == ISSUER)
    role_id = TEMPLATE.resources[ISSUER]["Properties"]["Role"]["Fn::GetAtt"][0]
    role_name = TEMPLATE.resources[role_id]["Properties"]["RoleName"]
    assert issuer.logical_id == ISSUER and role_name == {"Fn::Sub": "${AWS::StackName}-token-issuer"}
    for key_id in (TOKEN_KEY, "TokenRpSigningKey"):
        statements = TEMPLATE.resources[key_id]["Properties"]["KeyPolicy"]["Statement"]
        (deny,) = [st for st in statements if st["Effect"] == "Deny"]
        assert deny["Principal"] == {"AWS": "*"} and deny["Action"] == "kms:Sign", key_id
        assert deny["Condition"] == {
            "ArnNotEquals": {
                "aws:PrincipalArn": {
                    "Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${AWS::StackName}-token-issuer"
                }
            }
        }, key_id


def test_only_the_issuer_role_may_sign_with_the_token_key() -> None:
    granted = {f.logical_id for f in TEMPLATE.functions if kms_sign_grants(f.logical_id)}
    assert granted == {ISSUER}
    key = TEMPLATE.resources[TOKEN_KEY]["Properties"]
    assert (key["KeySpec"], key["KeyUsage"]) == ("SM2", "SIGN_VERIFY")
    # the issuer serves one route, the token endpoint (codes, refresh, exchanges, launch tickets), the
    # queue of back-channel logouts the logout route fills, and operators' direct invoke
    issuer = next(f for f in TEMPLATE.functions if f.logical_id == ISSUER)
    assert [(e.method, e.path) for e in issuer.api_events()] == [("POST", "/identity/oidc/token")]
    queues = [e.queue for e in issuer.events if not hasattr(e, "path")]
    assert queues == [{"Fn::GetAtt": ["IdentityLogoutQueue", "Arn"]}]


def test_the_role_check_sees_a_grant() -> None:
    """The check above would notice a second function given kms:Sign (or kms:*) on the key."""
    resources = TEMPLATE.resources
    fn = "HealthFunction"
    saved = resources[fn]["Properties"].get("Policies")
    try:
        for action in ("kms:Sign", "kms:*", "*"):
            statement = {"Effect": "Allow", "Action": action, "Resource": {"Fn::GetAtt": [TOKEN_KEY, "Arn"]}}
            resources[fn]["Properties"]["Policies"] = [{"Statement": [statement]}]
            assert kms_sign_grants(fn), action
    finally:
        if saved is None:
            resources[fn]["Properties"].pop("Policies", None)
        else:
            resources[fn]["Properties"]["Policies"] = saved


def test_jwks_endpoint_serves_the_verifiers_keys(aws_stack: Deployment) -> None:
    with Client(app_of("platform")) as client:
        response = client.http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "public, max-age=300"
    body = json.loads(response.body)
    assert body == json.loads(os.environ["BIANJIE_TOKEN_JWKS"])
    assert all(set(k) == {"kty", "crv", "x", "y", "alg", "use", "kid"} for k in body["keys"])
    # a token the issuer mints names one of these keys
    token = token_issuer().issue("p-1", "patient")
    kid = json.loads(__import__("base64").urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]
    assert kid in {k["kid"] for k in body["keys"]}


def test_every_function_serves_at_most_one_route() -> None:
    """docs/developing.md "Templates": one route per function, the issuer included (it signs for one)."""
    several = {f.logical_id: len(f.api_events()) for f in TEMPLATE.functions if len(f.api_events()) > 1}
    assert several == {}
