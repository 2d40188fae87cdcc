"""The 随申办 entry pages (/pages/entry) on the local stack as `make run` starts it, in headless Chromium
(web/identity/browser/entry.mjs) with the stand-in IdPs, as a new resident would use them: log in through
随申办 (code + PKCE from the page), pick a hospital, consent, land in it logged in (a launch ticket; an
OIDC hospital's own login that shows no page), bind a 医保电子凭证, open a cloud film of theirs (我的影像
and the viewer), withdraw a hospital's consent, sign pay-later on the pay pages with
the provider's token, log out, then WeChat reaches the same person. What a person sees is checked as for
the patient pages: axe-core, 375 px, no text over text, no script error, nothing the CSP blocked."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from bianjie_dev.identity.standin import RESIDENTS
from bianjie_dev.runtime.child import StackProcess, project_root

ROOT = project_root()
FLOW = ROOT / "web" / "identity" / "browser"
# the built patient pages the entry links to; everything else is 即将上线 or 本院暂未开通, never a link
BUILT = {"/pages/pay", "/pages/home"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, capture_output=True, timeout=600)
    proc = StackProcess(tmp_path_factory.mktemp("entry-stack"), seed=["identity", "pages"])
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def chromium() -> str:
    done = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True)
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def walked(stack: StackProcess, chromium: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    node = shutil.which("node")
    assert node, "node is needed for the browser tests (README: Node 20)"
    card = "YB" + RESIDENTS[0].id_number[-8:]  # the stand-in card registry: ends with the ID's last four
    shots = tmp_path_factory.mktemp("entry-shots")
    done = subprocess.run(
        [
            *(node, "entry.mjs", "entry", "--base", stack.url, "--card", card),
            *(
                "--rp-secret",
                _clients(stack)["demo-hospital-web"]["secret"],
                "--chromium",
                chromium,
                "--shots",
                str(shots),
            ),
        ],
        cwd=FLOW,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.stdout.strip(), done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _clients(stack: StackProcess) -> dict[str, Any]:
    return json.loads((stack.state_dir / "identity" / "clients.json").read_text())


def test_what_the_person_sees_is_clean_everywhere(walked: dict[str, Any]) -> None:
    assert walked["ok"], walked["errors"]
    assert walked["errors"] == [] and walked["csp_violations"] == [], (walked["errors"], walked["csp_violations"])
    looked = {
        "entry-anonymous",
        "entry-logged-in",
        "hospital-b",
        "consent-dialog",
        "cards",
        "entry-wechat",
        "mini-program",
        "my-studies",
        "withdraw-dialog",
        "consent-withdrawn",
    }
    assert looked <= set(walked["looks"])
    for name, seen in walked["looks"].items():
        assert seen["axe"] == [], (name, seen["axe"])
        assert seen["layout"]["overlaps"] == [], (name, seen["layout"])
        assert not seen["layout"]["too_wide"], (name, seen["layout"])
        assert seen["layout"]["text_runs"] > 3, (name, "the page shows almost nothing")


def test_login_through_suishenban_from_the_page(walked: dict[str, Any]) -> None:
    steps = walked["steps"]
    assert {"示范医院", "第二医院"} <= set(steps["anon_hospitals"])  # the hospitals show before any login
    assert steps["stray_text"] == []  # nothing loose around the frame (a missing nav once showed "null")
    assert "您好，张*" in steps["who"] and "退出登录" in steps["who"]
    assert steps["token_client"] == "bianjie-entry"  # the provider's token, from the page's own code flow


def test_services_link_only_what_exists(stack: StackProcess, walked: dict[str, Any]) -> None:
    services = {s["key"]: s for s in walked["steps"]["b_services"]}
    assert len(services) == 8  # film, pay, reports, MDT, escort, guidance, navigation, bot
    assert services["pay"]["href"] == "/pages/pay"
    assert "打开" in services["film"]["text"] and services["film"]["href"] is None  # opens 我的影像 in the page
    assert "即将上线" in services["reports"]["text"] and services["reports"]["href"] is None
    assert "本院暂未开通" in services["mdt"]["text"] and services["mdt"]["href"] is None
    for service in services.values():
        assert service["href"] is None or service["href"] in BUILT, service
        if service["href"]:
            with urllib.request.urlopen(f"{stack.url}{service['href']}", timeout=30) as page:
                assert page.status == 200  # no dead link


def test_launch_ticket_after_consent_is_the_issuers(stack: StackProcess, walked: dict[str, Any]) -> None:
    from authlib.jose import JsonWebKey, JsonWebToken

    steps = walked["steps"]
    assert "第二医院" in steps["consent_第二医院"] and "不会获得您的身份证号" in steps["consent_第二医院"]
    url, _, fragment = steps["hospital_b_url"].partition("#")
    assert url == "https://hospital-b.example/ih" and fragment.startswith("bj_ticket=")
    assert "bj_ticket" not in steps["hospital_b_request"]  # the ticket never rode in a request line
    ticket = urllib.parse.unquote(fragment.split("=", 1)[1])
    jwks = requests.get(f"{stack.url}/identity/oidc/jwks", timeout=30).json()
    es256 = JsonWebKey.import_key_set({"keys": [k for k in jwks["keys"] if k["alg"] == "ES256"]})
    claims = JsonWebToken(["ES256"]).decode(ticket, es256)
    # the walk took the ticket minutes before this test reads it (its module's browser run comes first):
    # validated as of when the hospital received it, and its 60 s lifetime checked below
    claims.validate(now=int(claims["iat"]))
    assert claims.header["typ"] == "launch+jwt" and claims["aud"] == "hospital-b"
    assert claims["exp"] - claims["iat"] == 60 and claims["channel"] == "h5"


def test_an_oidc_hospital_is_entered_without_a_second_login(stack: StackProcess, walked: dict[str, Any]) -> None:
    steps = walked["steps"]
    initiate = steps["initiate"]
    assert initiate["iss"] == f"{stack.url}/identity/oidc" and initiate["login_hint"]
    # the hospital's authorization request, with the browser's cookies, goes straight back to its callback
    # with a code: no login page, no consent page (the entry's consent covers it)
    authorize = steps["hospital_rp"]["authorize"]
    assert authorize["status"] == 302 and authorize["location"].startswith(
        "https://demo-hospital.example/oidc/callback?"
    ), authorize
    callback = steps["hospital_rp"]["callback"]
    assert callback["state"] == "hosp-state" and callback["code"]
    # the hospital redeemed the code with its credentials and PKCE verifier: the ID token is for the person
    # the launch named (login_hint), under the hospital's pairwise sub
    assert steps["hospital_rp"]["token_status"] == 200, steps["hospital_rp"]
    id_claims = json.loads(_b64(steps["hospital_rp"]["id_token"].split(".")[1]))
    assert id_claims["sub"] == initiate["login_hint"] and id_claims["nonce"] == "hosp-nonce"
    assert id_claims["aud"] == "demo-hospital-web" and id_claims["iss"] == f"{stack.url}/identity/oidc"


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def test_binding_a_medical_insurance_credential(walked: dict[str, Any]) -> None:
    steps = walked["steps"]
    assert "核验" in steps["bind_refused"]  # someone else's card: said at the form
    assert any("医保电子凭证" in c and "示范医院" in c for c in steps["cards"]), steps["cards"]
    assert any("示范医院" in h for h in steps["linked"]), steps["linked"]


def test_pay_later_from_the_entry_with_the_providers_token(walked: dict[str, Any]) -> None:
    steps = walked["steps"]
    assert steps["pay_url"].endswith("/pages/pay") and steps["agreements"] == ["UNIONPAY"]
    # an expired sign-in on the pay page: 去登录 rides the provider's session, shows no login page, returns
    assert steps["relogin_paths"][-1] == "/pages/pay" and "/identity/login" not in steps["relogin_paths"]


def test_logout_then_wechat_reaches_the_same_person(walked: dict[str, Any]) -> None:
    steps = walked["steps"]
    assert "登录 / 注册" in steps["after_logout"]
    assert "实名认证" in steps["wechat_first"]  # first WeChat login: one real-name login links it
    assert "/identity/callback/wechat" not in steps["wechat_paths"]  # then WeChat alone, no link page
    assert steps["person_wechat"] == steps["person_first"] and "您好，张*" in steps["wechat_who"]
    assert "微信" in steps["wechat_accounts"] and "随申办" in steps["wechat_accounts"]


def test_inside_wechat_the_entry_opens_the_hospitals_mini_program(walked: dict[str, Any]) -> None:
    steps = walked["steps"]
    assert "微信小程序" in steps["mini_program"] and "wxdemo0002" in steps["mini_program"], steps["mini_program"]
    assert steps["mini_path"].startswith("pages/home?bj_ticket=ey")  # the ticket rides in the page's query


def test_the_banner_links_the_entry(stack: StackProcess) -> None:
    banner = (stack.state_dir / "stack.log").read_text(errors="replace")
    assert f"{stack.url}/pages/entry " in banner


def test_the_entry_callback_is_the_registered_redirect(stack: StackProcess) -> None:
    assert _clients(stack)["bianjie-entry"]["redirect_uri"] == f"{stack.url}/pages/entry-callback"
    assert Path(ROOT / "web" / "pages" / "dist" / "entry-callback.html").is_file()


def test_cloud_film_of_the_resident_opens_in_the_viewer(stack: StackProcess, walked: dict[str, Any]) -> None:
    steps = walked["steps"]
    seeded = json.loads((stack.state_dir / "identity" / "resident-study.json").read_text())
    studies = steps["film_studies"]
    assert [s["study"] for s in studies] == [seeded["study_uid"]], studies  # the resident's own study only
    shown = studies[0]["text"]
    assert "2026-09-18" in shown and "CT" in shown and "胸部" in shown and "示范医院" in shown and "有报告" in shown
    # the viewer opened that study through a link whose URL names no patient (a random 48-char key)
    url = urllib.parse.urlsplit(steps["viewer_url"])
    assert url.path.startswith("/film/v/") and len(url.path.rsplit("/", 1)[1]) == 48 and not url.query
    assert RESIDENTS[0].id_number not in steps["viewer_url"] and "MRN" not in steps["viewer_url"]
    assert steps["viewer_study"] == seeded["study_uid"]


def test_withdrawing_consent_from_the_entry(walked: dict[str, Any]) -> None:
    steps = walked["steps"]
    assert any("第二医院" in c for c in steps["consents_before"]), steps["consents_before"]
    assert "撤回" in steps["withdraw_dialog"] and "第二医院" in steps["withdraw_dialog"]
    assert not any("第二医院" in c for c in steps["consents_after"]), steps["consents_after"]
    # the exchange the page made before now answers the RFC's invalid_grant; entering asks again
    refused = steps["exchange_after_withdraw"]
    assert refused["status"] == 400 and refused["body"]["error"] == "invalid_grant", refused
    assert "授权第二医院" in steps["asked_again"] and "未进入医院" in steps["declined"]
