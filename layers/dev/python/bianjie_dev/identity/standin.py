"""STAND-IN upstream identity providers for the local stack: 随申办 (eshimin OAuth2), 一网通办 SSO,
WeChat (OA web auth and mini program code2Session), Alipay (alipay.system.oauth.token, RSA2-signed),
a hospital staff directory, and the hospitals' card registries.

They answer the requests ``bianjie.identity.adapters.upstreams`` sends, in the shapes those adapters
document (and with the same uncertainty: 一网通办's ticket API and 随申办's identity fields are our
reading of public samples, not a specification). The browser leg is ``GET /identity/standin/{upstream}``
(served by the provider function on the local stage only): a page listing demo people; picking one
returns to the caller's redirect URI with a code (ticket, auth_code) that is valid 5 minutes and once,
bound to the client and redirect URI it was issued for, as the real ones are.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from bianjie.identity.adapters.upstreams import UpstreamSettings, alipay_sign_content
from bianjie.identity.archive import CardVerifier
from bianjie.identity.upstream import UpstreamRefused
from bianjie.kit.config import process_cached

CODE_TTL = 300
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def with_check_digit(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return first17 + "10X98765432"[total % 11]


@dataclass(frozen=True)
class DemoResident:
    key: str
    name: str
    id_number: str
    level: str  # authLevel as 随申办 / 一网通办 report it
    wechat_unionid: str
    alipay_user_id: str
    phone: str


@dataclass(frozen=True)
class DemoStaff:
    key: str
    name: str
    staff_id: str
    roles: dict[str, list[str]]


RESIDENTS = (
    DemoResident(
        "zhangsan",
        "张三",
        with_check_digit("31010119900101123"),
        "3",
        "wxu-zhangsan",
        "2088000000000001",
        "13800138000",
    ),
    DemoResident(
        "lisi", "李四", with_check_digit("31010419850615432"), "2", "wxu-lisi", "2088000000000002", "13900139000"
    ),
)
STAFF = (
    DemoStaff("doctor", "王医生", "D1001", {"demo-hospital": ["doctor", "radiologist"], "hospital-b": ["doctor"]}),
    DemoStaff("pharmacist", "李药师", "P2001", {"demo-hospital": ["pharmacist"]}),
    DemoStaff("admin", "平台管理员", "A0001", {"platform": ["platform-admin"], "demo-hospital": ["hospital-admin"]}),
)
PREFIX = "/identity/standin/"


@dataclass
class _Grant:
    upstream: str
    who: str
    client_id: str
    redirect_uri: str
    expires: float
    used: bool = False


@dataclass
class StandinIdps:
    secrets_: dict[str, str] = field(default_factory=dict)
    grants: dict[str, _Grant] = field(default_factory=dict)
    access: dict[str, str] = field(default_factory=dict)  # 随申办 access token -> resident key
    backchannel_log: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    alipay_key_pem: str = ""
    alipay_public: Any = None
    cards: CardVerifier = field(default_factory=lambda: StandinCardRegistry())

    def __post_init__(self) -> None:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.alipay_key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        self.alipay_public = key.public_key()

    # -- configuration the wiring hands the adapters --------------------------------------------
    def settings(self, name: str, base_url: str) -> UpstreamSettings:
        secret = self.secrets_.setdefault(name, secrets.token_urlsafe(16))
        base = f"{base_url.rstrip('/')}{PREFIX}{name}"
        return UpstreamSettings(
            base_url=base,
            app_id=f"standin-{name}",
            secret=secret,
            api_url=base,
            private_key_pem=self.alipay_key_pem if name == "alipay" else "",
        )

    def owns(self, url: str) -> bool:
        return PREFIX in url

    def browser_url(self, url: str) -> str:
        """``<base>/identity/standin/<name>/<the real system's path>?q`` -> ``/identity/standin/<name>?q``."""
        parts = urlsplit(url.split("#", 1)[0])
        name = parts.path.split(PREFIX, 1)[1].split("/", 1)[0]
        return f"{parts.scheme}://{parts.netloc}{PREFIX}{name}?{parts.query}"

    def people(self, name: str) -> list[tuple[str, str]]:
        if name == "directory":
            return [(s.key, f"{s.name}（工号 {s.staff_id}）") for s in STAFF]
        return [(r.key, f"{r.name}（{r.id_number[:3]}***********{r.id_number[-4:]}）") for r in RESIDENTS]

    # -- the browser leg ------------------------------------------------------------------------
    def authorize(self, name: str, params: Mapping[str, str]) -> tuple[int, dict[str, str], str]:
        """``GET /identity/standin/{name}``: the login page, or (with ``who``) the redirect back."""
        client_id = params.get("client_id") or params.get("appid") or params.get("app_id") or "standin-yiwangtongban"
        redirect_uri = params.get("redirect_uri") or ""
        if client_id != f"standin-{name}" or not redirect_uri:
            return 400, {"Content-Type": "text/plain; charset=utf-8"}, "stand-in: unknown client or no redirect_uri"
        who = params.get("who")
        if not who:
            links = "".join(
                f'<p><a href="{PREFIX}{name}?{html.escape(urlencode({**params, "who": key}))}">'
                f"{html.escape(label)}</a></p>"
                for key, label in self.people(name)
            )
            body = (
                f"<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
                f"<title>STAND-IN {name}</title><h1>STAND-IN {html.escape(name)}</h1>"
                f"<p>本地联调用的模拟登录（不是真实系统）。选择演示用户：</p>{links}"
            )
            return 200, {"Content-Type": "text/html; charset=utf-8"}, body
        if who not in {k for k, _ in self.people(name)}:
            return 400, {"Content-Type": "text/plain; charset=utf-8"}, "stand-in: unknown demo user"
        code = secrets.token_urlsafe(16)
        with self.lock:
            self.grants[code] = _Grant(name, who, client_id, redirect_uri, time.time() + CODE_TTL)
        back: dict[str, str]
        if name == "yiwangtongban":
            back = {"ticket": code}  # the state is already inside redirect_uri
        elif name == "alipay":
            back = {"auth_code": code, "state": params.get("state", "")}
        else:
            back = {"code": code, "state": params.get("state", "")}
        sep = "&" if "?" in redirect_uri else "?"
        return 302, {"Location": f"{redirect_uri}{sep}{urlencode(back)}"}, ""

    def _take(self, name: str, code: str, client_id: str, redirect_uri: str | None) -> _Grant | None:
        with self.lock:
            grant = self.grants.get(code)
            if grant is None or grant.upstream != name or grant.client_id != client_id or grant.used:
                return None
            if grant.expires < time.time():
                return None
            if redirect_uri is not None and redirect_uri != grant.redirect_uri:
                return None
            grant.used = True
            return grant

    def _resident(self, key: str) -> DemoResident:
        return next(r for r in RESIDENTS if r.key == key)

    # -- the server leg: the Http port the adapters call ----------------------------------------
    def get(self, url: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Any:
        path = urlsplit(url).path
        query = {**dict(parse_qsl(urlsplit(url).query)), **dict(params)}
        if path.endswith("/wechat/sns/oauth2/access_token") or path.endswith("/wechat/sns/jscode2session"):
            if query.get("secret") != self.secrets_.get("wechat"):
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            code = query.get("code") or query.get("js_code") or ""
            grant = self._take("wechat", code, query.get("appid", ""), None)
            if grant is None:
                return (
                    {"errcode": 40163, "errmsg": "code been used"}
                    if code in self.grants
                    else {"errcode": 40029, "errmsg": "invalid code"}
                )
            resident = self._resident(grant.who)
            answer = {
                "openid": "o-" + hashlib.sha256(resident.key.encode()).hexdigest()[:20],
                "unionid": resident.wechat_unionid,
            }
            if path.endswith("jscode2session"):
                answer["session_key"] = base64.b64encode(secrets.token_bytes(16)).decode()
            else:
                answer.update({"access_token": secrets.token_urlsafe(16), "expires_in": "7200", "scope": "snsapi_base"})
            return answer
        if "/suishenban/api/v2/user/identity/" in path:
            token = (headers or {}).get("Authorization", "").removeprefix("Bearer ")
            key = self.access.get(token)
            user = path.rsplit("/", 1)[-1]
            if key is None or key != user:
                return {"code": 401, "msg": "invalid token"}
            r = self._resident(key)
            return {
                "code": 0,
                "data": {"idCardNo": r.id_number, "name": r.name, "authLevel": r.level, "mobile": r.phone},
            }
        raise UpstreamRefused(f"stand-in: no such endpoint {path}")

    def post_form(self, url: str, form: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Any:
        path = urlsplit(url).path
        if path.endswith("/suishenban/api/oauth/token"):
            if (
                form.get("client_secret") != self.secrets_.get("suishenban")
                or form.get("grant_type") != "authorization_code"
            ):
                return {"error": "invalid_client"}
            grant = self._take("suishenban", form.get("code", ""), form.get("client_id", ""), form.get("redirect_uri"))
            if grant is None:
                return {"error": "invalid_grant"}
            token = secrets.token_urlsafe(16)
            self.access[token] = grant.who
            return {"access_token": token, "user": grant.who, "expires_in": 7200}
        if path.endswith("/yiwangtongban/uc/ticket/validate"):
            if form.get("app_secret") != self.secrets_.get("yiwangtongban"):
                return {"code": "403", "msg": "bad app"}
            grant = self._take("yiwangtongban", form.get("ticket", ""), form.get("app_id", ""), None)
            if grant is None:
                return {"code": "404", "msg": "ticket invalid"}
            r = self._resident(grant.who)
            return {
                "code": "0",
                "username": f"ywtb-{r.key}",
                "idCardNo": r.id_number,
                "name": r.name,
                "authLevel": r.level,
            }
        if path.endswith("/alipay"):
            return self._alipay(form)
        if path.endswith("/directory/token"):
            if form.get("client_secret") != self.secrets_.get("directory"):
                return {"error": "invalid_client"}
            grant = self._take("directory", form.get("code", ""), form.get("client_id", ""), form.get("redirect_uri"))
            if grant is None:
                return {"error": "invalid_grant"}
            staff = next(s for s in STAFF if s.key == grant.who)
            return {"staff_id": staff.staff_id, "name": staff.name, "roles": staff.roles}
        raise UpstreamRefused(f"stand-in: no such endpoint {path}")

    def _alipay(self, form: Mapping[str, str]) -> Any:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        error = {"alipay_system_oauth_token_response": {"code": "40002", "msg": "Invalid Arguments"}}
        if form.get("method") != "alipay.system.oauth.token" or form.get("sign_type") != "RSA2":
            return error
        try:
            self.alipay_public.verify(
                base64.b64decode(form.get("sign", "")), alipay_sign_content(form), padding.PKCS1v15(), hashes.SHA256()
            )
        except (InvalidSignature, ValueError):
            return {"error_response": {"code": "40002", "sub_code": "isv.invalid-signature"}}
        grant = self._take("alipay", form.get("code", ""), form.get("app_id", ""), None)
        if grant is None:
            return {"error_response": {"code": "40002", "sub_code": "isv.code-invalid"}}
        r = self._resident(grant.who)
        return {
            "alipay_system_oauth_token_response": {
                "user_id": r.alipay_user_id,
                "access_token": secrets.token_urlsafe(16),
                "expires_in": 3600,
            }
        }

    def backchannel(self, uri: str, logout_token: str) -> int:
        self.backchannel_log.append((uri, logout_token))
        return 200


class StandinCardRegistry:
    """The hospitals' card registries, STAND-IN: a card is the person's when its number ends with the
    last four characters of their ID number (a rule for demos, not any hospital's); the hospital patient
    id is derived from hospital and ID number, as a hospital's own MRN would be stable."""

    def verify(self, hospital: str, card_type: str, card_no: str, id_number: str) -> str | None:
        if not card_no.endswith(id_number[-4:]):
            return None
        return "MRN-" + hashlib.sha256(f"{hospital}|{id_number}".encode()).hexdigest()[:10].upper()


def standin_idps() -> StandinIdps:
    return process_cached("identity.standin_idps", StandinIdps)
