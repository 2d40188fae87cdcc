"""The platform OpenID provider (申康统一认证平台): authorisation code + PKCE, tokens, sessions, logout.

Rules (each has a unit test in tests/unit/identity):
- PKCE S256 is required of every client (RFC 9700 2.1.1); ``plain`` and a missing challenge are refused.
  The verifier is checked with Authlib's ``create_s256_code_challenge``.
- Redirect URIs and post-logout URIs match a registered one exactly, character for character.
- ``state`` is required and echoed; ``nonce`` is echoed in the ID token.
- A code lives 60 s and is used once; a second use revokes the refresh family it started.
- Refresh tokens rotate: each use returns a new one of the same family and spends the old; presenting
  a spent one revokes the whole family (RFC 9700 2.2.2), so a stolen token works at most until its
  rightful holder next refreshes.
- ``sub`` is pairwise per hospital (HMAC-SM3 of the person under the hospital's sector), so two hospitals
  cannot join their users by ``sub``; ``id_ref`` (the blind index every service keys patients by) rides
  in the platform's access token only.
- RFC 8693 token exchange for a confidential client entitled to it: a patient's access token becomes
  one for another hospital, with ``act: {"sub": <client>}`` recording who acts on the patient's behalf (代办).
- Errors answer the RFC code and never tell whether a person, code or session exists.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field

from bianjie.identity import jws
from bianjie.identity.clients import Client, ClientRegistry
from bianjie.identity.errors import OAuthError, invalid_grant, invalid_request
from bianjie.identity.launch import LAUNCH_TICKET_TYPE, TICKET_TTL, issue_ticket
from bianjie.identity.store import IdentityStore, digest
from bianjie.identity.upstream import UpstreamIdentity
from bianjie.kit.crypto import hmac_sm3
from bianjie.kit.documents.port import Cond, ConditionFailed
from bianjie.kit.encoding import b64url
from bianjie.kit.errors import NotFound
from bianjie.kit.tokenkeys import PublicKeySet, TokenSigner
from bianjie.kit.tokens import Kind, TokenIssuer, TokenVerifier

CODE_TTL = 60
REQUEST_TTL = 600
SESSION_TTL = 8 * 3600
ACCESS_TTL = 900
ID_TOKEN_TTL = 900
REFRESH_TTL = 30 * 24 * 3600  # a family's absolute lifetime; rotation does not extend it
SCOPES = frozenset({"openid", "profile", "phone", "id_number", "offline_access"})
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
LAUNCH_PROBE = "urn:bianjie:params:oauth:grant-type:launch-probe"  # the joint-debugging probe's ticket
PROBE_ACR = "urn:bianjie:acr:probe"  # no person: a hospital must refuse to log anyone in with it
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
BACKCHANNEL_EVENT = "http://schemas.openid.net/event/backchannel-logout"
_VERIFIER_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")  # RFC 7636 4.1
_CHALLENGE_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


def s256(verifier: str) -> str:
    from authlib.oauth2.rfc7636 import create_s256_code_challenge

    return str(create_s256_code_challenge(verifier))


@dataclass(frozen=True)
class Signers:
    """The keys only TokenIssueFunction holds: the platform's SM2 issuer and the ES256 key for RPs."""

    platform: TokenIssuer
    platform_signer: TokenSigner
    rp: TokenSigner | None = None

    def for_alg(self, alg: str) -> TokenSigner:
        if alg == "ES256" and self.rp is not None:
            return self.rp
        return self.platform_signer


class LogoutNotice(BaseModel):
    """One back-channel logout to send (the logout queue's message; ids only, no personal data)."""

    model_config = ConfigDict(extra="forbid")

    client_id: str = Field(min_length=1, max_length=128)
    sub: str = Field(min_length=1, max_length=128)
    sid: str = Field(min_length=1, max_length=128)
    iss: str = Field(min_length=1, max_length=512)


class NoticeQueue(Protocol):
    def send(self, payload: Any, delay_seconds: int = 0, attributes: dict[str, str] | None = None) -> str: ...


class BackchannelSender:
    """Sends back-channel logout tokens (the adapter posts them; tests record them)."""

    def send(self, uri: str, logout_token: str) -> int:
        raise NotImplementedError


@dataclass
class Authorized:
    """Where the browser goes next: back to the client, or to a page of ours."""

    location: str
    set_cookie: str | None = None
    # a new authorisation request binds itself to the browser that made it (a cookie of its own), so a
    # callback URL carried to another browser (login CSRF, session fixation) completes nothing there
    login_cookie: str | None = None


@dataclass
class TokenAnswer:
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=lambda: {"Cache-Control": "no-store", "Pragma": "no-cache"})


