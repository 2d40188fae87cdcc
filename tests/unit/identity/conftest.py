"""A provider on memory storage with real keys (SM2 for the platform, ES256 for relying parties), real
field encryption and the real audit log; a fixed, settable clock."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

import pytest
from bianjie.identity.archive import Archive
from bianjie.identity.clients import Client, ClientRegistry
from bianjie.identity.launch import EntryRegistry, Launcher
from bianjie.identity.provider import BackchannelSender, Provider, Signers
from bianjie.identity.store import IdentityStore
from bianjie.identity.upstream import UpstreamIdentity
from bianjie.kit.audit import AuditLog
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.fieldcrypt import BlindIndex, FieldCipher
from bianjie.kit.keys import LocalKeyPort
from bianjie.kit.queues import MemoryQueues
from bianjie.kit.tables import table_spec
from bianjie.kit.tokenkeys import LocalTokenSigner, PublicKeySet
from bianjie.kit.tokens import TokenIssuer
from bianjie_dev.identity.standin import RESIDENTS

REDIRECT = "https://hospital-a.example/cb"
ISSUER = "https://idp.test/identity/oidc"
LOGOUT_QUEUE = "memory://identity-logout"


class Clock:
    def __init__(self, now: float = 1_790_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class RecordingBackchannel(BackchannelSender):
    sent: list[tuple[str, str]] = field(default_factory=list)
    status: int = 200

    def send(self, uri: str, logout_token: str) -> int:
        self.sent.append((uri, logout_token))
        return self.status


@dataclass
class World:
    provider: Provider
    store: IdentityStore
    clock: Clock
    secret: str
    backchannel: RecordingBackchannel
    audit: AuditLog
    launcher: Launcher
    entries: EntryRegistry
    queues: MemoryQueues = field(default_factory=MemoryQueues)

    def deliver_logouts(self) -> list[int]:
        """What TokenIssueFunction does with the logout queue: sign and send each notice (then drained)."""
        from bianjie.identity.provider import LogoutNotice

        notices = self.queues.bodies(LOGOUT_QUEUE)
        self.queues.sent.pop(LOGOUT_QUEUE, None)
        return [self.provider.send_logout_token(LogoutNotice.model_validate(n)) for n in notices]

    def resident(self, key: str = "zhangsan", upstream: str = "suishenban") -> UpstreamIdentity:
        r = next(r for r in RESIDENTS if r.key == key)
        if upstream in ("wechat", "alipay"):
            return UpstreamIdentity(upstream=upstream, subject=r.wechat_unionid, level="rn1")  # type: ignore[arg-type]
        return UpstreamIdentity(upstream=upstream, subject=r.key, level="rn3", id_number=r.id_number, name=r.name)  # type: ignore[arg-type]

    def authorize(self, client_id: str = "hospital-a", **over: str) -> tuple[dict[str, str], str]:
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": REDIRECT,
            "scope": "openid profile",
            "state": "st",
            "nonce": "nn",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **over,
        }
        return params, verifier

    def code(self, identity: UpstreamIdentity | None = None, client_id: str = "hospital-a") -> tuple[str, str, str]:
        """A code through login and consent; (code, verifier, session cookie)."""
        from urllib.parse import parse_qs, urlsplit

        params, verifier = self.authorize(client_id)
        start = self.provider.begin(params, None)
        req = parse_qs(urlsplit(start.location).query)["req"][0]
        answer = self.provider.complete_login(req, identity or self.resident(), start.login_cookie)
        assert not isinstance(answer, tuple)
        cookie = answer.set_cookie
        assert cookie
        if answer.location.startswith("/identity/consent"):
            answer = self.provider.consent(req, cookie, True, start.login_cookie)
        code = parse_qs(urlsplit(answer.location).query)["code"][0]
        return code, verifier, cookie

    def redeem(self, code: str, verifier: str, redirect_uri: str = REDIRECT) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": verifier,
            "redirect_uri": redirect_uri,
        }
        return self.provider.token(form, ("hospital-a", self.secret)).body

    def refresh(self, token: str) -> dict[str, Any]:
        return self.provider.token(
            {"grant_type": "refresh_token", "refresh_token": token}, ("hospital-a", self.secret)
        ).body


@pytest.fixture
def world() -> World:
    clock = Clock()
    spec_id, spec_audit = table_spec("IDENTITY_TABLE", "identity"), table_spec("AUDIT_TABLE", "audit")
    documents = MemoryDocumentStore(spec_id, spec_audit, clock=clock)
    store = IdentityStore(documents, "identity", clock=clock)
    audit = AuditLog(documents, "audit", clock, service="identity")
    archive = Archive(store, FieldCipher(LocalKeyPort(b"k" * 16)), BlindIndex(b"b" * 32), audit)
    clients = ClientRegistry(store)
    secret, digest = clients.new_secret()
    clients.register(
        Client(
            client_id="hospital-a",
            name="A",
            hospital="demo-hospital",
            redirect_uris=(REDIRECT,),
            secret_digest=digest,
            may_exchange=True,
            backchannel_logout_uri="https://a.example/bc",
            post_logout_redirect_uris=("https://a.example/bye",),
        )
    )
    clients.register(
        Client(client_id="hospital-b", name="B", hospital="hospital-b", redirect_uris=("https://b.example/cb",))
    )
    platform, rp = LocalTokenSigner.generate(), LocalTokenSigner.generate("ES256")
    keys = PublicKeySet([platform.public_key, rp.public_key])
    backchannel = RecordingBackchannel()
    queues = MemoryQueues()
    entries = EntryRegistry(store, audit)
    provider = Provider(
        store,
        clients,
        archive,
        audit,
        b"p" * 32,
        keys,
        issuer=ISSUER,
        signers=Signers(TokenIssuer(platform, clock=clock), platform, rp),
        backchannel=backchannel,
        logout_notices=queues.sender(LOGOUT_QUEUE),
        entries=entries,
        clock=clock,
    )
    launcher = Launcher(store, entries, clients, provider, audit)
    return World(provider, store, clock, secret, backchannel, audit, launcher, entries, queues)
