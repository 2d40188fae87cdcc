"""The upstream identity providers' protocols, each behind ``bianjie.identity.upstream.Upstream``.

What is documented and what is our reading (docs/identity.md, research mdt-escort-sso.md part C):
- 随申办市民云 (eshimin) OAuth2: ``/api/oauth/authorize`` -> ``/api/oauth/token`` (answers ``user`` and
  ``access_token``; the public sample puts ``client_secret`` in the query string, we POST it) ->
  ``/api/v2/user/identity/{user}``. UNCERTAIN: the identity answer's field names (``idCardNo``, ``name``,
  ``authLevel``) follow sample apps, not a specification.
- 一网通办 SSO: the browser goes to ``/uc/naturalUser/jump.do?redirect_uri=...`` and returns with a
  ``ticket``. UNCERTAIN: the ticket-validation API is not public (the 接入规范 comes from the 大数据中心);
  ``POST /uc/ticket/validate`` with ``app_id``, ``app_secret``, ``ticket`` answering ``username``,
  ``idCardNo``, ``authLevel`` is our reading, to be replaced when the specification arrives.
- WeChat: 网页授权 ``sns/oauth2/access_token`` (code -> openid, unionid) and, for the mini program,
  ``sns/jscode2session`` (js_code -> openid, session_key, unionid). A code is valid 5 minutes, once
  (errcode 40163 on reuse). ``session_key`` is dropped here: it never leaves this adapter.
- Alipay: ``alipay.system.oauth.token`` on the gateway (auth_code -> user_id, access_token 3600 s),
  the request signed RSA2 (SHA256withRSA over the sorted parameters) with the app's private key.
- Hospital directory (staff): an OAuth2 code flow against the hospital's own directory (its LDAP or AD
  behind its SSO); ``/token`` answers ``staff_id``, ``name`` and ``roles`` per hospital. This is the
  contract we ask hospitals to offer, not an existing standard.
"""

from __future__ import annotations

import base64
import time
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bianjie.identity.upstream import Http, UpstreamIdentity, UpstreamName, UpstreamRefused

_LEVELS = {"1": "rn1", "2": "rn2", "3": "rn3", "L1": "rn1", "L2": "rn2", "L3": "rn3"}


def _url(base: str, path: str, params: Mapping[str, str]) -> str:
    return f"{base.rstrip('/')}{path}?{urllib.parse.urlencode(dict(params))}"


def _param(params: Mapping[str, str], name: str) -> str:
    value = params.get(name) or ""
    if not value or len(value) > 512:
        raise UpstreamRefused(f"the callback carries no {name}")
    return value


@dataclass(frozen=True)
class UpstreamSettings:
    """Where an upstream is and the credentials it issued us (the secret never logged)."""

    base_url: str
    app_id: str
    secret: str = ""
    api_url: str = ""  # a second host (WeChat's API, Alipay's gateway), when it differs from base_url
    private_key_pem: str = ""  # Alipay: the app's RSA private key

    def __repr__(self) -> str:
        return f"UpstreamSettings(base_url={self.base_url!r}, app_id={self.app_id!r})"


class SuishenbanOAuth:
    name: UpstreamName = "suishenban"

    def __init__(self, settings: UpstreamSettings, http: Http) -> None:
        self.settings, self.http = settings, http

    def login_url(self, state: str, callback: str) -> str:
        return _url(
            self.settings.base_url,
            "/api/oauth/authorize",
            {"response_type": "code", "client_id": self.settings.app_id, "redirect_uri": callback, "state": state},
        )

    def resolve(self, params: Mapping[str, str], callback: str) -> UpstreamIdentity:
        code = _param(params, "code")
        token = self.http.post_form(
            f"{self.settings.base_url.rstrip('/')}/api/oauth/token",
            {
                "grant_type": "authorization_code",
                "code": code,
                "client_id": self.settings.app_id,
                "client_secret": self.settings.secret,
                "redirect_uri": callback,
            },
        )
        user, access = str(token.get("user") or ""), str(token.get("access_token") or "")
        if not user or not access:
            raise UpstreamRefused(f"随申办 refused the code: {token.get('error') or 'no user'}")
        identity = self.http.get(
            f"{self.settings.base_url.rstrip('/')}/api/v2/user/identity/{urllib.parse.quote(user, safe='')}",
            {},
            {"Authorization": f"Bearer {access}"},
        )
        data = identity.get("data", identity) if isinstance(identity, dict) else {}
        level = _LEVELS.get(str(data.get("authLevel") or ""), "rn2" if data.get("idCardNo") else "rn1")
        return UpstreamIdentity(
            upstream=self.name,
            subject=user,
            level=level,
            id_number=data.get("idCardNo") or None,
            name=data.get("name") or None,
            phone=data.get("mobile") or None,
        )


class YiwangtongbanSso:
    name: UpstreamName = "yiwangtongban"

    def __init__(self, settings: UpstreamSettings, http: Http) -> None:
        self.settings, self.http = settings, http

    def login_url(self, state: str, callback: str) -> str:
        # the SSO carries no state of its own: it goes inside the return address
        back = f"{callback}{'&' if '?' in callback else '?'}{urllib.parse.urlencode({'state': state})}"
        return _url(self.settings.base_url, "/uc/naturalUser/jump.do", {"redirect_uri": back})

    def resolve(self, params: Mapping[str, str], callback: str) -> UpstreamIdentity:
        ticket = _param(params, "ticket")
        answer = self.http.post_form(
            f"{self.settings.base_url.rstrip('/')}/uc/ticket/validate",
            {"app_id": self.settings.app_id, "app_secret": self.settings.secret, "ticket": ticket},
        )
        if (
            not isinstance(answer, dict)
            or str(answer.get("code", "")) not in ("0", "200")
            or not answer.get("username")
        ):
            raise UpstreamRefused("一网通办 refused the ticket")
        return UpstreamIdentity(
            upstream=self.name,
            subject=str(answer["username"]),
            level=_LEVELS.get(str(answer.get("authLevel") or ""), "rn2"),
            id_number=answer.get("idCardNo") or None,
            name=answer.get("name") or None,
        )


