"""The live joint-debugging probe (联调实测): walks a launch into a hospital for real and says, in Chinese,
where it fails. The configuration self-check (``launch.self_check``) reads the registry; this one calls:

1. the hospital's client credentials (the hospital's engineer types them on the self-check page: only the
   hospital holds them) authenticate at the registry, and the client is the hospital's own;
2. each web target resolves and answers: the entry's H5 address, the App scheme is only shown (no phone
   here), and a mini program cannot be opened outside its container (said so, not claimed);
3. a launch ticket is issued by the token endpoint (the ``launch-probe`` grant: a ticket for no person,
   ``acr`` ``urn:bianjie:acr:probe``) and redeemed once at ``/identity/launch/redeem`` with the same
   credentials, as the hospital's backend would (the probe plays that stand-in relying party), and a
   replay of it is refused;
4. for a hospital that logs in by OIDC, its ``initiate_login_uri`` is called as the platform calls it
   (``iss``, ``login_hint``, ``target_link_uri``) and must send the browser to our ``authorize``
   endpoint with its own ``client_id``, a registered ``redirect_uri`` and PKCE S256; that authorisation
   request is then sent and must reach our login (or answer a code), not an error.

Steps 3 and 4 go over HTTP to the provider's public endpoints, like any relying party: the function that
runs the probe signs nothing. The probe stops at the first failure of a step that later ones need.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

from bianjie.identity.clients import ClientRegistry
from bianjie.identity.errors import OAuthError
from bianjie.identity.launch import Check, EntryRegistry
from bianjie.kit.errors import NotFound

UNREACHABLE = {
    "dns": "域名无法解析（DNS）",
    "tls": "TLS 握手失败（证书或协议）",
    "timeout": "连接超时",
    "refused": "连接被拒绝",
    "network": "网络不可达",
}


class Unreachable(Exception):
    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why

    @property
    def zh(self) -> str:
        return UNREACHABLE.get(self.why, "网络不可达")


@dataclass(frozen=True)
class ProbeAnswer:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), "")

    def json(self) -> dict[str, object]:
        try:
            value = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}


class ProbeHttp(Protocol):
    def request(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProbeAnswer:
        """One request, redirects not followed; ``Unreachable`` when no answer came."""


def _basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode("ascii")
    return {"Authorization": f"Basic {raw}", "Accept": "application/json"}


class LiveProbe:
    def __init__(
        self, entries: EntryRegistry, clients: ClientRegistry, http: ProbeHttp, issuer: str, audit: object
    ) -> None:
        self.entries, self.clients, self.http, self.issuer, self.audit = (
            entries,
            clients,
            http,
            issuer.rstrip("/"),
            audit,
        )

    def run(self, hospital: str, client_id: str, secret: str) -> list[Check]:
        checks: list[Check] = []
        try:
            entry = self.entries.get(hospital)
        except NotFound:
            return [Check(name="入口登记", status="fail", detail="平台尚未登记这家医院的互联网医院入口")]
        # 1. the hospital's credentials
        try:
            client = self.clients.authenticate(client_id, secret)
        except OAuthError:
            return [Check(name="客户端凭据", status="fail", detail="client_id 或密钥不对（invalid_client）")]
        if client.hospital != hospital or not client.confidential:
            return [Check(name="客户端凭据", status="fail", detail=f"客户端 {client.client_id} 不是本院的机密客户端")]
        checks.append(Check(name="客户端凭据", status="ok", detail=f"{client.client_id}（{client.name}）"))
        self.audit.record(  # type: ignore[attr-defined]
            actor=f"partner:{client.client_id}",
            action="identity.entry.probe",
            resource=f"identity.entry:{hospital}",
            details={"client": client.client_id},
        )
        # 2. the targets
        if entry.h5_url:
            checks.append(self._reachable("目标：H5 地址", entry.h5_url))
        if entry.wechat or entry.alipay:
            checks.append(
                Check(name="目标：小程序", status="warn", detail="小程序只能在微信/支付宝容器中打开，本页不能实测")
            )
        # 3. a ticket issued and redeemed, a replay refused
        checks.extend(self._ticket(client_id, secret, hospital))
        # 4. OIDC third-party-initiated login
        if client.initiate_login_uri:
            checks.extend(
                self._initiated_login(client.client_id, client.initiate_login_uri, client.redirect_uris, entry.h5_url)
            )
        return checks

    def _reachable(self, name: str, url: str) -> Check:
        try:
            answer = self.http.request("GET", url)
        except Unreachable as exc:
            return Check(name=name, status="fail", detail=f"{url}：{exc.zh}")
        if answer.status >= 500:
            return Check(name=name, status="fail", detail=f"{url}：医院服务器错误 HTTP {answer.status}")
        if answer.status >= 400:
            return Check(
                name=name, status="warn", detail=f"{url}：HTTP {answer.status}（页面可达但拒绝了未登录的访问）"
            )
        return Check(name=name, status="ok", detail=f"{url}：HTTP {answer.status}")

    def _ticket(self, client_id: str, secret: str, hospital: str) -> list[Check]:
        try:
            issued = self.http.request(
                "POST",
                f"{self.issuer}/token",
                form={"grant_type": "urn:bianjie:params:oauth:grant-type:launch-probe", "channel": "h5"},
                headers=_basic(client_id, secret),
            )
        except Unreachable as exc:
            return [Check(name="票据签发", status="fail", detail=f"令牌端点 {self.issuer}/token：{exc.zh}")]
        ticket = issued.json().get("access_token")
        if issued.status != 200 or not isinstance(ticket, str):
            error = issued.json().get("error") or f"HTTP {issued.status}"
            return [Check(name="票据签发", status="fail", detail=f"令牌端点拒绝签发：{error}")]
        checks = [Check(name="票据签发", status="ok", detail="令牌端点签发了一次性票据（60 秒，单次有效）")]
        redeem = f"{self.issuer.rsplit('/oidc', 1)[0]}/launch/redeem"
        try:
            first = self.http.request("POST", redeem, form={"ticket": ticket}, headers=_basic(client_id, secret))
            replay = self.http.request("POST", redeem, form={"ticket": ticket}, headers=_basic(client_id, secret))
        except Unreachable as exc:
            return [*checks, Check(name="票据兑换", status="fail", detail=f"{redeem}：{exc.zh}")]
        if first.status != 200 or first.json().get("aud") != hospital:
            error = first.json().get("error") or f"HTTP {first.status}"
            return [*checks, Check(name="票据兑换", status="fail", detail=f"用本院凭据兑换失败：{error}")]
        checks.append(Check(name="票据兑换", status="ok", detail=f"模拟医院后台兑换成功（aud = {hospital}）"))
        refused = replay.status == 400 and replay.json().get("error") == "invalid_grant"
        checks.append(
            Check(
                name="票据防重放",
                status="ok" if refused else "fail",
                detail="同一票据第二次兑换被拒绝（invalid_grant）"
                if refused
                else f"重放未被拒绝：HTTP {replay.status}",
            )
        )
        return checks

    def _initiated_login(
        self, client_id: str, initiate: str, redirect_uris: tuple[str, ...], target: str | None
    ) -> list[Check]:
        params = {"iss": self.issuer, "login_hint": "probe", "target_link_uri": target or initiate}
        url = f"{initiate}{'&' if '?' in initiate else '?'}{urlencode(params)}"
        name = "第三方发起登录"
        try:
            answer = self.http.request("GET", url)
        except Unreachable as exc:
            return [Check(name=name, status="fail", detail=f"initiate_login_uri {initiate}：{exc.zh}")]
        location = answer.header("Location")
        if answer.status not in (302, 303) or not location:
            return [
                Check(
                    name=name,
                    status="fail",
                    detail=f"initiate_login_uri 应重定向到平台授权端点，实为 HTTP {answer.status}",
                )
            ]
        where = urlsplit(location)
        if f"{where.scheme}://{where.netloc}{where.path}" != f"{self.issuer}/authorize":
            return [
                Check(
                    name=name,
                    status="fail",
                    detail=f"重定向到了 {where.scheme}://{where.netloc}{where.path}，应为 {self.issuer}/authorize",
                )
            ]
        query = {k: v[0] for k, v in parse_qs(where.query).items()}
        problems = []
        if query.get("client_id") != client_id:
            problems.append(f"client_id 应为 {client_id}")
        if query.get("redirect_uri") not in redirect_uris:
            problems.append("redirect_uri 不是登记的回调地址")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            problems.append("缺少 PKCE S256")
        if not query.get("state"):
            problems.append("缺少 state")
        if problems:
            return [Check(name=name, status="fail", detail="医院发起的授权请求不对：" + "；".join(problems))]
        checks = [
            Check(
                name=name, status="ok", detail="医院把浏览器送到平台授权端点（client_id、回调地址、PKCE、state 均正确）"
            )
        ]
        try:
            authorize = self.http.request("GET", location)
        except Unreachable as exc:
            return [*checks, Check(name="授权端点", status="fail", detail=exc.zh)]
        goes = authorize.header("Location")
        ok = authorize.status in (302, 303) and ("/identity/login" in goes or "code=" in goes)
        checks.append(
            Check(
                name="授权端点",
                status="ok" if ok else "fail",
                detail="授权请求被接受，浏览器将到平台登录（已登录则直接带回授权码）"
                if ok
                else f"授权请求被拒绝：HTTP {authorize.status} {authorize.json().get('error') or ''}",
            )
        )
        return checks
