"""The provider through chalice.test.Client + moto: a resident logs in through the 随申办 stand-in,
consents, the client redeems the code with PKCE, verifies the ES256 ID token with Authlib's JOSE, rotates
refresh tokens, launches into a hospital; staff log in through the directory stand-in."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from chalice.test import Client

from tests.functional.conftest import app_of

REDIRECT = "https://hospital-a.example/cb"
HOST = {"Host": "idp.test", "X-Forwarded-Proto": "https"}


@pytest.fixture
def idp(aws_stack: Any) -> Iterator[Harness]:
    from bianjie.identity import wiring
    from bianjie.identity.clients import Client as RP
    from bianjie.identity.launch import Entry, MiniProgram

    secret, digest = wiring.clients().new_secret()
    wiring.clients().register(
        RP(
            client_id="hospital-a",
            name="示范医院互联网医院",
            hospital="demo-hospital",
            redirect_uris=(REDIRECT,),
            post_logout_redirect_uris=("https://hospital-a.example/bye",),
            secret_digest=digest,
            backchannel_logout_uri="https://hospital-a.example/identity/standin/bc",
            may_exchange=True,
        )
    )
    wiring.clients().register(
        RP(client_id="hospital-b", name="第二医院", hospital="hospital-b", redirect_uris=("https://b.example/cb",))
    )
    wiring.clients().register(
        RP(client_id="staff-a", name="示范医院工作台", hospital="demo-hospital", redirect_uris=(REDIRECT,), staff=True)
    )
    from bianjie.kit.actor import Actor

    wiring.entries().put(
        Actor.system("test"),
        Entry(
            hospital="demo-hospital",
            name="示范医院",
            client_id="hospital-a",
            h5_url="https://hospital-a.example/h5",
            wechat=MiniProgram(app_id="wx123", path="pages/index"),
        ),
    )
    wiring.entries().put(
        Actor.system("test"),
        Entry(hospital="hospital-b", name="第二医院", wechat=MiniProgram(app_id="wxb", path="pages/home")),
    )
    with Client(app_of("identity")) as client:
        yield Harness(client, secret, aws_stack)


class Harness:
    def __init__(self, client: Client, secret: str, aws: Any = None) -> None:
        self.client, self.secret, self.aws = client, secret, aws
        self.cookies: dict[str, str] = {}

    def get(self, url: str) -> Any:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        headers = {**HOST, **self._cookie_header()}
        response = self.client.http.get(path, headers=headers)
        self._keep(response)
        return response

    def _cookie_header(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())} if self.cookies else {}

    def _keep(self, response: Any) -> None:
        cookie = response.headers.get("Set-Cookie", "")
        if cookie:
            name, _, value = cookie.split(";", 1)[0].partition("=")
            if value:
                self.cookies[name] = value
            else:
                self.cookies.pop(name, None)

    def post_form(self, path: str, form: dict[str, str], auth: tuple[str, str] | None = None) -> Any:
        headers = {**HOST, "Content-Type": "application/x-www-form-urlencoded"}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        headers.update(self._cookie_header())
        response = self.client.http.post(path, headers=headers, body=urlencode(form))
        self._keep(response)
        return response

    def login(
        self,
        client_id: str = "hospital-a",
        upstream: str = "suishenban",
        who: str = "zhangsan",
        verifier: str | None = None,
        scope: str = "openid profile",
    ) -> tuple[str, str]:
        verifier = verifier or secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        query = urlencode(
            {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT,
                "scope": scope,
                "state": "st-1",
                "nonce": "n-1",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
        r = self.get(f"/identity/oidc/authorize?{query}")
        for _ in range(12):
            assert r.status_code in (200, 302), r.body
            if r.status_code == 200:
                body = r.body.decode()
                if "授权确认" in body:
                    req = body.split('name="req" value="', 1)[1].split('"', 1)[0]
                    r = self.post_form("/identity/consent", {"req": req, "decision": "approve"})
                    continue
                if "STAND-IN" in body:
                    href = next(h for h in body.split('href="')[1:] if f"who={who}" in h).split('"', 1)[0]
                    r = self.get(href.replace("&amp;", "&"))
                    continue
                wanted = "suishenban" if "请先完成实名认证" in body else upstream  # link the channel account once
                href = next(h for h in body.split('href="')[1:] if f"/identity/login/{wanted}" in h).split('"', 1)[0]
                r = self.get(href.replace("&amp;", "&"))
                continue
            location = r.headers["Location"]
            if location.startswith(REDIRECT):
                params = parse_qs(urlsplit(location).query)
                assert params["state"] == ["st-1"]
                return params["code"][0], verifier
            r = self.get(location)
        raise AssertionError("the login did not reach the client")

    def redeem(self, code: str, verifier: str, redirect_uri: str = REDIRECT) -> Any:
        return self.post_form(
            "/identity/oidc/token",
            {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": redirect_uri},
            auth=("hospital-a", self.secret),
        )


def _claims(token: str) -> dict[str, Any]:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def test_code_flow_with_pkce_consent_and_es256_id_token(idp: Harness) -> None:
    from authlib.jose import JsonWebKey, JsonWebToken

    code, verifier = idp.login()
    r = idp.redeem(code, verifier)
    assert r.status_code == 200, r.body
    answer = r.json_body
    assert r.headers["Cache-Control"] == "no-store"
    jwks = idp.get("/identity/oidc/jwks").json_body
    standard = {"keys": [k for k in jwks["keys"] if k.get("crv") == "P-256"]}
    claims = JsonWebToken(["ES256"]).decode(answer["id_token"], JsonWebKey.import_key_set(standard))
    claims.validate()
    assert (
        claims["aud"] == "hospital-a" and claims["nonce"] == "n-1" and claims["iss"] == "https://idp.test/identity/oidc"
    )
    assert claims["acr"] == "urn:bianjie:acr:rn3"
    access = _claims(answer["access_token"])
    assert access["sub"] == claims["sub"] and access["kind"] == "patient" and access["extra"]["id_ref"]
    # the same person at another hospital has another sub
    info = idp.client.http.get("/identity/oidc/userinfo", headers={"Authorization": f"Bearer {answer['access_token']}"})
    assert info.status_code == 200 and info.json_body["name"] == "张三" and "id_number" not in info.json_body


def test_code_refused_for_wrong_verifier_reuse_and_redirect_one_char_off(idp: Harness) -> None:
    code, verifier = idp.login()
    wrong = idp.redeem(code, secrets.token_urlsafe(48))
    assert wrong.status_code == 400 and wrong.json_body["error"] == "invalid_grant"
    code, verifier = idp.login()
    off = idp.redeem(code, verifier, REDIRECT + "x")
    assert off.status_code == 400 and off.json_body["error"] == "invalid_grant"
    code, verifier = idp.login()
    assert idp.redeem(code, verifier).status_code == 200
    again = idp.redeem(code, verifier)
    assert again.status_code == 400 and again.json_body["error"] == "invalid_grant"


def test_authorize_refuses_unregistered_redirect_without_redirecting(idp: Harness) -> None:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": "hospital-a",
            "redirect_uri": REDIRECT + "/",
            "scope": "openid",
            "state": "s",
            "code_challenge": "a" * 43,
            "code_challenge_method": "S256",
        }
    )
    r = idp.get(f"/identity/oidc/authorize?{query}")
    assert r.status_code == 400 and "Location" not in r.headers
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    plain = urlencode(
        {
            "response_type": "code",
            "client_id": "hospital-a",
            "redirect_uri": REDIRECT,
            "scope": "openid",
            "state": "s",
            "code_challenge": "a" * 43,
            "code_challenge_method": "plain",
        }
    )
    r = idp.get(f"/identity/oidc/authorize?{plain}")
    assert (
        r.status_code == 302 and "error=invalid_request" in r.headers["Location"] and "state=s" in r.headers["Location"]
    )


def test_refresh_rotation_and_reuse_revokes_the_family(idp: Harness) -> None:
    code, verifier = idp.login()
    first = idp.redeem(code, verifier).json_body["refresh_token"]
    auth = ("hospital-a", idp.secret)
    second = idp.post_form("/identity/oidc/token", {"grant_type": "refresh_token", "refresh_token": first}, auth)
    assert second.status_code == 200, second.body
    newer = second.json_body["refresh_token"]
    assert newer != first
    reused = idp.post_form("/identity/oidc/token", {"grant_type": "refresh_token", "refresh_token": first}, auth)
    assert reused.json_body["error"] == "invalid_grant"
    revoked = idp.post_form("/identity/oidc/token", {"grant_type": "refresh_token", "refresh_token": newer}, auth)
    assert revoked.json_body["error"] == "invalid_grant"


def test_token_exchange_records_the_actor(idp: Harness) -> None:
    code, verifier = idp.login()
    access = idp.redeem(code, verifier).json_body["access_token"]
    r = idp.post_form(
        "/identity/oidc/token",
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": access,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "audience": "hospital-a",
        },
        ("hospital-a", idp.secret),
    )
    assert r.status_code == 200, r.body
    assert _claims(r.json_body["access_token"])["extra"]["act"] == {"sub": "hospital-a"}
    not_consented = idp.post_form(
        "/identity/oidc/token",
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
            "subject_token": access,
            "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
            "audience": "hospital-b",
        },
        ("hospital-a", idp.secret),
    )
    assert not_consented.json_body["error"] == "invalid_grant"


def test_wechat_reaches_the_same_person_after_one_real_name_login(idp: Harness) -> None:
    code, verifier = idp.login()
    sub = _claims(idp.redeem(code, verifier).json_body["id_token"])["sub"]
    idp.cookies = {}  # a new browser: log in again, through WeChat this time
    # the WeChat account is not linked yet, so the page asks for a real-name login, which links it
    code, verifier = idp.login(upstream="wechat")
    assert _claims(idp.redeem(code, verifier).json_body["id_token"])["sub"] == sub


def test_launch_ticket_single_use(idp: Harness) -> None:
    code, verifier = idp.login()
    access = idp.redeem(code, verifier).json_body["access_token"]
    bearer = {**HOST, "Authorization": f"Bearer {access}"}
    # the login consented to demo-hospital; hospital-b has no consent yet, so its launch tells nothing
    r = idp.client.http.get("/identity/launch/hospital-b?channel=wechat", headers=bearer)
    assert r.status_code == 200, r.body
    assert r.json_body["consent_required"] and r.json_body["target"] == {} and r.json_body["exchange"] is None
    consent = idp.client.http.post(
        "/identity/consents",
        headers={**bearer, "Content-Type": "application/json"},
        body=json.dumps({"hospital": "hospital-b"}),
    )
    assert consent.status_code == 201, consent.body
    unknown = idp.client.http.post(
        "/identity/consents",
        headers={**bearer, "Content-Type": "application/json"},
        body=json.dumps({"hospital": "nowhere"}),
    )
    assert unknown.status_code == 404 and unknown.json_body["error"]["code"] == "ENTRY_NOT_FOUND"
    assert not idp.client.http.get("/identity/launch/hospital-b?channel=wechat", headers=bearer).json_body[
        "consent_required"
    ]
    r = idp.client.http.get("/identity/launch/demo-hospital?channel=wechat", headers=bearer)
    launch = r.json_body
    assert launch["mode"] == "ticket" and launch["target"] == {"app_id": "wx123", "path": "pages/index"}
    # the launch function signs nothing: the ticket is an RFC 8693 exchange at the token endpoint (the issuer)
    exchange = launch["exchange"]
    assert exchange["token_endpoint"] == "https://idp.test/identity/oidc/token"
    issued = idp.post_form(
        "/identity/oidc/token",
        {k: exchange[k] for k in ("grant_type", "subject_token_type", "requested_token_type", "audience", "channel")}
        | {"subject_token": access},
        ("hospital-a", idp.secret),
    )
    assert issued.status_code == 200, issued.body
    form = {"ticket": issued.json_body["access_token"]}
    first = idp.post_form("/identity/launch/redeem", form, ("hospital-a", idp.secret))
    assert first.status_code == 200 and first.json_body["aud"] == "demo-hospital"
    replay = idp.post_form("/identity/launch/redeem", form, ("hospital-a", idp.secret))
    assert replay.status_code == 400 and replay.json_body["error"] == "invalid_grant"


def test_card_binding_and_fhir_export(idp: Harness) -> None:
    from bianjie_dev.identity.standin import RESIDENTS

    code, verifier = idp.login()
    access = idp.redeem(code, verifier).json_body["access_token"]
    headers = {**HOST, "Authorization": f"Bearer {access}", "Content-Type": "application/json"}
    good = "YB" + RESIDENTS[0].id_number[-8:]
    r = idp.client.http.post(
        "/identity/cards",
        headers=headers,
        body=json.dumps({"hospital": "demo-hospital", "card_type": "medical_insurance", "card_no": good}),
    )
    assert r.status_code == 201, r.body
    bad = idp.client.http.post(
        "/identity/cards",
        headers=headers,
        body=json.dumps({"hospital": "demo-hospital", "card_type": "visit_card", "card_no": "ZZ99990000"}),
    )
    assert bad.status_code == 400 and bad.json_body["error"]["code"] == "CARD_NOT_VERIFIED"
    me = idp.client.http.get("/identity/me", headers=headers).json_body
    assert me["cards"][0]["card_name"] == "医保电子凭证" and "demo-hospital" in me["hospitals"]
    assert RESIDENTS[0].id_number not in json.dumps(me)
    fhir = idp.client.http.get("/identity/fhir/Patient", headers=headers).json_body
    assert fhir["resourceType"] == "Patient" and any(
        "/hospital/demo-hospital/" in i["system"] for i in fhir["identifier"]
    )


def test_staff_login_carries_roles_of_the_hospital(idp: Harness) -> None:
    verifier = secrets.token_urlsafe(48)
    code, verifier = idp.login(client_id="staff-a", upstream="directory", who="doctor", verifier=verifier)
    r = idp.post_form(
        "/identity/oidc/token",
        {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": REDIRECT,
            "client_id": "staff-a",
        },
    )
    assert r.status_code == 200, r.body
    access = _claims(r.json_body["access_token"])
    assert access["kind"] == "staff" and access["hospital"] == "demo-hospital"
    assert set(access["roles"]) == {"doctor", "radiologist"}


def _deliver_logout_queue(aws: Any) -> Any:
    """What Lambda does with IdentityLogoutQueue: hand its messages to TokenIssueFunction's handler."""
    import boto3
    from bianjie.kit.config import function_scope
    from bianjie.runtime.invoke import load_module

    from tests.conftest import ROOT
    from tests.events import sqs_batch
    from tests.functional.conftest import _function_scopes

    sqs = boto3.client("sqs", region_name="cn-north-1")
    url = aws.ref("IdentityLogoutQueue")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    handler = load_module(ROOT / "functions" / "identity" / "app.py").app
    with function_scope(_function_scopes["TokenIssueFunction"]):
        return handler(sqs_batch(*[m["Body"] for m in messages], queue="IdentityLogoutQueue"), None)