class WechatAuth:
    """WeChat official-account web authorisation, or the mini program's ``wx.login`` code (``js_code``)."""

    name: UpstreamName = "wechat"

    def __init__(self, settings: UpstreamSettings, http: Http) -> None:
        self.settings, self.http = settings, http

    def login_url(self, state: str, callback: str) -> str:
        params = {
            "appid": self.settings.app_id,
            "redirect_uri": callback,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
        }
        return _url(self.settings.base_url, "/connect/oauth2/authorize", params) + "#wechat_redirect"

    def resolve(self, params: Mapping[str, str], callback: str) -> UpstreamIdentity:
        api = (self.settings.api_url or self.settings.base_url).rstrip("/")
        base = {"appid": self.settings.app_id, "secret": self.settings.secret, "grant_type": "authorization_code"}
        if params.get("js_code"):
            answer = self.http.get(f"{api}/sns/jscode2session", {**base, "js_code": _param(params, "js_code")})
        else:
            answer = self.http.get(f"{api}/sns/oauth2/access_token", {**base, "code": _param(params, "code")})
        if not isinstance(answer, dict) or answer.get("errcode") or not answer.get("openid"):
            errcode = answer.get("errcode") if isinstance(answer, dict) else None
            raise UpstreamRefused(f"WeChat refused the code (errcode {errcode})")
        # the unionid is the same person across our official account and mini program; openid otherwise
        subject = str(answer.get("unionid") or answer["openid"])
        return UpstreamIdentity(upstream=self.name, subject=subject, level="rn1")


def alipay_sign_content(params: Mapping[str, str]) -> bytes:
    """Alipay's string to sign: every non-empty parameter but ``sign``, sorted, ``k=v`` joined by ``&``."""
    return "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "sign" and v != "").encode("utf-8")


class AlipayAuth:
    name: UpstreamName = "alipay"

    def __init__(self, settings: UpstreamSettings, http: Http, clock: Any = time.time) -> None:
        self.settings, self.http, self.clock = settings, http, clock

    def login_url(self, state: str, callback: str) -> str:
        params = {"app_id": self.settings.app_id, "scope": "auth_base", "redirect_uri": callback, "state": state}
        return _url(self.settings.base_url, "/oauth2/publicAppAuthorize.htm", params)

    def _sign(self, params: Mapping[str, str]) -> str:
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa

        key = serialization.load_pem_private_key(self.settings.private_key_pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise UpstreamRefused("the Alipay app key is not an RSA key")
        return base64.b64encode(key.sign(alipay_sign_content(params), padding.PKCS1v15(), hashes.SHA256())).decode()

    def resolve(self, params: Mapping[str, str], callback: str) -> UpstreamIdentity:
        request = {
            "app_id": self.settings.app_id,
            "method": "alipay.system.oauth.token",
            "charset": "utf-8",
            "sign_type": "RSA2",
            "timestamp": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(self.clock() + 8 * 3600)),
            "version": "1.0",
            "grant_type": "authorization_code",
            "code": _param(params, "auth_code"),
        }
        request["sign"] = self._sign(request)
        answer = self.http.post_form(self.settings.api_url or self.settings.base_url, request)
        body = answer.get("alipay_system_oauth_token_response") if isinstance(answer, dict) else None
        if not isinstance(body, dict) or not body.get("user_id"):
            raise UpstreamRefused("Alipay refused the auth code")
        return UpstreamIdentity(upstream=self.name, subject=str(body["user_id"]), level="rn1")


class HospitalDirectory:
    name: UpstreamName = "directory"

    def __init__(self, settings: UpstreamSettings, http: Http) -> None:
        self.settings, self.http = settings, http

    def login_url(self, state: str, callback: str) -> str:
        params = {"client_id": self.settings.app_id, "redirect_uri": callback, "state": state, "response_type": "code"}
        return _url(self.settings.base_url, "/authorize", params)

    def resolve(self, params: Mapping[str, str], callback: str) -> UpstreamIdentity:
        answer = self.http.post_form(
            f"{(self.settings.api_url or self.settings.base_url).rstrip('/')}/token",
            {
                "grant_type": "authorization_code",
                "code": _param(params, "code"),
                "client_id": self.settings.app_id,
                "client_secret": self.settings.secret,
                "redirect_uri": callback,
            },
        )
        if not isinstance(answer, dict) or not answer.get("staff_id"):
            raise UpstreamRefused("the hospital directory refused the code")
        roles = {str(h): tuple(str(r) for r in rs) for h, rs in (answer.get("roles") or {}).items()}
        return UpstreamIdentity(
            upstream=self.name,
            subject=str(answer["staff_id"]),
            level="staff",
            name=answer.get("name") or None,
            hospital_roles=roles,
        )


ADAPTERS: dict[str, Any] = {
    "suishenban": SuishenbanOAuth,
    "yiwangtongban": YiwangtongbanSso,
    "wechat": WechatAuth,
    "alipay": AlipayAuth,
    "directory": HospitalDirectory,
}
