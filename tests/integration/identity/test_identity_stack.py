"""Identity on the real local stack (as `make run` starts it, IAM enforced per function), checked by an
independent OpenID client: Authlib's. A resident logs in through the 随申办 stand-in and the token works
at another service; WeChat reaches the same person; refresh rotation; staff roles; launch-ticket replay."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from bianjie_dev.identity.client import Browser, login
from bianjie_dev.runtime.child import StackProcess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("identity-stack"), seed=["identity"])
    yield s
    s.stop()


@pytest.fixture(scope="module")
def clients(stack: StackProcess) -> dict[str, Any]:
    return json.loads((stack.state_dir / "identity" / "clients.json").read_text())


def _web(stack: StackProcess, clients: dict[str, Any], **kw: Any) -> Any:
    c = clients["demo-hospital-web"]
    return login(stack.url, "demo-hospital-web", c["redirect_uri"], client_secret=c["secret"], **kw)


def test_resident_login_with_authlib_and_the_token_works_at_pay(stack: StackProcess, clients: dict[str, Any]) -> None:
    result = _web(stack, clients)
    assert result.id_claims["acr"] == "urn:bianjie:acr:rn3" and result.id_claims["hospital"] == "demo-hospital"
    access = result.token["access_token"]
    r = requests.get(f"{stack.url}/pay/agreements", headers={"Authorization": f"Bearer {access}"}, timeout=30)
    assert r.status_code == 200, r.text
    me = requests.get(f"{stack.url}/identity/me", headers={"Authorization": f"Bearer {access}"}, timeout=30)
    assert me.status_code == 200 and me.json()["name_masked"] == "张*"


def test_wechat_login_reaches_the_same_person(stack: StackProcess, clients: dict[str, Any]) -> None:
    browser = Browser(stack.url)
    first = _web(stack, clients, browser=browser)
    # a fresh browser: WeChat first asks for one real-name login (which links it), then never again
    linked = _web(stack, clients, upstream="wechat", browser=Browser(stack.url))
    again = _web(stack, clients, upstream="wechat", browser=Browser(stack.url))
    assert first.id_claims["sub"] == linked.id_claims["sub"] == again.id_claims["sub"]
    assert again.id_claims["amr"] == ["wechat"] and again.id_claims["acr"] == "urn:bianjie:acr:rn1"


def test_refresh_rotates_and_reuse_is_refused(stack: StackProcess, clients: dict[str, Any]) -> None:
    result = _web(stack, clients)
    old = result.token["refresh_token"]
    meta = requests.get(f"{stack.url}/identity/oidc/.well-known/openid-configuration", timeout=30).json()
    new = result.session.refresh_token(meta["token_endpoint"], refresh_token=old)
    assert new["refresh_token"] != old
    secret = clients["demo-hospital-web"]["secret"]
    reuse = requests.post(
        meta["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": old},
        auth=("demo-hospital-web", secret),
        timeout=30,
    )
    assert reuse.status_code == 400 and reuse.json()["error"] == "invalid_grant"
    family = requests.post(
        meta["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": new["refresh_token"]},
        auth=("demo-hospital-web", secret),
        timeout=30,
    )
    assert family.json()["error"] == "invalid_grant"


def test_staff_login_carries_hospital_roles(stack: StackProcess, clients: dict[str, Any]) -> None:
    c = clients["demo-hospital-workbench"]
    result = login(
        stack.url,
        "demo-hospital-workbench",
        c["redirect_uri"],
        client_secret=c["secret"],
        upstream="directory",
        who="doctor",
    )
    assert set(result.id_claims["roles"]) == {"doctor", "radiologist"}
    info = requests.get(
        f"{stack.url}/identity/oidc/userinfo",
        headers={"Authorization": f"Bearer {result.token['access_token']}"},
        timeout=30,
    ).json()
    assert info["hospital"] == "demo-hospital" and "doctor" in info["roles"]
    # an existing service's role check takes the provider's staff token: past auth, rx looks the id up
    doc = requests.get(
        f"{stack.url}/rx/prescriptions/rx-none/document",
        headers={"Authorization": f"Bearer {result.token['access_token']}"},
        timeout=30,
    )
    assert doc.status_code == 404 and doc.json()["error"]["code"] == "RX_NOT_FOUND", doc.text
    patient = _web(stack, clients).token["access_token"]
    refused = requests.get(
        f"{stack.url}/rx/prescriptions/rx-none/document", headers={"Authorization": f"Bearer {patient}"}, timeout=30
    )
    assert refused.status_code == 403


def test_launch_ticket_is_single_use_and_oidc_hospital_gets_initiated_login(
    stack: StackProcess, clients: dict[str, Any]
) -> None:
    access = _web(stack, clients).token["access_token"]
    headers = {"Authorization": f"Bearer {access}"}
    oidc = requests.get(f"{stack.url}/identity/launch/demo-hospital?channel=h5", headers=headers, timeout=30).json()
    assert oidc["mode"] == "oidc_initiated" and oidc["target"]["url"].startswith(
        "https://demo-hospital.example/oidc/initiate?"
    )
    first = requests.get(f"{stack.url}/identity/launch/hospital-b?channel=wechat", headers=headers, timeout=30).json()
    assert first["consent_required"] and first["target"] == {}
    consent = requests.post(
        f"{stack.url}/identity/consents", json={"hospital": "hospital-b"}, headers=headers, timeout=30
    )
    assert consent.status_code == 201, consent.text
    launch = requests.get(f"{stack.url}/identity/launch/hospital-b?channel=wechat", headers=headers, timeout=30).json()
    assert launch["mode"] == "ticket" and launch["expires_in"] == 60
    # the ticket comes from the token endpoint (TokenIssueFunction), an RFC 8693 exchange of the person's token
    exchange = launch["exchange"]
    fields = ("grant_type", "subject_token_type", "requested_token_type", "audience", "channel")
    issued = requests.post(
        exchange["token_endpoint"],
        data={k: exchange[k] for k in fields} | {"subject_token": access},
        auth=("demo-hospital-web", clients["demo-hospital-web"]["secret"]),
        timeout=30,
    )
    assert issued.status_code == 200, issued.text
    # hospital-b has no client yet in the demo: demo-hospital's credentials must not redeem its ticket
    refused = requests.post(
        f"{stack.url}/identity/launch/redeem",
        data={"ticket": issued.json()["access_token"]},
        auth=("demo-hospital-web", clients["demo-hospital-web"]["secret"]),
        timeout=30,
    )
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"


def test_logout_is_signed_and_sent_by_the_issuer_from_the_queue(stack: StackProcess, clients: dict[str, Any]) -> None:
    """The logout route queues; the event pump hands IdentityLogoutQueue to TokenIssueFunction, which signs
    the logout token and posts it (to the stand-in receiver): the audit log says so."""
    import time

    result = _web(stack, clients)
    sid = result.id_claims["sid"]
    r = requests.get(
        f"{stack.url}/identity/oidc/logout", params={"id_token_hint": result.token["id_token"]}, timeout=30
    )
    assert r.status_code == 200 and "已退出" in r.text
    dynamodb = stack.client("dynamodb")
    sent: list[dict[str, Any]] = []
    deadline = time.monotonic() + 60
    while not sent and time.monotonic() < deadline:
        items = dynamodb.scan(TableName=stack.ref("AuditTable"))["Items"]
        sent = [
            i
            for i in items
            if i.get("action", {}).get("S") == "identity.logout.backchannel"
            and sid in json.dumps(i, ensure_ascii=False)
        ]
        time.sleep(0.5)
    assert sent, "TokenIssueFunction did not send the back-channel logout"
    assert sent[0]["resource"]["S"] == "identity.client:demo-hospital-web" and sent[0]["outcome"]["S"] == "success"
    refreshed = requests.post(
        f"{stack.url}/identity/oidc/token",
        data={"grant_type": "refresh_token", "refresh_token": result.token["refresh_token"]},
        auth=("demo-hospital-web", clients["demo-hospital-web"]["secret"]),
        timeout=30,
    )
    assert refreshed.json()["error"] == "invalid_grant"  # the session's family died with it


def test_cli_logs_in_through_the_provider(stack: StackProcess) -> None:
    done = stack.cli("identity", "login", "--who", "lisi", "--upstream", "yiwangtongban")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["id_token_claims"]["acr"] == "urn:bianjie:acr:rn2" and out["token_type"].lower() == "bearer"


def test_my_studies_through_the_providers_token(stack: StackProcess, clients: dict[str, Any]) -> None:
    """我的影像 on the stack (IAM on): the seeded study of the stand-in resident, opened in the viewer."""
    seeded = json.loads((stack.state_dir / "identity" / "resident-study.json").read_text())
    bearer = {"Authorization": f"Bearer {_web(stack, clients).token['access_token']}"}
    listed = requests.get(f"{stack.url}/film/my/studies", headers=bearer, timeout=30)
    assert listed.status_code == 200, listed.text
    (study,) = listed.json()["items"]
    assert study["study_uid"] == seeded["study_uid"] and study["modalities"] == ["CT"]
    assert study["body_parts"] == ["CHEST"] and study["hospital"] == "demo-hospital" and study["has_report"]
    opened = requests.post(f"{stack.url}{study['view']}", headers=bearer, timeout=30)
    assert opened.status_code == 201, opened.text
    page = requests.get(opened.json()["url"], timeout=30)
    assert page.status_code == 200 and seeded["study_uid"] in page.text
    assert requests.get(f"{stack.url}/film/my/studies", timeout=30).status_code == 401


def test_live_probe_walks_the_launch_and_says_where_it_fails(stack: StackProcess, clients: dict[str, Any]) -> None:
    import re

    secret = clients["demo-hospital-web"]["secret"]
    url = f"{stack.url}/identity/entries/demo-hospital/check"
    page = requests.get(url, timeout=30)
    assert page.status_code == 200 and "联调实测" in page.text and 'name="client_secret"' in page.text
    answer = requests.post(url, data={"client_id": "demo-hospital-web", "client_secret": secret}, timeout=60)
    assert answer.status_code == 200, answer.text
    live = answer.text.split('id="live"', 1)[1]
    row = r'<tr data-status="(\w+)"><td>[^<]*</td><td>([^<]+)</td>'
    rows = {name: status for status, name in re.findall(row, live)}
    # the platform's side of the launch works for real: ticket issued, redeemed with the hospital's
    # credentials, replay refused
    assert rows["客户端凭据"] == rows["票据签发"] == rows["票据兑换"] == rows["票据防重放"] == "ok", rows
    # the demo hospital's own site does not exist on this machine: the probe says so, in Chinese
    assert rows["目标：H5 地址"] == "fail" and rows["第三方发起登录"] == "fail", rows
    assert "https://demo-hospital.example/ih：" in live
    wrong = requests.post(url, data={"client_id": "demo-hospital-web", "client_secret": "nope"}, timeout=30)
    assert "invalid_client" in wrong.text.split('id="live"', 1)[1]
