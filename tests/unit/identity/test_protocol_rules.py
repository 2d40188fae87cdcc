"""Protocol rules of the provider, each refused with its RFC error code."""

from __future__ import annotations

import json
import secrets

import pytest
from bianjie.identity import jws
from bianjie.identity.errors import OAuthError
from bianjie.identity.provider import CODE_TTL, s256

from tests.unit.identity.conftest import LOGOUT_QUEUE, REDIRECT, World


def _payload(token: str) -> dict:
    from bianjie.kit.tokenkeys import b64url_decode

    return json.loads(b64url_decode(token.split(".")[1]))


def test_s256_matches_rfc7636_appendix_b() -> None:
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_code_round_trip_issues_tokens(world: World) -> None:
    code, verifier, _ = world.code()
    body = world.redeem(code, verifier)
    assert set(body) >= {"access_token", "id_token", "refresh_token", "expires_in", "token_type"}
    claims = jws.verify(body["id_token"], world.provider.keys)
    assert claims["aud"] == "hospital-a" and claims["nonce"] == "nn" and claims["iss"].endswith("/identity/oidc")


def test_wrong_pkce_verifier_is_invalid_grant(world: World) -> None:
    code, _, _ = world.code()
    with pytest.raises(OAuthError) as exc:
        world.redeem(code, secrets.token_urlsafe(48))
    assert exc.value.error == "invalid_grant"


def test_missing_or_short_verifier_is_invalid_request(world: World) -> None:
    code, _, _ = world.code()
    with pytest.raises(OAuthError) as exc:
        world.redeem(code, "short")
    assert exc.value.error == "invalid_request"


def test_reused_code_is_refused_and_revokes_what_it_issued(world: World) -> None:
    code, verifier, _ = world.code()
    first = world.redeem(code, verifier)
    with pytest.raises(OAuthError) as exc:
        world.redeem(code, verifier)
    assert exc.value.error == "invalid_grant"
    with pytest.raises(OAuthError):  # the refresh token the first redemption got is dead too
        world.refresh(first["refresh_token"])


def test_expired_code_reads_like_an_unknown_one(world: World) -> None:
    code, verifier, _ = world.code()
    world.clock.now += CODE_TTL + 1
    with pytest.raises(OAuthError) as expired:
        world.redeem(code, verifier)
    with pytest.raises(OAuthError) as unknown:
        world.redeem("nope" * 10, verifier)
    assert expired.value.body() == unknown.value.body()


@pytest.mark.parametrize(
    "uri",
    [
        REDIRECT + "/",
        REDIRECT[:-1],
        REDIRECT.replace("https", "http"),
        REDIRECT.upper(),
        REDIRECT + "?x=1",
        REDIRECT + "#",
    ],
)
def test_redirect_differing_by_one_character_is_refused_without_redirect(world: World, uri: str) -> None:
    params, _ = world.authorize(redirect_uri=uri)
    with pytest.raises(OAuthError) as exc:
        world.provider.begin(params, None)
    assert exc.value.error == "invalid_request" and not exc.value.redirectable


def test_token_redirect_uri_must_equal_the_authorization_one(world: World) -> None:
    code, verifier, _ = world.code()
    with pytest.raises(OAuthError) as exc:
        world.redeem(code, verifier, REDIRECT + "x")
    assert exc.value.error == "invalid_grant"