class Provider:
    def __init__(
        self,
        store: IdentityStore,
        clients: ClientRegistry,
        archive: Any,
        audit: Any,
        pairwise_key: bytes,
        keys: PublicKeySet,
        *,
        issuer: str,
        signers: Signers | None = None,
        backchannel: BackchannelSender | None = None,
        logout_notices: NoticeQueue | None = None,
        entries: Any = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store, self.clients, self.archive, self.audit = store, clients, archive, audit
        self.pairwise_key = pairwise_key
        self.keys = keys
        self.issuer = issuer
        self.signers = signers
        self.backchannel = backchannel
        self.logout_notices = logout_notices
        self.entries = entries
        self.clock = clock

    # -- identifiers ----------------------------------------------------------------------------
    def pairwise_sub(self, person: str, client: Client) -> str:
        return self.pairwise_for(person, client.hospital or "platform")

    def pairwise_for(self, person: str, sector: str) -> str:
        """The person's ``sub`` as one sector (a hospital) sees it: stable there, unlinkable elsewhere."""
        return b64url(hmac_sm3(self.pairwise_key, f"{sector}|{person}".encode()))[:32]

    def now(self) -> int:
        return int(self.clock())

    # -- authorisation endpoint -----------------------------------------------------------------
    def check_authorization(self, params: Mapping[str, str]) -> tuple[Client, dict[str, Any]]:
        """Validate an authorisation request. Errors before the redirect URI is proven are not redirectable."""
        client = self.clients.get(params.get("client_id") or "")
        if client is None:
            raise OAuthError("invalid_request", "unknown client_id", redirectable=False)
        redirect_uri = params.get("redirect_uri") or ""
        if redirect_uri not in client.redirect_uris:  # exact match: no prefix, no normalisation
            raise OAuthError("invalid_request", "redirect_uri is not registered for this client", redirectable=False)
        if params.get("response_type") != "code":
            raise OAuthError("unsupported_response_type", "only response_type=code is supported")
        scopes = set((params.get("scope") or "").split())
        if "openid" not in scopes:
            raise OAuthError("invalid_scope", "scope must include openid")
        if not scopes <= SCOPES:
            raise OAuthError("invalid_scope", f"unknown scope: {' '.join(sorted(scopes - SCOPES))}")
        if "id_number" in scopes and not client.may_receive_id_number:
            raise OAuthError("invalid_scope", "this client is not entitled to the id_number scope")
        state = params.get("state") or ""
        if not state or len(state) > 512:
            raise invalid_request("state is required (at most 512 characters)")
        if params.get("code_challenge_method") != "S256":
            raise invalid_request("PKCE is required: code_challenge_method=S256")
        challenge = params.get("code_challenge") or ""
        if not _CHALLENGE_RE.fullmatch(challenge):
            raise invalid_request("code_challenge must be the base64url SHA-256 of the verifier (43 characters)")
        nonce = params.get("nonce") or ""
        if len(nonce) > 512:
            raise invalid_request("nonce is too long")
        request = {
            "client_id": client.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(sorted(scopes)),
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge,
            "prompt": params.get("prompt") or "",
        }
        return client, request

    def error_redirect(self, redirect_uri: str, error: OAuthError, state: str | None) -> str:
        query = {"error": error.error, "error_description": error.description}
        if state:
            query["state"] = state
        return _with_query(redirect_uri, query)

    def begin(self, params: Mapping[str, str], session_cookie: str | None) -> Authorized:
        """GET /authorize: a code at once for a live session that already consented; else the login page."""
        client, request = self.check_authorization(params)
        session = self.session(session_cookie)
        if session and request["prompt"] != "login" and self._may_skip_login(client, session):
            return Authorized(self._issue_code(client, request, session))
        if request["prompt"] == "none":  # OIDC Core 3.1.2.6: no page may be shown
            error = "consent_required" if session else "login_required"
            raise OAuthError(error, "the person must log in or consent interactively")
        req_id = secrets.token_urlsafe(18)
        browser = secrets.token_urlsafe(18)
        self.store.put(
            {
                "pk": f"req#{req_id}",
                "sk": "req",
                **request,
                "browser": digest(browser),
                "expires_at": self.now() + REQUEST_TTL,
            }
        )
        return Authorized(f"/identity/login?{urlencode({'req': req_id})}", login_cookie=browser)

    def pending(self, req_id: str, browser: str | None) -> tuple[Client, dict[str, Any]]:
        """The pending request ``req_id``, only for the browser that started it."""
        record = self.store.get(f"req#{req_id}", "req") if req_id and len(req_id) < 64 else None
        client = self.clients.get(record["client_id"]) if record else None
        if record is not None and not secrets.compare_digest(record.get("browser", ""), digest(browser or "")):
            record = None
        if record is None or client is None:
            raise OAuthError(
                "invalid_request", "the login request expired; start again from the app", redirectable=False
            )
        return client, record

    def _may_skip_login(self, client: Client, session: dict[str, Any]) -> bool:
        if client.staff != (session["kind"] == "staff"):
            return False
        if session["kind"] == "staff":
            return bool(client.hospital and client.hospital in (session.get("hospital_roles") or {}))
        return self.has_consent(session["person_id"], client)

    # -- login completion -----------------------------------------------------------------------
    def complete_login(
        self, req_id: str, identity: UpstreamIdentity, browser: str | None
    ) -> Authorized | tuple[str, dict[str, Any]]:
        """After the upstream vouched: the session, then consent (patients) and the code.

        Returns ``("link", request)`` when the account carries no ID number and is not linked (the page
        asks for one real-name login, after which the account is linked), or ``("consent", request)``.
        """
        client, request = self.pending(req_id, browser)
        if identity.level == "staff":
            if not client.staff:
                raise OAuthError("access_denied", "staff log in through the staff entry", redirectable=True)
            if not client.hospital or client.hospital not in identity.hospital_roles:
                raise OAuthError("access_denied", "no roles at this hospital")
            cookie, session = self._new_session(None, identity)
        else:
            if client.staff:
                raise OAuthError("access_denied", "this entry is for hospital staff")
            person = self.archive.resolve(identity)
            link = request.get("link_account")
            if person is None:
                self.store.put(
                    dict(
                        request,
                        pk=f"req#{req_id}",
                        sk="req",
                        link_account={"upstream": identity.upstream, "subject": identity.subject},
                        expires_at=self.now() + REQUEST_TTL,
                    )
                )
                return ("link", request)
            if link and identity.id_number:  # the real-name login that links the pending channel account
                self.archive.link_account(person, link["upstream"], link["subject"])
                self.audit.record(
                    actor=f"patient:{person}",
                    action="identity.account.link",
                    resource=f"identity.person:{person}",
                    details={"upstream": link["upstream"]},
                )
            cookie, session = self._new_session(person, identity)
        self.store.delete(f"req#{req_id}", "req")
        self.audit.record(
            actor=_session_actor(session),
            action="identity.login",
            resource=f"identity.client:{client.client_id}",
            details={"upstream": identity.upstream, "acr": identity.acr},
        )
        if session["kind"] == "patient" and not self.has_consent(session["person_id"], client):
            self.store.put(dict(request, pk=f"req#{req_id}", sk="req", expires_at=self.now() + REQUEST_TTL))
            return Authorized(f"/identity/consent?{urlencode({'req': req_id})}", set_cookie=cookie)
        return Authorized(self._issue_code(client, request, session), set_cookie=cookie)

    def consent(self, req_id: str, session_cookie: str | None, approve: bool, browser: str | None) -> Authorized:
        client, request = self.pending(req_id, browser)
        session = self.session(session_cookie)
        if session is None or session["kind"] != "patient":
            raise OAuthError("login_required", "the session ended; log in again", redirectable=False)
        self.store.delete(f"req#{req_id}", "req")
        self.audit.record(
            actor=_session_actor(session),
            action="identity.consent",
            resource=f"identity.client:{client.client_id}",
            outcome="success" if approve else "denied",
            details={"hospital": client.hospital, "scope": request["scope"]},
        )
        if not approve:
            return Authorized(
                self.error_redirect(
                    request["redirect_uri"], OAuthError("access_denied", "the person declined"), request["state"]
                )
            )
        self.store.put(
            {
                "pk": f"consent#{session['person_id']}",
                "sk": client.hospital or "platform",
                "scope": request["scope"],
                "at": self.now(),
            }
        )
        return Authorized(self._issue_code(client, request, session))

    def has_consent(self, person: str, client: Client) -> bool:
        return self.has_consent_at(person, client.hospital or "platform")

    def has_consent_at(self, person: str, hospital: str) -> bool:
        return self.store.get(f"consent#{person}", hospital) is not None

    def grant_consent(self, actor: Any, person: str, hospital: str, patient_ref: str) -> int:
        """The person agrees, on the entry page, to share their identity with ``hospital`` (the same record
        the consent page writes, so the hospital's own OIDC login does not ask again). Returns when;
        ``ENTRY_NOT_FOUND`` for a hospital without a registered entry."""
        if self.entries is None:
            raise RuntimeError("the provider was built without the entry registry")
        self.entries.get(hospital)
        now = self.now()
        self.store.put({"pk": f"consent#{person}", "sk": hospital, "scope": "openid", "at": now, "via": "entry"})
        self.audit.record(
            actor=actor,
            action="identity.consent",
            resource=f"identity.entry:{hospital}",
            patient_ref=patient_ref,
            details={"hospital": hospital, "via": "entry"},
        )
        return now

    def consents(self, person: str) -> list[dict[str, Any]]:
        """The hospitals the person agreed to share their identity with (hospital, when, where)."""
        return [
            {"hospital": r["sk"], "at": int(r.get("at") or 0), "via": str(r.get("via") or "login")}
            for r in self.store.query(f"consent#{person}", limit=500)
        ]

    def withdraw_consent(self, actor: Any, person: str, hospital: str, patient_ref: str) -> int:
        """The person withdraws what they agreed to share with ``hospital`` (entry page or consent page).

        The record goes, so from now on: a launch into the hospital answers ``consent_required`` and its
        ticket exchange is ``invalid_grant``; the hospital's RFC 8693 exchange for this person is
        ``invalid_grant``; its ``prompt=none`` authorisation is ``consent_required``; and each refresh
        token family of the hospital's clients dies at its next use (``_refresh_grant`` checks consent).
        ``CONSENT_NOT_FOUND`` when there is nothing to withdraw; audited as ``identity.consent.withdraw``."""
        record = self.store.get(f"consent#{person}", hospital)
        if record is None:
            raise NotFound("您没有授权过这家医院", code="CONSENT_NOT_FOUND")
        now = self.now()
        self.store.delete(f"consent#{person}", hospital)
        self.audit.record(
            actor=actor,
            action="identity.consent.withdraw",
            resource=f"identity.entry:{hospital}",
            patient_ref=patient_ref,
            details={"hospital": hospital, "granted_at": int(record.get("at") or 0), "via": record.get("via")},
        )
        return now

    # -- sessions -------------------------------------------------------------------------------
    def _new_session(self, person: str | None, identity: UpstreamIdentity) -> tuple[str, dict[str, Any]]:
        cookie = secrets.token_urlsafe(32)
        sid = secrets.token_urlsafe(12)
        now = self.now()
        session = {
            "pk": f"session#{digest(cookie)}",
            "sk": "session",
            "sid": sid,
            "kind": "staff" if identity.level == "staff" else "patient",
            "person_id": person,
            "staff_id": identity.subject if identity.level == "staff" else None,
            "hospital_roles": {h: list(r) for h, r in identity.hospital_roles.items()},
            "acr": identity.acr,
            "amr": [identity.upstream],
            "auth_time": now,
            "clients": [],
            "families": [],
            "expires_at": now + SESSION_TTL,
        }
        self.store.put(session)
        self.store.put(
            {"pk": f"sid#{sid}", "sk": "sid", "cookie_digest": digest(cookie), "expires_at": now + SESSION_TTL}
        )
        return cookie, session

    def session(self, cookie: str | None) -> dict[str, Any] | None:
        if not cookie or len(cookie) > 128:
            return None
        return self.store.get(f"session#{digest(cookie)}", "session")

    def _session_by_sid(self, sid: str) -> dict[str, Any] | None:
        pointer = self.store.get(f"sid#{sid}", "sid")
        return self.store.get(f"session#{pointer['cookie_digest']}", "session") if pointer else None

    def _remember(self, session: dict[str, Any], client_id: str | None = None, family: str | None = None) -> None:
        changed = dict(session)
        if client_id and client_id not in changed["clients"]:
            changed["clients"] = [*changed["clients"], client_id]
        if family:
            changed["families"] = [*changed["families"], family][-50:]
        if changed != session:
            self.store.put(changed)
            session.update(changed)

    # -- codes ----------------------------------------------------------------------------------
    def _issue_code(self, client: Client, request: Mapping[str, Any], session: dict[str, Any]) -> str:
        code = secrets.token_urlsafe(32)
        self.store.put(
            {
                "pk": f"code#{digest(code)}",
                "sk": "code",
                "client_id": client.client_id,
                "redirect_uri": request["redirect_uri"],
                "scope": request["scope"],
                "nonce": request.get("nonce") or "",
                "code_challenge": request["code_challenge"],
                "session": session["pk"],
                "expires_at": self.now() + CODE_TTL,
            }
        )
        self._remember(session, client_id=client.client_id)
        return _with_query(request["redirect_uri"], {"code": code, "state": request["state"]})

    # -- token endpoint -------------------------------------------------------------------------
    def token(self, form: Mapping[str, str], basic: tuple[str, str] | None) -> TokenAnswer:
        if basic and form.get("client_secret"):
            raise invalid_request("use one client authentication method")
        client_id, secret = basic if basic else (form.get("client_id"), form.get("client_secret"))
        if basic and form.get("client_id") and form["client_id"] != basic[0]:
            raise invalid_request("client_id differs from the authenticated client")
        client = self.clients.authenticate(client_id, secret)
        grant = form.get("grant_type")
        if grant == "authorization_code":
            return self._code_grant(client, form)
        if grant == "refresh_token":
            return self._refresh_grant(client, form)
        if grant == TOKEN_EXCHANGE:
            return self._exchange_grant(client, form)
        if grant == LAUNCH_PROBE:
            return self._probe_ticket_grant(client, form)
        raise OAuthError(
            "unsupported_grant_type", "grant_type must be authorization_code, refresh_token or token-exchange"
        )

    def _code_grant(self, client: Client, form: Mapping[str, str]) -> TokenAnswer:
        code = form.get("code") or ""
        verifier = form.get("code_verifier") or ""
        if not code or len(code) > 128:
            raise invalid_request("code is required")
        if not _VERIFIER_RE.fullmatch(verifier):
            raise invalid_request("code_verifier is required (43-128 unreserved characters)")
        key = digest(code)
        record = self.store.get(f"code#{key}", "code")
        if record is None:
            raise invalid_grant()
        if not self.store.put_new({"pk": f"code#{key}", "sk": "used", "expires_at": self.now() + REFRESH_TTL}):
            self._revoke_family(f"f-{key[:24]}", "code reused")  # RFC 6749 4.1.2: revoke what it issued
            raise invalid_grant()
        if record["client_id"] != client.client_id or record["redirect_uri"] != form.get("redirect_uri"):
            raise invalid_grant()
        if not secrets.compare_digest(s256(verifier), record["code_challenge"]):
            raise invalid_grant("PKCE verification failed")
        session = self.store.get(record["session"], "session")
        if session is None:
            raise invalid_grant()
        return self._tokens(client, session, record["scope"], record.get("nonce") or "", family=f"f-{key[:24]}")

    def _tokens(
        self,
        client: Client,
        session: dict[str, Any],
        scope: str,
        nonce: str,
        *,
        family: str,
        id_token: bool = True,
        known: dict[str, Any] | None = None,
    ) -> TokenAnswer:
        signers = self._signers()
        now = self.now()
        sub, kind, roles, hospital, extra = self._subject(client, session)
        extra.update({"acr": session["acr"], "sid": session["sid"], "client_id": client.client_id, "scope": scope})
        access = signers.platform.issue(sub, kind, roles, ttl_seconds=ACCESS_TTL, hospital=hospital, **extra)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": ACCESS_TTL,
            "scope": scope,
        }
        if id_token and "openid" in scope.split():
            claims = {
                "iss": self.issuer,
                "sub": sub,
                "aud": client.client_id,
                "iat": now,
                "exp": now + ID_TOKEN_TTL,
                "auth_time": session["auth_time"],
                "acr": session["acr"],
                "amr": session["amr"],
                "sid": session["sid"],
                "azp": client.client_id,
            }
            if nonce:
                claims["nonce"] = nonce
            if hospital:
                claims["hospital"] = hospital
            if kind == "staff":
                claims["roles"] = list(roles)
            body["id_token"] = jws.sign(signers.for_alg(client.id_token_alg), claims)
        # every login may refresh (short access tokens need it); the family dies with the session
        body["refresh_token"] = self._new_refresh(client, session, scope, family, known)
        self.audit.record(
            actor=_session_actor(session),
            action="identity.token",
            resource=f"identity.client:{client.client_id}",
            details={"family": family},
        )
        return TokenAnswer(body)

    def _signers(self) -> Signers:
        if self.signers is None:
            raise RuntimeError("this function holds no signing key (only TokenIssueFunction mints)")
        return self.signers

    def _subject(
        self, client: Client, session: dict[str, Any]
    ) -> tuple[str, Kind, tuple[str, ...], str | None, dict[str, Any]]:
        if session["kind"] == "staff":
            roles = tuple((session.get("hospital_roles") or {}).get(client.hospital or "", ()))
            return session["staff_id"], "staff", roles, client.hospital, {}
        person = session["person_id"]
        record = self.archive.record(person)
        return self.pairwise_sub(person, client), "patient", (), client.hospital, {"id_ref": record["id_ref"]}

    # -- refresh tokens -------------------------------------------------------------------------
    def _new_refresh(
        self, client: Client, session: dict[str, Any], scope: str, family: str, known: dict[str, Any] | None
    ) -> str:
        """A refresh token of ``family``; the family is created on a code's redemption (``known`` is None)
        and only read on a rotation, which already holds it."""
        now = self.now()
        expires = int(known["expires_at"]) if known else now + REFRESH_TTL
        if known is None:
            record = {
                "pk": f"family#{family}",
                "sk": "family",
                "client_id": client.client_id,
                "session": session["pk"],
                "revoked": False,
                "expires_at": expires,
            }
            if not self.store.put_new(record):
                raise invalid_grant()  # the code's family exists already: the code was used
            self._remember(session, family=family)
        token = f"rt.{secrets.token_urlsafe(32)}"
        self.store.put(
            {
                "pk": f"rt#{digest(token)}",
                "sk": "rt",
                "family": family,
                "client_id": client.client_id,
                "scope": scope,
                "used": False,
                "expires_at": expires,
            }
        )
        return token

    def _refresh_grant(self, client: Client, form: Mapping[str, str]) -> TokenAnswer:
        token = form.get("refresh_token") or ""
        if not token or len(token) > 128:
            raise invalid_request("refresh_token is required")
        key = f"rt#{digest(token)}"
        record = self.store.get(key, "rt")
        if record is None or record["client_id"] != client.client_id:
            raise invalid_grant()
        family = self.store.get(f"family#{record['family']}", "family")
        if family is None or family.get("revoked"):
            raise invalid_grant()
        try:
            self.store.put(dict(record, used=True, used_at=self.now()), condition=Cond.eq("used", False))
        except ConditionFailed:
            self._revoke_family(record["family"], "refresh token reused")
            raise invalid_grant() from None
        session = self.store.get(family["session"], "session")
        if session is None:
            self._revoke_family(record["family"], "session ended")
            raise invalid_grant()
        if (
            session["kind"] == "patient"
            and session.get("person_id")
            and not self.has_consent(session["person_id"], client)
        ):
            self._revoke_family(record["family"], "consent withdrawn")
            raise invalid_grant()
        scope = record["scope"]
        if form.get("scope"):
            asked = set(form["scope"].split())
            if not asked <= set(scope.split()):
                raise OAuthError("invalid_scope", "a refresh cannot widen the scope")
            scope = " ".join(sorted(asked))
        return self._tokens(
            client, session, scope, "", family=record["family"], id_token="openid" in scope.split(), known=family
        )

    def _revoke_family(self, family: str, reason: str) -> None:
        record = self.store.get(f"family#{family}", "family")
        if record is None or record.get("revoked"):
            return
        self.store.put(dict(record, revoked=True, revoked_reason=reason, revoked_at=self.now()))
        self.audit.record(
            actor="system:identity",
            action="identity.refresh.revoke",
            resource=f"identity.family:{family}",
            outcome="denied",
            details={"reason": reason},
        )

    def family_revoked(self, family: str) -> bool:
        record = self.store.get(f"family#{family}", "family")
        return bool(record is None or record.get("revoked"))

    # -- token exchange (RFC 8693) --------------------------------------------------------------
    def _exchange_grant(self, client: Client, form: Mapping[str, str]) -> TokenAnswer:
        if form.get("requested_token_type") == LAUNCH_TICKET_TYPE:
            return self._launch_ticket_grant(client, form)
        if not client.confidential or not client.may_exchange:
            raise OAuthError("unauthorized_client", "this client may not exchange tokens")
        if form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            raise invalid_request("subject_token_type must be an access token")
        if form.get("requested_token_type") not in (None, "", ACCESS_TOKEN_TYPE):
            raise invalid_request("only access tokens are issued")
        try:
            subject = TokenVerifier(self.keys, clock=self.clock).verify(form.get("subject_token"))
        except Exception:
            raise OAuthError("invalid_grant", "the subject token is not valid") from None
        if subject.kind != "patient" or not subject.extra.get("id_ref"):
            raise OAuthError("invalid_grant", "only a patient's token can be exchanged")
        audience = form.get("audience") or form.get("resource") or ""
        target = self.clients.get(audience)
        if target is None:
            raise OAuthError("invalid_target", "audience names no registered client")
        person = self.archive.person_of_ref(str(subject.extra["id_ref"]))
        if person is None or not self.has_consent(person, target):
            raise OAuthError("invalid_grant", "the patient has not consented to that hospital")
        act: dict[str, Any] = {"sub": client.client_id}
        if subject.extra.get("act"):
            act["act"] = subject.extra["act"]  # RFC 8693 4.1: the chain of earlier actors nests
        extra = {
            "id_ref": subject.extra["id_ref"],
            "acr": subject.extra.get("acr"),
            "act": act,
            "client_id": target.client_id,
            "scope": "openid",
        }
        token = self._signers().platform.issue(
            self.pairwise_sub(person, target), "patient", (), ttl_seconds=300, hospital=target.hospital, **extra
        )
        self.audit.record(
            actor=f"partner:{client.client_id}",
            action="identity.token.exchange",
            resource=f"identity.client:{target.client_id}",
            patient_ref=str(subject.extra["id_ref"]),
        )
        return TokenAnswer(
            {"access_token": token, "issued_token_type": ACCESS_TOKEN_TYPE, "token_type": "Bearer", "expires_in": 300}
        )

    def _launch_ticket_grant(self, client: Client, form: Mapping[str, str]) -> TokenAnswer:
        """RFC 8693 with a launch ticket as the requested type: the person's own access token (issued to
        this very client) becomes a one-time ticket for a hospital they consented to (docs/identity.md 5)."""
        from bianjie.kit.errors import NotFound

        if form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            raise invalid_request("subject_token_type must be an access token")
        channel = form.get("channel") or "h5"
        if channel not in ("h5", "wechat", "alipay", "app"):
            raise invalid_request("channel must be h5, wechat, alipay or app")
        try:
            subject = TokenVerifier(self.keys, clock=self.clock).verify(form.get("subject_token"))
        except Exception:
            raise OAuthError("invalid_grant", "the subject token is not valid") from None
        if subject.kind != "patient" or not subject.extra.get("id_ref"):
            raise OAuthError("invalid_grant", "only a patient's token can be exchanged")
        if subject.extra.get("client_id") != client.client_id:
            raise OAuthError("invalid_grant", "a client exchanges only the tokens issued to it")
        hospital = form.get("audience") or ""
        if self.entries is None:
            raise RuntimeError("the provider was built without the entry registry")
        try:
            self.entries.get(hospital)
        except NotFound:
            raise OAuthError("invalid_target", "audience names no registered hospital entry") from None
        person = self.archive.person_of_ref(str(subject.extra["id_ref"]))
        if person is None or not self.has_consent_at(person, hospital):
            raise OAuthError("invalid_grant", "the patient has not consented to that hospital")
        ticket = issue_ticket(
            self._signers().for_alg("ES256"),
            issuer=self.issuer,
            hospital=hospital,
            sub=self.pairwise_for(person, hospital),
            acr=subject.extra.get("acr"),
            channel=channel,
            now=self.now(),
        )
        self.audit.record(
            actor=f"patient:{person}",
            action="identity.launch.ticket",
            resource=f"identity.entry:{hospital}",
            patient_ref=str(subject.extra["id_ref"]),
            details={"client": client.client_id, "channel": channel},
        )
        return TokenAnswer(
            {
                "access_token": ticket,
                "issued_token_type": LAUNCH_TICKET_TYPE,
                "token_type": "N_A",  # RFC 8693 2.2.1: not an access token
                "expires_in": TICKET_TTL,
            }
        )

    def _probe_ticket_grant(self, client: Client, form: Mapping[str, str]) -> TokenAnswer:
        """The joint-debugging probe (联调实测, ``bianjie.identity.probe``): a hospital's confidential client
        asks for a launch ticket addressed to its own hospital for no person at all (``sub`` ``probe:...``,
        ``acr`` ``urn:bianjie:acr:probe``, which a hospital must never log in), to redeem it as it would a
        real one. Nothing about any person is in it; audited as ``identity.launch.probe``."""
        if not client.confidential or not client.hospital:
            raise OAuthError("unauthorized_client", "only a hospital's confidential client may probe")
        channel = form.get("channel") or "h5"
        if channel not in ("h5", "wechat", "alipay", "app"):
            raise invalid_request("channel must be h5, wechat, alipay or app")
        ticket = issue_ticket(
            self._signers().for_alg("ES256"),
            issuer=self.issuer,
            hospital=client.hospital,
            sub=f"probe:{secrets.token_hex(6)}",
            acr=PROBE_ACR,
            channel=channel,
            now=self.now(),
        )
        self.audit.record(
            actor=f"partner:{client.client_id}",
            action="identity.launch.probe",
            resource=f"identity.entry:{client.hospital}",
            details={"channel": channel},
        )
        return TokenAnswer(
            {
                "access_token": ticket,
                "issued_token_type": LAUNCH_TICKET_TYPE,
                "token_type": "N_A",
                "expires_in": TICKET_TTL,
            }
        )

    # -- userinfo -------------------------------------------------------------------------------
    def userinfo(self, access_token: str | None) -> dict[str, Any]:
        claims = TokenVerifier(self.keys, clock=self.clock).verify(access_token)
        client = self.clients.get(str(claims.extra.get("client_id") or ""))
        if client is None:
            raise OAuthError("invalid_token", "the token was not issued by a login", status=401)
        scope = set(str(claims.extra.get("scope") or "").split())
        info: dict[str, Any] = {"sub": claims.sub, "acr": claims.extra.get("acr")}
        if claims.kind == "staff":
            info.update({"roles": list(claims.roles), "hospital": claims.hospital})
            return info
        person = self.archive.person_of_ref(str(claims.extra.get("id_ref")))
        if person is None:
            raise OAuthError("invalid_token", "the token is not valid", status=401)
        if "profile" in scope:
            info["name"] = self.archive.name(person)
        released = "id_number" in scope and client.may_receive_id_number
        if released:
            info["id_number"] = self.archive.id_number(person)
        self.audit.record(
            actor=f"partner:{client.client_id}",
            action="identity.userinfo",
            resource=f"identity.person:{person}",
            patient_ref=str(claims.extra.get("id_ref")),
            details={"id_number_released": released},
        )
        return info

    # -- logout ---------------------------------------------------------------------------------
    def logout(self, params: Mapping[str, str], session_cookie: str | None) -> str | None:
        """RP-initiated logout; returns where to send the browser (None: our own "logged out" page)."""
        hint = params.get("id_token_hint") or ""
        claims: dict[str, Any] = {}
        if hint:
            try:
                claims = jws.verify(hint, self.keys)
            except jws.BadJws:
                raise invalid_request("id_token_hint is not an ID token of ours") from None
        client = self.clients.get(str(claims.get("aud") or params.get("client_id") or ""))
        redirect = params.get("post_logout_redirect_uri") or ""
        if redirect and (client is None or redirect not in client.post_logout_redirect_uris):
            raise invalid_request("post_logout_redirect_uri is not registered for this client")
        session = self.session(session_cookie) or (
            self._session_by_sid(str(claims["sid"])) if claims.get("sid") else None
        )
        if session is not None:
            self.end_session(session)
        if redirect:
            return _with_query(redirect, {"state": params["state"]} if params.get("state") else {})
        return None

    def end_session(self, session: dict[str, Any]) -> list[str]:
        """End the session and queue one back-channel logout notice per client of it that asked for one.

        Nothing is signed here: the logout route's function holds no key. Each notice (client, pairwise
        ``sub``, ``sid``, issuer) goes to the logout queue, whose consumer is TokenIssueFunction
        (``send_logout_token``): it signs the logout token and posts it, and a slow or absent relying
        party holds up only its own delivery, never the person's logout. Returns the clients queued."""
        notices: list[LogoutNotice] = []
        for client_id in session.get("clients") or []:
            client = self.clients.get(client_id)
            if client is None or not client.backchannel_logout_uri:
                continue
            sub = (
                self.pairwise_sub(session["person_id"], client) if session["kind"] == "patient" else session["staff_id"]
            )
            notices.append(LogoutNotice(client_id=client.client_id, sub=sub, sid=session["sid"], iss=self.issuer))
        if notices and self.logout_notices is None:  # refuse before ending anything, not half-way
            raise RuntimeError("this function has no logout queue (IDENTITY_LOGOUT_QUEUE)")
        for family in session.get("families") or []:
            self._revoke_family(family, "logout")
        self.store.delete(session["pk"], "session")
        self.store.delete(f"sid#{session['sid']}", "sid")
        queued: list[str] = []
        for notice in notices:
            self.logout_notices.send(notice.model_dump())  # type: ignore[union-attr]
            queued.append(notice.client_id)
        self.audit.record(
            actor=_session_actor(session),
            action="identity.logout",
            resource=f"identity.session:{session['sid']}",
            details={"backchannel_queued": queued},
        )
        return queued

    def send_logout_token(self, notice: LogoutNotice) -> int:
        """TokenIssueFunction: sign one back-channel logout token (OIDC Back-Channel Logout 1.0 2.4) and
        post it to the client's current ``backchannel_logout_uri``. A 5xx or no answer raises ``Retry``
        (SQS redelivers, then the DLQ); a 4xx is the relying party's final word and is audited."""
        from bianjie.kit.batch import Retry

        client = self.clients.get(notice.client_id)
        if client is None or not client.backchannel_logout_uri:
            return 0  # the client was removed or stopped asking since the logout
        now = self.now()
        token = jws.sign(
            self._signers().for_alg(client.id_token_alg),
            {
                "iss": notice.iss,
                "aud": client.client_id,
                "iat": now,
                "exp": now + 120,
                "jti": secrets.token_urlsafe(12),
                "sub": notice.sub,
                "sid": notice.sid,
                "events": {BACKCHANNEL_EVENT: {}},
            },
            typ="logout+jwt",
        )
        try:
            status = self.backchannel.send(client.backchannel_logout_uri, token) if self.backchannel else 0
        except OSError as exc:
            raise Retry(f"back-channel logout to {client.client_id} failed: {type(exc).__name__}") from None
        if status == 0 or status >= 500:
            raise Retry(f"back-channel logout to {client.client_id} answered {status}")
        self.audit.record(
            actor="system:identity.logout",
            action="identity.logout.backchannel",
            resource=f"identity.client:{client.client_id}",
            outcome="success" if status < 400 else "failure",
            details={"status": status, "sid": notice.sid},
        )
        return status

    # -- discovery ------------------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        base = self.issuer
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token",
            "userinfo_endpoint": f"{base}/userinfo",
            "jwks_uri": f"{base}/jwks",
            "end_session_endpoint": f"{base}/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "refresh_token", TOKEN_EXCHANGE],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["ES256", "SM2-SM3"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": sorted(SCOPES),
            "claims_supported": ["sub", "acr", "amr", "auth_time", "sid", "name", "id_number", "hospital", "roles"],
            "acr_values_supported": [f"urn:bianjie:acr:{lv}" for lv in ("rn1", "rn2", "rn3", "staff")],
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
            "frontchannel_logout_supported": False,
            "request_parameter_supported": False,
            "authorization_response_iss_parameter_supported": False,
        }

    def jwks(self) -> dict[str, Any]:
        return self.keys.to_jwks()


def _session_actor(session: Mapping[str, Any]) -> str:
    if session["kind"] == "staff":
        return f"staff:{session['staff_id']}"
    return f"patient:{session['person_id']}"


def _with_query(uri: str, query: Mapping[str, str]) -> str:
    if not query:
        return uri
    return f"{uri}{'&' if '?' in uri else '?'}{urlencode(dict(query))}"


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """client_secret_basic (RFC 6749 2.3.1: both parts form-urlencoded before base64)."""
    from urllib.parse import unquote_plus

    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except ValueError:
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401) from None
    user, sep, password = decoded.partition(":")
    if not sep:
        raise OAuthError("invalid_client", "malformed Basic credentials", status=401)
    return unquote_plus(user), unquote_plus(password)
