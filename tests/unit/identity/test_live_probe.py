"""The live joint-debugging probe (联调实测) against the in-memory provider: its HTTP goes to the provider's
real token and redemption code and to a scripted hospital site; each failure is named in Chinese."""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from bianjie.identity.errors import OAuthError
from bianjie.identity.launch import Entry, redeem
from bianjie.identity.probe import LiveProbe, ProbeAnswer, Unreachable
from bianjie.kit.actor import Actor
from bianjie.kit.errors import AppError

from tests.unit.identity.conftest import ISSUER, REDIRECT, World

Site = Callable[[str, str], ProbeAnswer]


@dataclass
class Network:
    """The provider's endpoints answered by its own code; other hosts by ``sites`` (or unreachable)."""

    world: World
    sites: dict[str, Site] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)

    def request(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProbeAnswer:
        self.seen.append(f"{method} {url.split('?')[0]}")
        basic = None
        auth = dict(headers or {}).get("Authorization", "")
        if auth.startswith("Basic "):
            basic = tuple(base64.b64decode(auth[6:]).decode().split(":", 1))
        try:
            if url == f"{ISSUER}/token":
                return ProbeAnswer(200, {}, _json(self.world.provider.token(dict(form or {}), basic).body))  # type: ignore[arg-type]
            if url == ISSUER.replace("/oidc", "/launch/redeem"):
                w = self.world
                body = redeem(w.store, w.provider.keys, w.provider.clients, dict(form or {}), basic, w.audit)  # type: ignore[arg-type]
                return ProbeAnswer(200, {}, _json(body))
            if url.startswith(f"{ISSUER}/authorize?"):
                params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
                return ProbeAnswer(302, {"Location": self.world.provider.begin(params, None).location})
        except OAuthError as exc:
            return ProbeAnswer(exc.status, {}, _json(exc.body()))
        except AppError as exc:
            return ProbeAnswer(exc.status, {}, _json({"error": exc.code}))
        host = urlsplit(url).netloc
        if host not in self.sites:
            raise Unreachable("dns")
        return self.sites[host](method, url)


def _json(value: object) -> bytes:
    import json

    return json.dumps(value).encode()


def _hospital_rp(client_id: str = "hospital-a", **over: str) -> Site:
    """A hospital's site: its H5 page, and initiate_login_uri starting its own code flow at the issuer."""

    def site(method: str, url: str) -> ProbeAnswer:
        parts = urlsplit(url)
        if parts.path == "/oidc/initiate":
            iss = parse_qs(parts.query)["iss"][0]
            q = {
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": REDIRECT,
                "scope": "openid",
                "state": "s1",
                "nonce": "n1",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
                **over,
            }
            return ProbeAnswer(302, {"Location": f"{iss}/authorize?{urlencode(q)}"})
        return ProbeAnswer(200, {}, b"<html>ok</html>")

    return site


def _register(world: World, *, initiate: str | None = None, h5: str = "https://a.example/ih") -> None:
    if initiate is not None:
        client = world.provider.clients.get("hospital-a")
        assert client is not None
        world.provider.clients.register(client.model_copy(update={"initiate_login_uri": initiate}))
    world.entries.put(
        Actor.system("test"),
        Entry(hospital="demo-hospital", name="A", client_id="hospital-a", h5_url=h5),
    )


def _probe(world: World, network: Network) -> LiveProbe:
    return LiveProbe(world.entries, world.provider.clients, network, ISSUER, world.audit)


def _by_name(checks: list) -> dict[str, tuple[str, str]]:  # type: ignore[type-arg]
    return {c.name: (c.status, c.detail) for c in checks}


def test_a_healthy_oidc_hospital_passes_every_live_step(world: World) -> None:
    _register(world, initiate="https://a.example/oidc/initiate")
    network = Network(world, {"a.example": _hospital_rp()})
    checks = _probe(world, network).run("demo-hospital", "hospital-a", world.secret)
    assert [c.status for c in checks] == ["ok"] * len(checks), checks
    names = _by_name(checks)
    steps = {"客户端凭据", "目标：H5 地址", "票据签发", "票据兑换", "票据防重放", "第三方发起登录", "授权端点"}
    assert steps <= set(names)
    assert "invalid_grant" in names["票据防重放"][1]
    # the probe's ticket named no person and was audited as a probe
    actions = [r.action for chain in world.audit.chains("identity") for r in world.audit.records(chain)]
    assert "identity.launch.probe" in actions and "identity.entry.probe" in actions


def test_says_where_it_fails_in_chinese(world: World) -> None:
    _register(world, initiate="https://a.example/oidc/initiate", h5="https://gone.example/ih")
    # the hospital's initiate_login_uri sends the browser with a redirect_uri it never registered
    network = Network(world, {"a.example": _hospital_rp(redirect_uri="https://a.example/other")})
    names = _by_name(_probe(world, network).run("demo-hospital", "hospital-a", world.secret))
    assert names["目标：H5 地址"] == ("fail", "https://gone.example/ih：域名无法解析（DNS）")
    assert names["票据签发"][0] == "ok" and names["票据兑换"][0] == "ok"  # the platform's side works
    status, detail = names["第三方发起登录"]
    assert status == "fail" and "redirect_uri 不是登记的回调地址" in detail
    assert "授权端点" not in names  # it stops where the launch would


def test_wrong_credentials_or_another_hospitals_client_stop_at_the_first_step(world: World) -> None:
    _register(world)
    network = Network(world)
    (only,) = _probe(world, network).run("demo-hospital", "hospital-a", "wrong")
    assert only.status == "fail" and "invalid_client" in only.detail and network.seen == []
    (missing,) = _probe(world, network).run("nowhere", "hospital-a", world.secret)
    assert missing.status == "fail" and "尚未登记" in missing.detail


def test_the_probe_grant_is_for_a_hospitals_confidential_client_only(world: World) -> None:
    grant = {"grant_type": "urn:bianjie:params:oauth:grant-type:launch-probe"}
    from bianjie.identity.clients import Client

    world.provider.clients.register(
        Client(client_id="public", name="P", hospital="demo-hospital", redirect_uris=("https://p.example/cb",))
    )
    with pytest.raises(OAuthError) as exc:
        world.provider.token({**grant, "client_id": "public"}, None)
    assert exc.value.error in ("unauthorized_client", "invalid_client")
    body = world.provider.token(grant, ("hospital-a", world.secret)).body
    from bianjie.identity import jws

    claims = jws.verify(body["access_token"], world.provider.keys, typ="launch+jwt")
    assert claims["aud"] == "demo-hospital" and claims["sub"].startswith("probe:")
    assert claims["acr"] == "urn:bianjie:acr:probe" and "id_ref" not in claims
