"""Followers' web authorisation: the state is random, kept server-side, bound to the browser's cookie
and used once; the code is exchanged through the stand-in's ``sns/oauth2/access_token`` (one use, app id
and secret checked); the openid leaves only as a blind index in a sealed session; return targets are
site paths only."""

from __future__ import annotations

import urllib.parse

import pytest
from bianjie.content.oauth import FollowerAuth
from bianjie.kit.errors import AppError
from bianjie.kit.fieldcrypt import BlindIndex
from bianjie_dev.content import wechat_standin

from tests.unit.content.conftest import Rig

CALLBACK = "https://site.example/content/wechat/oauth/callback"


def auth(rig: Rig, secret: str = wechat_standin.APP_SECRET) -> FollowerAuth:
    blind = BlindIndex(b"k" * 32)
    return FollowerAuth(rig.documents, "content", rig.standin, wechat_standin.APP_ID, lambda: secret,
                        lambda: b"s" * 32, lambda o: blind.digest(o, "openid"), rig.clock)  # fmt: skip


def code_of(rig: Rig, location: str, openid: str = "oFollower123") -> tuple[str, str]:
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
    back = rig.standin.authorize(openid, query["redirect_uri"][0], query["state"][0])
    answer = urllib.parse.parse_qs(urllib.parse.urlsplit(back).query)
    return answer["code"][0], answer["state"][0]


def test_a_follower_comes_back_identified_by_a_blind_index(rig: Rig) -> None:
    flow = auth(rig)
    started = flow.start("/content/site/articles/a-0123456789abcdef", CALLBACK)
    parts = urllib.parse.urlsplit(started.location)
    query = urllib.parse.parse_qs(parts.query)
    assert parts.netloc == "open.weixin.qq.com" and parts.fragment == "wechat_redirect"
    assert query["scope"] == ["snsapi_base"] and query["appid"] == [wechat_standin.APP_ID]
    assert query["redirect_uri"] == [CALLBACK] and len(started.state) == 32 and started.state.isalnum()
    code, state = code_of(rig, started.location)
    done = flow.finish(code, state, started.state)
    assert done.next == "/content/site/articles/a-0123456789abcdef"
    assert "oFollower123" not in done.session and len(done.follower) == 64
    assert flow.follower(done.session) == done.follower
    # tampered, expired
    assert flow.follower(done.session[:-1] + ("0" if done.session[-1] != "0" else "1")) is None
    rig.clock.now += 7201
    assert flow.follower(done.session) is None


def test_the_state_must_match_the_cookie_and_is_used_once(rig: Rig) -> None:
    flow = auth(rig)
    started = flow.start("/content/site", CALLBACK)
    code, state = code_of(rig, started.location)
    for cookie in (None, "0" * 32):
        with pytest.raises(AppError) as refused:
            flow.finish(code, state, cookie)
        assert refused.value.code == "OAUTH_STATE" and refused.value.status == 403
    flow.finish(code, state, started.state)
    with pytest.raises(AppError) as replayed:
        flow.finish(code, state, started.state)
    assert replayed.value.code == "OAUTH_STATE"


def test_an_old_state_and_a_bad_or_used_code_are_refused(rig: Rig) -> None:
    flow = auth(rig)
    old = flow.start("/content/site", CALLBACK)
    code, state = code_of(rig, old.location)
    rig.clock.now += 601
    with pytest.raises(AppError) as expired:
        flow.finish(code, state, old.state)
    assert expired.value.code == "OAUTH_STATE"
    fresh = flow.start("/content/site", CALLBACK)
    with pytest.raises(AppError) as bad:
        flow.finish("not-a-code", fresh.state, fresh.state)
    assert bad.value.code == "OAUTH_CODE"
    wrong_secret = auth(rig, secret="wrong")
    third = wrong_secret.start("/content/site", CALLBACK)
    code3, state3 = code_of(rig, third.location)
    with pytest.raises(AppError) as secret:
        wrong_secret.finish(code3, state3, third.state)
    assert secret.value.code == "OAUTH_CODE" and "40125" in secret.value.message


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/content/site", "/content/site/../../admin", "/pages/x",
               "/content/sitex", "/content/site\\evil"],
)  # fmt: skip
def test_only_site_pages_are_return_targets(rig: Rig, target: str) -> None:
    with pytest.raises(AppError) as refused:
        auth(rig).start(target, CALLBACK)
    assert refused.value.code == "NEXT_INVALID"
