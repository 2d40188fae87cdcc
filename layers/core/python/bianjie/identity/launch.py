"""The address-access service (互联网医院地址接入服务): each hospital's entry per channel, and the launch.

The registry (``entry#<hospital>``, managed by platform staff) holds an internet hospital's entry for
each channel: the H5 URL, the WeChat mini program (appId, path), the Alipay mini program (appId, page)
and the App's scheme. ``GET /identity/launch/{hospital}?channel=...`` answers the target for the
channel the person came from, plus how they arrive logged in:
- a hospital that is an OIDC relying party with an ``initiate_login_uri``: third-party-initiated login
  (OIDC Core 4: ``iss``, ``login_hint``, ``target_link_uri``); it then runs its own code flow with us;
- otherwise a one-time launch ticket: a JWS (``aud`` = the hospital, ``jti``, 60 s, ``acr``, the
  hospital's pairwise ``sub``), which the hospital redeems once at ``POST /identity/launch/redeem``
  (the replay check: the ``jti`` is recorded on first redemption, a second one is refused).
  The launch route signs nothing (only TokenIssueFunction holds a key): its answer says how to get the
  ticket, an RFC 8693 exchange at the token endpoint (``requested_token_type`` = ``LAUNCH_TICKET_TYPE``,
  ``audience`` = the hospital, the person's own access token as ``subject_token``), which
  ``Provider`` answers with ``issue_ticket``.
Either way the person first consents to share their identity with the hospital (``consent#<person>``,
the record the provider's consent page writes too); without it the answer is ``consent_required``.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Literal
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from bianjie.identity import jws
from bianjie.identity.clients import ClientRegistry
from bianjie.identity.errors import OAuthError, invalid_grant
from bianjie.identity.store import IdentityStore
from bianjie.kit.actor import Actor
from bianjie.kit.errors import NotFound
from bianjie.kit.tokenkeys import PublicKeySet, TokenSigner

Channel = Literal["h5", "wechat", "alipay", "app"]
TICKET_TTL = 60
TICKET_TYP = "launch+jwt"
LAUNCH_TICKET_TYPE = "urn:bianjie:params:oauth:token-type:launch-ticket"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


class MiniProgram(BaseModel):
    model_config = ConfigDict(extra="forbid")

    app_id: str = Field(min_length=1, max_length=64)
    path: str = Field(min_length=1, max_length=256)


class Entry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hospital: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=100)
    client_id: str | None = Field(default=None, description="the hospital's OIDC client, when it is one")
    h5_url: str | None = Field(default=None, pattern=r"^https?://")
    wechat: MiniProgram | None = None
    alipay: MiniProgram | None = None
    app_scheme: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9+.-]*://")
    services: tuple[str, ...] = Field(default=(), description="云影像, 先诊疗后付费 ... shown on the entry page")


class TicketExchange(BaseModel):
    """How to get the launch ticket: an RFC 8693 token exchange at the token endpoint (form fields)."""

    token_endpoint: str
    grant_type: str = TOKEN_EXCHANGE
    subject_token_type: str = ACCESS_TOKEN_TYPE
    requested_token_type: str = LAUNCH_TICKET_TYPE
    audience: str = Field(description="the hospital")
    channel: Channel


class LaunchAnswer(BaseModel):
    hospital: str
    name: str = ""
    channel: Channel
    mode: Literal["oidc_initiated", "ticket"]
    consent_required: bool = Field(
        default=False, description="the person has not yet agreed to share their identity with the hospital"
    )
    target: dict[str, str] = Field(description="url (h5, app) or app_id + path (mini programs)")
    exchange: TicketExchange | None = Field(default=None, description="ticket mode: how to get the ticket")
    expires_in: int | None = Field(default=None, description="ticket mode: the ticket's lifetime, seconds")


class EntryRegistry:
    def __init__(self, store: IdentityStore, audit: Any) -> None:
        self.store, self.audit = store, audit

    def put(self, actor: Actor, entry: Entry) -> Entry:
        self.store.put({"pk": f"entry#{entry.hospital}", "sk": "entry", **entry.model_dump(mode="json")})
        self.store.put({"pk": "entries", "sk": entry.hospital, "name": entry.name})
        self.audit.record(actor=actor, action="identity.entry.put", resource=f"identity.entry:{entry.hospital}")
        return entry

    def get(self, hospital: str) -> Entry:
        item = self.store.get(f"entry#{hospital}", "entry") if len(hospital) <= 64 else None
        if item is None:
            raise NotFound("没有这家医院的入口", code="ENTRY_NOT_FOUND")
        return Entry.model_validate({k: v for k, v in item.items() if k not in ("pk", "sk")})

    def all(self) -> list[Entry]:
        return [self.get(row["sk"]) for row in self.store.query("entries", limit=200)]


def target_of(entry: Entry, channel: Channel) -> dict[str, str]:
    if channel == "wechat" and entry.wechat:
        return {"app_id": entry.wechat.app_id, "path": entry.wechat.path}
    if channel == "alipay" and entry.alipay:
        return {"app_id": entry.alipay.app_id, "page": entry.alipay.path}
    if channel == "app" and entry.app_scheme:
        return {"url": entry.app_scheme}
    if channel == "h5" and entry.h5_url:
        return {"url": entry.h5_url}
    raise NotFound(f"这家医院没有{channel}渠道的入口", code="CHANNEL_NOT_AVAILABLE")


class Launcher:
    def __init__(
        self, store: IdentityStore, entries: EntryRegistry, clients: ClientRegistry, provider: Any, audit: Any
    ) -> None:
        self.store, self.entries, self.clients, self.provider, self.audit = store, entries, clients, provider, audit

    def launch(self, actor: Actor, claims: Any, hospital: str, channel: Channel) -> LaunchAnswer:
        """Where the person goes for ``channel`` and how they arrive logged in. Signs nothing."""
        entry = self.entries.get(hospital)
        target = target_of(entry, channel)
        client = self.clients.get(entry.client_id) if entry.client_id else None
        person = self.provider.archive.person_of_ref(str(claims.extra.get("id_ref") or ""))
        if person is None:
            raise NotFound("没有这个人的档案", code="PERSON_NOT_FOUND")
        consented = self.provider.has_consent_at(person, hospital)
        oidc = client is not None and bool(client.initiate_login_uri) and channel in ("h5", "app")
        mode: Literal["oidc_initiated", "ticket"] = "oidc_initiated" if oidc else "ticket"
        self.audit.record(
            actor=actor,
            action="identity.launch",
            resource=f"identity.entry:{hospital}",
            patient_ref=claims.extra.get("id_ref"),
            outcome="success" if consented else "denied",
            details={"hospital": hospital, "channel": channel, "mode": mode, "consented": consented},
        )
        answer = LaunchAnswer(
            hospital=hospital, name=entry.name, channel=channel, mode=mode, consent_required=not consented, target={}
        )
        if not consented:
            return answer  # nothing about the person leaves before they agree
        if oidc and client is not None and client.initiate_login_uri:
            query = {
                "iss": self.provider.issuer,
                "login_hint": self.provider.pairwise_sub(person, client),
                "target_link_uri": target.get("url", ""),
            }
            sep = "&" if "?" in client.initiate_login_uri else "?"
            answer.target = {"url": f"{client.initiate_login_uri}{sep}{urlencode(query)}"}
            return answer
        answer.target = target
        answer.exchange = TicketExchange(
            token_endpoint=f"{self.provider.issuer}/token", audience=hospital, channel=channel
        )
        answer.expires_in = TICKET_TTL
        return answer


def issue_ticket(signer: TokenSigner, *, issuer: str, hospital: str, sub: str, acr: Any, channel: str, now: int) -> str:
    """The launch ticket itself (TokenIssueFunction only: the token endpoint's launch-ticket exchange)."""
    return jws.sign(
        signer,
        {
            "iss": issuer,
            "aud": hospital,
            "sub": sub,
            "jti": secrets.token_urlsafe(16),
            "iat": now,
            "exp": now + TICKET_TTL,
            "acr": acr,
            "channel": channel,
        },
        typ=TICKET_TYP,
    )


def redeem(
    store: IdentityStore,
    keys: PublicKeySet,
    clients: ClientRegistry,
    form: dict[str, str],
    basic: tuple[str, str] | None,
    audit: Any,
) -> dict[str, Any]:
    """The hospital's one-time redemption of a launch ticket (its client credentials; aud must be its hospital)."""
    client_id, secret = basic if basic else (form.get("client_id"), form.get("client_secret"))
    client = clients.authenticate(client_id, secret)
    try:
        claims = jws.verify(form.get("ticket") or "", keys, typ=TICKET_TYP)
    except jws.BadJws:
        raise invalid_grant("the ticket is not valid") from None
    now = store.now()
    if claims.get("aud") != client.hospital or not isinstance(claims.get("exp"), int) or claims["exp"] <= now:
        raise invalid_grant("the ticket is not valid")
    jti = str(claims.get("jti") or "")
    if not jti or not store.put_new({"pk": f"ticket#{jti}", "sk": "ticket", "expires_at": int(claims["exp"]) + 60}):
        audit.record(
            actor=f"partner:{client.client_id}",
            action="identity.launch.redeem",
            resource=f"identity.ticket:{jti[:8]}",
            outcome="denied",
            details={"reason": "replay"},
        )
        raise OAuthError("invalid_grant", "the ticket is not valid")
    audit.record(
        actor=f"partner:{client.client_id}", action="identity.launch.redeem", resource=f"identity.ticket:{jti[:8]}"
    )
    return {"sub": claims["sub"], "acr": claims.get("acr"), "channel": claims.get("channel"), "aud": claims["aud"]}


class Check(BaseModel):
    """One line of a hospital's joint-debugging self-check (联调自检)."""

    name: str
    status: Literal["ok", "warn", "fail"]
    detail: str


_WX_APPID = re.compile(r"^wx[0-9a-f]{16}$")
_ALIPAY_APPID = re.compile(r"^\d{16}$")


def self_check(entries: EntryRegistry, clients: ClientRegistry, keys: PublicKeySet, hospital: str) -> list[Check]:
    """Walk what a launch into ``hospital`` needs and say where it fails (no secret is shown)."""
    checks: list[Check] = []
    try:
        entry = entries.get(hospital)
    except NotFound:
        return [
            Check(
                name="入口登记",
                status="fail",
                detail="平台尚未登记这家医院的互联网医院入口（PUT /identity/entries/{hospital}）",
            )
        ]
    checks.append(Check(name="入口登记", status="ok", detail=f"{entry.name}"))
    channels = {
        "H5": (entry.h5_url, lambda v: v.startswith("https://"), "H5 地址须为 https"),
        "微信小程序": (
            entry.wechat.app_id if entry.wechat else None,
            lambda v: bool(_WX_APPID.fullmatch(v)),
            "appId 应为 wx 加 16 位十六进制",
        ),
        "支付宝小程序": (
            entry.alipay.app_id if entry.alipay else None,
            lambda v: bool(_ALIPAY_APPID.fullmatch(v)),
            "appId 应为 16 位数字",
        ),
        "App": (entry.app_scheme, lambda v: "://" in v, "须为 scheme://"),
    }
    for name, (value, valid, rule) in channels.items():
        if not value:
            checks.append(Check(name=f"渠道：{name}", status="warn", detail="未配置：从该渠道进入时会提示没有入口"))
        elif not valid(value):
            checks.append(Check(name=f"渠道：{name}", status="fail", detail=f"{rule}（现为 {value}）"))
        else:
            checks.append(Check(name=f"渠道：{name}", status="ok", detail=value))
    registered = clients.of_hospital(hospital)
    client = clients.get(entry.client_id) if entry.client_id else None
    if entry.client_id and client is None:
        checks.append(Check(name="OIDC 客户端", status="fail", detail=f"入口指向的客户端 {entry.client_id} 未注册"))
    if client is not None:
        mode = "第三方发起登录" if client.initiate_login_uri else "一次性票据"
        checks.append(Check(name="登录方式", status="ok", detail=f"OIDC 客户端 {client.client_id}，{mode}"))
        if client.initiate_login_uri and not client.initiate_login_uri.startswith("https://"):
            checks.append(Check(name="initiate_login_uri", status="fail", detail="须为 https"))
        bad = [u for u in client.redirect_uris if not u.startswith("https://") or "#" in u or "*" in u]
        checks.append(
            Check(
                name="回调地址",
                status="fail" if bad else "ok",
                detail=f"须为 https、不含 # 或通配符：{', '.join(bad)}"
                if bad
                else f"{len(client.redirect_uris)} 个，逐字匹配",
            )
        )
        alg_ok = any(k.alg == client.id_token_alg for k in keys)
        checks.append(
            Check(
                name="ID Token 签名",
                status="ok" if alg_ok else "fail",
                detail=f"{client.id_token_alg}：{'公钥已发布' if alg_ok else '平台未发布该算法的公钥'}",
            )
        )
        checks.append(
            Check(
                name="后端登出",
                status="ok" if client.backchannel_logout_uri else "warn",
                detail=client.backchannel_logout_uri or "未配置 backchannel_logout_uri：用户退出后医院会话不会同步结束",
            )
        )
    redeemers = [c for c in registered if c.confidential]
    needs_tickets = client is None or not client.initiate_login_uri
    if needs_tickets:
        checks.append(
            Check(
                name="票据兑换",
                status="ok" if redeemers else "fail",
                detail=(
                    f"可由 {', '.join(c.client_id for c in redeemers)} 兑换（POST /identity/launch/redeem）"
                    if redeemers
                    else "没有该医院的机密客户端，无法兑换一次性票据"
                ),
            )
        )
    return checks