def test_logout_ends_session_and_sends_backchannel(idp: Harness) -> None:
    from bianjie_dev.identity.standin import standin_idps

    code, verifier = idp.login()
    answer = idp.redeem(code, verifier).json_body
    before = len(standin_idps().backchannel_log)
    query = urlencode(
        {
            "id_token_hint": answer["id_token"],
            "post_logout_redirect_uri": "https://hospital-a.example/bye",
            "state": "bye",
        }
    )
    r = idp.get(f"/identity/oidc/logout?{query}")
    assert r.status_code == 302 and r.headers["Location"] == "https://hospital-a.example/bye?state=bye"
    # the logout route (no key) queued the notice; the issuer's queue handler signs and sends it
    assert standin_idps().backchannel_log[before:] == []
    assert _deliver_logout_queue(idp.aws) == {"batchItemFailures": []}
    sent = standin_idps().backchannel_log[before:]
    assert len(sent) == 1 and _claims(sent[0][1])["events"]
    assert _claims(sent[0][1])["aud"] == "hospital-a" and _claims(sent[0][1])["sid"]
    refreshed = idp.post_form(
        "/identity/oidc/token",
        {"grant_type": "refresh_token", "refresh_token": answer["refresh_token"]},
        ("hospital-a", idp.secret),
    )
    assert refreshed.json_body["error"] == "invalid_grant"