@pytest.mark.parametrize(
    ("over", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": ""}, "invalid_request"),
        ({"state": ""}, "invalid_request"),
        ({"scope": "profile"}, "invalid_scope"),
        ({"scope": "openid id_number"}, "invalid_scope"),  # hospital-a is not entitled to the ID number
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
def test_authorization_request_errors_are_redirectable_with_their_code(
    world: World, over: dict[str, str], error: str
) -> None:
    params, _ = world.authorize(**over)
    with pytest.raises(OAuthError) as exc:
        world.provider.begin(params, None)
    assert exc.value.error == error and exc.value.redirectable
    location = world.provider.error_redirect(REDIRECT, exc.value, "st")
    assert location.startswith(REDIRECT + "?error=" + error) and "state=st" in location


def test_unknown_client_and_bad_secret_are_invalid_client(world: World) -> None:
    code, verifier, _ = world.code()
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": REDIRECT}
    for auth in (("hospital-a", "wrong"), ("nobody", "x"), ("hospital-a", "")):
        with pytest.raises(OAuthError) as exc:
            world.provider.token(form, auth)
        assert exc.value.error == "invalid_client" and exc.value.status == 401


def test_unsupported_grant(world: World) -> None:
    with pytest.raises(OAuthError) as exc:
        world.provider.token({"grant_type": "password"}, ("hospital-a", world.secret))
    assert exc.value.error == "unsupported_grant_type"


def test_pairwise_sub_differs_per_hospital_and_is_stable(world: World) -> None:
    person = world.provider.archive.resolve(world.resident())
    a = world.provider.pairwise_for(person, "demo-hospital")
    assert (
        a == world.provider.pairwise_for(person, "demo-hospital") != world.provider.pairwise_for(person, "hospital-b")
    )
    code, verifier, _ = world.code()
    assert _payload(world.redeem(code, verifier)["id_token"])["sub"] == a


def test_token_exchange_adds_act_and_needs_consent_at_the_target(world: World) -> None:
    code, verifier, _ = world.code()
    access = world.redeem(code, verifier)["access_token"]
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": access,
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "audience": "hospital-a",
    }
    body = world.provider.token(form, ("hospital-a", world.secret)).body
    assert body["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert _payload(body["access_token"])["extra"]["act"] == {"sub": "hospital-a"}
    with pytest.raises(OAuthError) as exc:
        world.provider.token({**form, "audience": "hospital-b"}, ("hospital-a", world.secret))
    assert exc.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as target:
        world.provider.token({**form, "audience": "nowhere"}, ("hospital-a", world.secret))
    assert target.value.error == "invalid_target"


def test_logout_revokes_families_and_sends_backchannel_logout_tokens(world: World) -> None:
    code, verifier, cookie = world.code()
    body = world.redeem(code, verifier)
    target = world.provider.logout(
        {"id_token_hint": body["id_token"], "post_logout_redirect_uri": "https://a.example/bye", "state": "s"}, cookie
    )
    assert target == "https://a.example/bye?state=s"
    # the logout signed nothing: it queued one notice (ids only) for the issuer, which signs and sends
    assert world.backchannel.sent == []
    (notice,) = world.queues.bodies(LOGOUT_QUEUE)
    assert set(notice) == {"client_id", "sub", "sid", "iss"} and notice["client_id"] == "hospital-a"
    assert world.deliver_logouts() == [200]
    assert len(world.backchannel.sent) == 1
    logout = jws.verify(world.backchannel.sent[0][1], world.provider.keys, typ="logout+jwt")
    assert "http://schemas.openid.net/event/backchannel-logout" in logout["events"] and "nonce" not in logout
    with pytest.raises(OAuthError):
        world.refresh(body["refresh_token"])
    assert world.provider.session(cookie) is None


def test_a_logout_a_relying_party_cannot_take_now_is_retried(world: World) -> None:
    from bianjie.identity.provider import LogoutNotice
    from bianjie.kit.batch import Retry

    code, verifier, cookie = world.code()
    world.redeem(code, verifier)
    world.provider.logout({}, cookie)
    (notice,) = world.queues.bodies(LOGOUT_QUEUE)
    world.backchannel.status = 503
    with pytest.raises(Retry):
        world.provider.send_logout_token(LogoutNotice.model_validate(notice))
    world.backchannel.status = 400  # the relying party's final word: audited, not retried
    assert world.provider.send_logout_token(LogoutNotice.model_validate(notice)) == 400


def test_a_function_without_the_logout_queue_cannot_drop_back_channel_logouts(world: World) -> None:
    code, verifier, cookie = world.code()
    world.redeem(code, verifier)
    world.provider.logout_notices = None
    with pytest.raises(RuntimeError):
        world.provider.logout({}, cookie)
    assert world.provider.session(cookie) is not None  # refused before anything ended


def test_logout_refuses_an_unregistered_post_logout_uri(world: World) -> None:
    code, verifier, cookie = world.code()
    body = world.redeem(code, verifier)
    with pytest.raises(OAuthError) as exc:
        world.provider.logout(
            {"id_token_hint": body["id_token"], "post_logout_redirect_uri": "https://a.example/bye/"}, cookie
        )
    assert exc.value.error == "invalid_request"


def test_a_second_login_with_a_live_session_and_consent_skips_the_pages(world: World) -> None:
    _, _, cookie = world.code()
    params, _ = world.authorize()
    answer = world.provider.begin(params, cookie)
    assert answer.location.startswith(REDIRECT + "?code=")
    forced = world.provider.begin({**params, "prompt": "login"}, cookie)
    assert forced.location.startswith("/identity/login?req=")


def test_every_login_consent_and_token_is_audited(world: World) -> None:
    code, verifier, _ = world.code()
    world.redeem(code, verifier)
    reports = world.audit.verify_all("identity")
    assert all(r.ok for r in reports) and sum(r.records for r in reports) >= 4


def test_a_login_request_completes_only_in_the_browser_that_started_it(world: World) -> None:
    from urllib.parse import parse_qs, urlsplit

    params, _ = world.authorize()
    start = world.provider.begin(params, None)
    req = parse_qs(urlsplit(start.location).query)["req"][0]
    for other in (None, "another-browser"):
        with pytest.raises(OAuthError) as exc:
            world.provider.complete_login(req, world.resident(), other)
        assert exc.value.error == "invalid_request" and not exc.value.redirectable
    answer = world.provider.complete_login(req, world.resident(), start.login_cookie)
    assert not isinstance(answer, tuple) and answer.set_cookie


def test_prompt_none_without_a_session_is_login_required(world: World) -> None:
    params, _ = world.authorize(prompt="none")
    with pytest.raises(OAuthError) as exc:
        world.provider.begin(params, None)
    assert exc.value.error == "login_required" and exc.value.redirectable
    _, _, cookie = world.code()
    assert world.provider.begin(params, cookie).location.startswith(REDIRECT + "?code=")


def test_id_number_released_only_to_an_entitled_client_and_audited(world: World) -> None:
    from urllib.parse import parse_qs, urlsplit

    from bianjie.identity.clients import Client

    secret, digest = world.provider.clients.new_secret()
    world.provider.clients.register(
        Client(
            client_id="card-desk",
            name="绑卡",
            hospital="demo-hospital",
            redirect_uris=(REDIRECT,),
            secret_digest=digest,
            may_receive_id_number=True,
        )
    )
    params, verifier = world.authorize("card-desk", scope="openid id_number")
    start = world.provider.begin(params, None)
    req = parse_qs(urlsplit(start.location).query)["req"][0]
    answer = world.provider.complete_login(req, world.resident(), start.login_cookie)
    assert not isinstance(answer, tuple)
    if answer.location.startswith("/identity/consent"):
        answer = world.provider.consent(req, answer.set_cookie, True, start.login_cookie)
    code = parse_qs(urlsplit(answer.location).query)["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "code_verifier": verifier, "redirect_uri": REDIRECT}
    access = world.provider.token(form, ("card-desk", secret)).body["access_token"]
    info = world.provider.userinfo(access)
    assert info["id_number"] == world.resident().id_number
    # hospital-a's token (no id_number scope, not entitled) gets no ID number
    code, verifier2, _ = world.code()
    assert "id_number" not in world.provider.userinfo(world.redeem(code, verifier2)["access_token"])
