"""Identity: the platform OIDC provider, upstream logins, the archive and the address-access service.

One function per route (the stack's convention). TokenIssueFunction is the only one that signs: the
token endpoint (codes, refresh, RFC 8693 exchanges, launch tickets), the logout queue (back-channel
logout tokens, queued by the logout route) and the operators' direct invoke. See docs/identity.md.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import parse_qsl

from bianjie.identity import issuing, pages, wiring
from bianjie.identity.archive import BindCardRequest, PersonView
from bianjie.identity.errors import OAuthError
from bianjie.identity.launch import Entry, LaunchAnswer, redeem
from bianjie.identity.provider import basic_credentials
from bianjie.identity.upstream import UPSTREAMS, UpstreamRefused
from bianjie.kit import deps
from bianjie.kit.config import env
from bianjie.kit.errors import BadRequest, NotFound
from bianjie.kit.standins import use_standin
from bianjie.kit.web import ServiceApp, json_response, validation_details
from chalice import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

FORM = ["application/x-www-form-urlencoded"]
COOKIE = "bj_sid"
LOGIN_COOKIE = "bj_login"


class IdentityApp(ServiceApp):
    """TokenIssueFunction's one handler takes three kinds of event: its HTTP route (the token endpoint),
    SQS batches from the logout queue, and a direct invoke (operators' tools)."""

    def __call__(self, event: Any, context: Any) -> Any:
        if isinstance(event, dict) and "requestContext" not in event and "httpMethod" not in event:
            if isinstance(event.get("Records"), list):
                return send_logout_tokens(event, context)
            return issue_token(event, context)
        return super().__call__(event, context)


app = IdentityApp("identity")


def issue_token(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"subject", "kind", "roles"?, "ttl_seconds"?, "hospital"?, "extra"?, "requested_by"}`` -> the token."""
    try:
        request = issuing.IssueTokenRequest.model_validate(event)
    except ValidationError as exc:
        return {"error": {"code": "VALIDATION_FAILED", "details": validation_details(exc)}}
    issued = issuing.issue(deps.token_issuer(), request, deps.audit_log("identity"))
    return issued.model_dump()


def send_logout_tokens(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The logout queue (TokenIssueFunction): sign and post one back-channel logout token per notice."""
    from bianjie.identity.provider import LogoutNotice
    from bianjie.kit import batch

    def one(message: batch.SqsMessage) -> None:
        notice = LogoutNotice.model_validate(message.json())
        wiring.provider(notice.iss).send_logout_token(notice)

    return batch.process_partial_response(
        event, one, dead_letters=deps.dead_letters("IDENTITY_LOGOUT_DLQ"), name="identity.backchannel_logout"
    )


# -- request helpers ---------------------------------------------------------------------------
def _headers() -> dict[str, str]:
    return {k.lower(): v for k, v in (app.current_request.headers or {}).items()}


def _base() -> str:
    configured = env("IDENTITY_BASE_URL")
    if configured:
        return configured.rstrip("/")
    h = _headers()
    return f"{h.get('x-forwarded-proto', 'http')}://{h.get('host', 'localhost')}"


def _issuer() -> str:
    return f"{_base()}/identity/oidc"


def _query() -> dict[str, str]:
    return dict(app.current_request.query_params or {})


def _form() -> dict[str, str]:
    raw = app.current_request.raw_body or b""
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def _cookie(wanted: str = COOKIE) -> str | None:
    for part in _headers().get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == wanted:
            return value or None
    return None


def _browser() -> str | None:
    return _cookie(LOGIN_COOKIE)


def _html(body: str, status: int = 200) -> Response:
    return Response(body=body, status_code=status, headers=dict(pages.HEADERS))


def _session_cookie(value: str, max_age: int, name: str = COOKIE) -> str:
    # Secure everywhere but the plain-HTTP loopback gateway of the local stack (a client there would
    # otherwise never send it back)
    secure = "" if _base().startswith("http://") and use_standin("identity.upstreams") else " Secure;"
    return f"{name}={value}; Path=/identity; HttpOnly;{secure} SameSite=Lax; Max-Age={max_age}"


def _redirect(
    location: str, cookie: str | None = None, clear: bool = False, login_cookie: str | None = None
) -> Response:
    headers = {"Location": location, "Cache-Control": "no-store"}
    if cookie:
        headers["Set-Cookie"] = _session_cookie(cookie, 28800)
    elif clear:
        headers["Set-Cookie"] = _session_cookie("", 0)
    elif login_cookie:
        headers["Set-Cookie"] = _session_cookie(login_cookie, 600, LOGIN_COOKIE)
    return Response(body="", status_code=302, headers=headers)


def _oauth_json(exc: OAuthError) -> Response:
    headers = {"Cache-Control": "no-store"}
    if exc.status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="identity"'
    return json_response(exc.status, exc.body(), headers)


def _error_page(exc: OAuthError) -> Response:
    return _html(pages.message("无法登录", f"{exc.description}（{exc.error}）"), 400)


def _callback(upstream: str) -> str:
    return f"{_base()}/identity/callback/{upstream}"


# -- discovery, JWKS ---------------------------------------------------------------------------
@app.route("/identity/oidc/.well-known/openid-configuration", summary="OpenID Provider metadata")
def discovery() -> Any:
    return json_response(200, wiring.provider(_issuer()).discovery(), {"Cache-Control": "max-age=300"})


@app.route("/identity/oidc/jwks", summary="The provider's verification keys (ES256 and SM2), by kid")
def jwks() -> Any:
    return json_response(200, wiring.provider(_issuer()).jwks(), {"Cache-Control": "max-age=300"})


# -- authorisation and login -------------------------------------------------------------------
@app.route(
    "/identity/oidc/authorize",
    summary="Authorization endpoint (code + PKCE S256): 302 to the login, or an error page",
    status=302,
    media_type="text/html",
)
def authorize() -> Any:
    provider = wiring.provider(_issuer())
    params = _query()
    try:
        answer = provider.begin(params, _cookie())
    except OAuthError as exc:
        if not exc.redirectable:
            return _error_page(exc)
        return _redirect(provider.error_redirect(params["redirect_uri"], exc, params.get("state")))
    return _redirect(answer.location, answer.set_cookie, login_cookie=answer.login_cookie)


@app.route("/identity/login", summary="The login page: pick how to log in", media_type="text/html")
def login_page() -> Any:
    try:
        client, _ = wiring.provider(_issuer()).pending(_query().get("req", ""), _browser())
    except OAuthError as exc:
        return _error_page(exc)
    offered = wiring.upstreams(_base())
    return _html(pages.login(_query()["req"], client.name, [u for u in UPSTREAMS if u in offered], client.staff))


@app.route(
    "/identity/login/{upstream}",
    summary="Start a login at an upstream identity provider (302 there)",
    status=302,
    media_type="text/html",
)
def login_upstream(upstream: str) -> Any:
    req_id = _query().get("req", "")
    try:
        wiring.provider(_issuer()).pending(req_id, _browser())
    except OAuthError as exc:
        return _error_page(exc)
    adapter = wiring.upstreams(_base()).get(upstream)
    if adapter is None:
        raise NotFound("没有这种登录方式", code="UPSTREAM_NOT_FOUND")
    return _redirect(wiring.browser_url(adapter.login_url(req_id, _callback(upstream))))


@app.route(
    "/identity/callback/{upstream}",
    summary="An upstream's return: resolve the person, then the code",
    status=302,
    also=(200,),
    media_type="text/html",
)
def callback(upstream: str) -> Any:
    params = _query()
    adapter = wiring.upstreams(_base()).get(upstream)
    if adapter is None:
        raise NotFound("没有这种登录方式", code="UPSTREAM_NOT_FOUND")
    provider = wiring.provider(_issuer())
    req_id = params.get("state", "")
    request: dict[str, Any] | None = None
    try:
        _, request = provider.pending(req_id, _browser())
        identity = adapter.resolve(params, _callback(upstream))
        answer = provider.complete_login(req_id, identity, _browser())
    except UpstreamRefused:
        return _html(pages.message("登录失败", "登录方没有确认您的身份，请返回重试。"), 400)
    except OAuthError as exc:
        if exc.redirectable and request:
            return _redirect(provider.error_redirect(request["redirect_uri"], exc, request["state"]))
        return _error_page(exc)
    if isinstance(answer, tuple):
        return _html(pages.link_needed(req_id, upstream))
    return _redirect(answer.location, answer.set_cookie)


@app.route(
    "/identity/standin/{upstream}",
    summary="STAND-IN upstream login page (local stage only)",
    also=(302,),
    media_type="text/html",
)
def standin_idp(upstream: str) -> Any:
    if upstream not in UPSTREAMS or not use_standin("identity.upstreams"):
        raise NotFound("no stand-in here", code="NOT_FOUND")
    status, headers, body = wiring.standins().authorize(upstream, _query())
    return Response(body=body, status_code=status, headers=headers)


@app.route("/identity/consent", summary="The consent page", media_type="text/html")
def consent_page() -> Any:
    provider = wiring.provider(_issuer())
    try:
        client, request = provider.pending(_query().get("req", ""), _browser())
    except OAuthError as exc:
        return _error_page(exc)
    return _html(pages.consent(_query()["req"], client.name, client.hospital, request["scope"]))


@app.route(
    "/identity/consent",
    methods=["POST"],
    content_types=FORM,
    summary="Approve or decline sharing (302 back to the client)",
    status=302,
    media_type="text/html",
    form=True,
)
def consent() -> Any:
    form = _form()
    try:
        answer = wiring.provider(_issuer()).consent(
            form.get("req", ""), _cookie(), form.get("decision") == "approve", _browser()
        )
    except OAuthError as exc:
        return _error_page(exc)
    return _redirect(answer.location)


# -- the route that signs (TokenIssueFunction) --------------------------------------------------
@app.route(
    "/identity/oidc/token", methods=["POST"], content_types=FORM, summary="Token endpoint", form=True, oauth=True
)
def token() -> Any:
    try:
        basic = basic_credentials(_headers().get("authorization"))
        answer = wiring.provider(_issuer()).token(_form(), basic)
    except OAuthError as exc:
        return _oauth_json(exc)
    return json_response(200, answer.body, answer.headers)


# -- the other routes sign nothing ------------------------------------------------------------------
@app.route(
    "/identity/oidc/logout",
    summary="RP-initiated logout (queues back-channel logout for the issuer to sign and send)",
    also=(302,),
    media_type="text/html",
)
def logout() -> Any:
    try:
        target = wiring.provider(_issuer()).logout(_query(), _cookie())
    except OAuthError as exc:
        return _error_page(exc)
    if target:
        return _redirect(target, clear=True)
    response = _html(pages.message("已退出", "您已退出申康统一认证。"))
    response.headers["Set-Cookie"] = _session_cookie("", 0)
    return response


class LaunchQuery(BaseModel):
    channel: Literal["h5", "wechat", "alipay", "app"] = "h5"


@app.route(
    "/identity/launch/{hospital}",
    auth="token",
    query=LaunchQuery,
    response=LaunchAnswer,
    errors=("ENTRY_NOT_FOUND", "CHANNEL_NOT_AVAILABLE", "PERSON_NOT_FOUND"),
    summary="Launch into a hospital's internet hospital (the target; a ticket comes from the token endpoint)",
)
def launch(hospital: str) -> LaunchAnswer:
    actor = app.patient_actor()
    claims = app.user(kind="patient")
    channel = app.query(LaunchQuery).channel
    return wiring.launcher(_issuer()).launch(actor, claims, hospital, channel)


class ConsentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hospital: str = Field(min_length=1, max_length=64)


class ConsentAnswer(BaseModel):
    hospital: str
    consented_at: int


@app.route(
    "/identity/consents",
    methods=["POST"],
    auth="token",
    request=ConsentRequest,
    response=ConsentAnswer,
    status=201,
    errors=("ENTRY_NOT_FOUND", "PERSON_NOT_FOUND"),
    summary="The person agrees to share their identity with a hospital (the entry page's consent)",
)
def give_consent() -> ConsentAnswer:
    actor, person = _person()
    hospital = app.body(ConsentRequest).hospital
    at = wiring.provider(_issuer()).grant_consent(actor, person, hospital, actor.patient_ref or "")
    return ConsentAnswer(hospital=hospital, consented_at=at)


class ConsentView(BaseModel):
    hospital: str
    consented_at: int
    via: str = Field(description="entry (the entry page) or login (the provider's consent page)")


class ConsentList(BaseModel):
    consents: list[ConsentView]


class WithdrawAnswer(BaseModel):
    hospital: str
    withdrawn_at: int


@app.route(
    "/identity/consents",
    methods=["GET"],
    auth="token",
    response=ConsentList,
    errors=("PERSON_NOT_FOUND",),
    summary="The hospitals the person shares their identity with (the entry page's 我的授权)",
)
def list_consents() -> ConsentList:
    _, person = _person()
    found = wiring.provider(_issuer()).consents(person)
    return ConsentList(
        consents=[ConsentView(hospital=c["hospital"], consented_at=c["at"], via=c["via"]) for c in found]
    )


@app.route(
    "/identity/consents/{hospital}",
    methods=["DELETE"],
    auth="token",
    response=WithdrawAnswer,
    errors=("CONSENT_NOT_FOUND", "PERSON_NOT_FOUND"),
    summary="The person withdraws a hospital's consent: its launches, exchanges and refreshes are refused after",
)
def withdraw_consent(hospital: str) -> WithdrawAnswer:
    actor, person = _person()
    at = wiring.provider(_issuer()).withdraw_consent(actor, person, hospital, actor.patient_ref or "")
    return WithdrawAnswer(hospital=hospital, withdrawn_at=at)


# -- the provider function's other APIs --------------------------------------------------------
@app.route("/identity/oidc/userinfo", auth="token", summary="UserInfo endpoint", oauth=True)
def userinfo() -> Any:
    from bianjie.kit.tokens import bearer_token

    try:
        return json_response(200, wiring.provider(_issuer()).userinfo(bearer_token(app.current_request.headers)))
    except OAuthError as exc:
        return json_response(exc.status, exc.body(), {"WWW-Authenticate": f'Bearer error="{exc.error}"'})


@app.route(
    "/identity/launch/redeem",
    methods=["POST"],
    content_types=FORM,
    summary="A hospital redeems a launch ticket once",
    form=True,
    oauth=True,
)
def launch_redeem() -> Any:
    try:
        basic = basic_credentials(_headers().get("authorization"))
        body = redeem(wiring.store(), wiring.keys(), wiring.clients(), _form(), basic, wiring.audit())
    except OAuthError as exc:
        return _oauth_json(exc)
    return json_response(200, body, {"Cache-Control": "no-store"})


def _person() -> tuple[Any, str]:
    actor = app.patient_actor()
    person = wiring.archive().person_of_ref(actor.patient_ref or "")
    if person is None:
        raise NotFound("没有您的档案", code="PERSON_NOT_FOUND")
    return actor, person


@app.route("/identity/me", auth="token", response=PersonView, summary="The person's archive: hospitals and cards")
def me() -> PersonView:
    actor, person = _person()
    return wiring.archive().view(actor, person)


@app.route(
    "/identity/cards",
    methods=["POST"],
    auth="token",
    request=BindCardRequest,
    status=201,
    errors=("CARD_NOT_VERIFIED",),
    summary="Bind a card (医保电子凭证, 电子健康卡, 就诊卡) at a hospital",
)
def bind_card() -> Any:
    actor, person = _person()
    return wiring.archive().bind_card(actor, person, app.body(BindCardRequest), wiring.card_verifier())


@app.route("/identity/fhir/Patient", auth="token", summary="The person as a FHIR Patient")
def fhir_patient() -> Any:
    actor, person = _person()
    resource = wiring.archive().fhir_patient(actor, person, f"{_base()}/identity")
    return json_response(200, resource, {"Content-Type": "application/fhir+json; charset=utf-8"})


class EntryList(BaseModel):
    entries: list[Entry]


@app.route("/identity/entries", response=EntryList, summary="The hospitals' internet-hospital entries (public)")
def entries() -> EntryList:
    return EntryList(entries=wiring.entries().all())


@app.route(
    "/identity/entries/{hospital}",
    methods=["PUT"],
    auth="token",
    request=Entry,
    response=Entry,
    summary="Register or change a hospital's entry (platform-admin)",
)
def put_entry(hospital: str) -> Entry:
    actor = app.staff_actor("platform-admin")
    entry = app.body(Entry)
    if entry.hospital != hospital:
        raise BadRequest("the body's hospital differs from the path", code="HOSPITAL_MISMATCH")
    return wiring.entries().put(actor, entry)


@app.route(
    "/identity/entries/{hospital}/check",
    summary="Joint-debugging self-check of a hospital's launch (HTML)",
    media_type="text/html",
)
def entry_check(hospital: str) -> Any:
    from bianjie.identity.launch import self_check

    checks = self_check(wiring.entries(), wiring.clients(), wiring.keys(), hospital)
    return _html(pages.self_check(hospital, checks), 200)


@app.route(
    "/identity/entries/{hospital}/check",
    methods=["POST"],
    content_types=FORM,
    summary="The live probe of a hospital's launch, with the hospital's client credentials (HTML)",
    media_type="text/html",
    form=True,
)
def entry_probe(hospital: str) -> Any:
    from bianjie.identity.launch import self_check

    form = _form()
    checks = self_check(wiring.entries(), wiring.clients(), wiring.keys(), hospital)
    live = wiring.live_probe(_issuer()).run(hospital, form.get("client_id") or "", form.get("client_secret") or "")
    return _html(pages.self_check(hospital, checks, live), 200)


class MergeRequest(BaseModel):
    survivor: str
    duplicate: str
    reason: str


@app.route(
    "/identity/admin/merge",
    methods=["POST"],
    auth="token",
    request=MergeRequest,
    errors=("MERGE_SELF", "ALREADY_MERGED", "PERSON_NOT_FOUND"),
    summary="Merge a duplicate person (platform-admin)",
)
def merge() -> Any:
    actor = app.staff_actor("platform-admin")
    body = app.body(MergeRequest)
    return wiring.archive().merge(actor, body.survivor, body.duplicate, body.reason)