def test_self_check_page_says_where_a_launch_fails(idp: Harness) -> None:
    good = idp.get("/identity/entries/demo-hospital/check")
    assert good.status_code == 200 and "联调自检" in good.body.decode()
    body = good.body.decode()
    assert "❌" in body and "appId 应为 wx" in body  # the fixture's "wx123" is not a WeChat appId
    assert "一次性票据" in body
    missing = idp.get("/identity/entries/nowhere/check").body.decode()
    assert "尚未登记" in missing


@pytest.mark.parametrize("upstream", ["yiwangtongban", "alipay", "wechat"])
def test_every_upstream_reaches_the_same_person(idp: Harness, upstream: str) -> None:
    code, verifier = idp.login()
    sub = _claims(idp.redeem(code, verifier).json_body["id_token"])
    idp.cookies = {}
    code, verifier = idp.login(upstream=upstream)
    claims = _claims(idp.redeem(code, verifier).json_body["id_token"])
    assert claims["sub"] == sub["sub"]
    idp.cookies = {}  # once linked (or real-name), the channel alone logs in
    code, verifier = idp.login(upstream=upstream)
    again = _claims(idp.redeem(code, verifier).json_body["id_token"])
    assert again["sub"] == sub["sub"] and again["amr"] == [upstream]


def test_discovery_and_id_token_follow_the_openid_rules_we_can_check_offline(idp: Harness) -> None:
    """OpenID Connect Discovery 1.0 section 3 (required metadata) and Core 3.1.3.7 (ID token validation)."""
    meta = idp.get("/identity/oidc/.well-known/openid-configuration").json_body
    required = {
        "issuer",
        "authorization_endpoint",
        "token_endpoint",
        "jwks_uri",
        "response_types_supported",
        "subject_types_supported",
        "id_token_signing_alg_values_supported",
    }
    assert required <= set(meta)
    assert meta["issuer"] == "https://idp.test/identity/oidc" and all(
        meta[k].startswith(meta["issuer"]) for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
    )
    assert (
        meta["code_challenge_methods_supported"] == ["S256"]
        and "none" not in meta["id_token_signing_alg_values_supported"]
    )
    code, verifier = idp.login()
    token = idp.redeem(code, verifier).json_body
    header = json.loads(base64.urlsafe_b64decode(token["id_token"].split(".")[0] + "=="))
    claims = _claims(token["id_token"])
    assert header["alg"] == "ES256" and header["kid"] in {k["kid"] for k in idp.get(meta["jwks_uri"]).json_body["keys"]}
    assert claims["iss"] == meta["issuer"] and claims["aud"] == "hospital-a" and claims["azp"] == "hospital-a"
    assert claims["iat"] <= claims["exp"] and claims["auth_time"] <= claims["iat"] and len(claims["sub"]) <= 255
    assert token["token_type"] == "Bearer" and token["expires_in"] > 0


def test_consent_withdrawal_refuses_the_launch_and_the_exchange(idp: Harness) -> None:
    code, verifier = idp.login()
    access = idp.redeem(code, verifier).json_body["access_token"]
    bearer = {**HOST, "Authorization": f"Bearer {access}"}
    listed = idp.client.http.get("/identity/consents", headers=bearer)
    assert listed.status_code == 200, listed.body
    assert "demo-hospital" in {c["hospital"] for c in listed.json_body["consents"]}  # the login's consent page
    exchange = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": access,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_token_type": "urn:bianjie:params:oauth:token-type:launch-ticket",
        "audience": "demo-hospital",
        "channel": "wechat",
    }
    assert idp.post_form("/identity/oidc/token", exchange, ("hospital-a", idp.secret)).status_code == 200

    withdrawn = idp.client.http.delete("/identity/consents/demo-hospital", headers=bearer)
    assert withdrawn.status_code == 200, withdrawn.body
    assert withdrawn.json_body["hospital"] == "demo-hospital" and withdrawn.json_body["withdrawn_at"] > 0
    after = idp.client.http.get("/identity/consents", headers=bearer).json_body["consents"]
    assert "demo-hospital" not in {c["hospital"] for c in after}
    # the launch asks again and tells nothing; the ticket exchange is the RFC's invalid_grant
    launch = idp.client.http.get("/identity/launch/demo-hospital?channel=wechat", headers=bearer).json_body
    assert launch["consent_required"] and launch["target"] == {} and launch["exchange"] is None
    refused = idp.post_form("/identity/oidc/token", exchange, ("hospital-a", idp.secret))
    assert refused.status_code == 400 and refused.json_body["error"] == "invalid_grant"
    again = idp.client.http.delete("/identity/consents/demo-hospital", headers=bearer)
    assert again.status_code == 404 and again.json_body["error"]["code"] == "CONSENT_NOT_FOUND"
    assert idp.client.http.delete("/identity/consents/demo-hospital", headers=HOST).status_code == 401

    from bianjie.kit import deps

    log = deps.audit_log("identity")
    actions = [r.action for chain in log.chains("identity") for r in log.records(chain)]
    assert "identity.consent.withdraw" in actions
