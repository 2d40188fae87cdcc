"""The centre's content platform (issue 19): the editorial workflow for articles and videos (staff
tokens), the website's pages and search (public), the video library's upload pipeline and playlists,
and the official account's message push. Handlers only parse, authorise and shape."""

from __future__ import annotations

import re
from typing import Any

from bianjie.content import site, wiring
from bianjie.content.aggregate import SourceConfig
from bianjie.content.menu import Menu, MenuService, MenuView
from bianjie.content.model import (
    COLUMNS,
    ArticleDraft,
    ContentReviewRequest,
    ContentSearchAnswer,
    ContentSearchHit,
    Facet,
    ItemView,
    QueueAnswer,
    QueueQuery,
    SearchQuery,
    VideoCreated,
    VideoDraft,
    WithdrawRequest,
    hospital_name,
)
from bianjie.content.party import (
    ActivitiesAnswer,
    ActivityRequest,
    ActivityView,
    AttendanceRequest,
    MemberRequest,
    MemberView,
)
from bianjie.content.publisher import is_public, read_page
from bianjie.content.stats import Visit
from bianjie.content.wechat import Callback
from bianjie.kit import batch, deps, s3events
from bianjie.kit.actor import Actor
from bianjie.kit.errors import NotFound
from bianjie.kit.web import ServiceApp
from chalice import Response
from pydantic import BaseModel, ConfigDict, Field

app = ServiceApp("content")
_ORIGIN = re.compile(r"^(https?://[^/?#]+)")
_MEDIA_NAME = re.compile(r"(master|720p|360p)\.m3u8|cover\.jpg")
_ASSET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class LibraryQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hospital: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    disease: str | None = Field(default=None, pattern=r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$")


class SiteSearchQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    q: str = Field(default="", max_length=50)
    hospital: str | None = Field(default=None, pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")


class WechatQuery(BaseModel):
    signature: str | None = Field(default=None, max_length=64)
    timestamp: str | None = Field(default=None, max_length=20)
    nonce: str | None = Field(default=None, max_length=64)
    echostr: str | None = Field(default=None, max_length=256)
    encrypt_type: str | None = Field(default=None, max_length=10)
    msg_signature: str | None = Field(default=None, max_length=64)
    openid: str | None = Field(default=None, max_length=64)


def _staff() -> Actor:
    return app.staff_actor()


# -- the editorial workflow (staff) ---------------------------------------------------------------


@app.route(
    "/content/articles",
    methods=["POST"],
    auth="token",
    request=ArticleDraft,
    response=ItemView,
    status=201,
    summary="Write an article draft (editor of the column)",
    errors=("ROLE_REQUIRED",),
)
def create_article() -> ItemView:
    return wiring.content_service().create_article(_staff(), app.body(ArticleDraft))


@app.route(
    "/content/articles/{item_id}",
    methods=["PUT"],
    auth="token",
    request=ArticleDraft,
    response=ItemView,
    summary="Revise an article: a new version, back to draft (editor)",
    errors=("ITEM_NOT_FOUND", "ROLE_REQUIRED", "STATE_CONFLICT", "COLUMN_FIXED", "NOT_AN_ARTICLE", "ITEM_CONTENDED"),
)
def revise_article(item_id: str) -> ItemView:
    return wiring.content_service().revise_article(_staff(), item_id, app.body(ArticleDraft))


@app.route(
    "/content/videos",
    methods=["POST"],
    auth="token",
    request=VideoDraft,
    response=VideoCreated,
    status=201,
    summary="Register a video and get its presigned upload (editor of the video library, own hospital)",
    errors=("ROLE_REQUIRED", "HOSPITAL_MISMATCH"),
)
def create_video() -> VideoCreated:
    return wiring.content_service().create_video(_staff(), app.body(VideoDraft))


@app.route(
    "/content/items/{item_id}",
    methods=["GET"],
    auth="token",
    response=ItemView,
    summary="An article or video with its sealed history (staff of its column)",
    errors=("ITEM_NOT_FOUND", "ROLE_REQUIRED"),
)
def get_item(item_id: str) -> ItemView:
    return wiring.content_service().get(_staff(), item_id)


@app.route(
    "/content/items/{item_id}/submit",
    methods=["POST"],
    auth="token",
    response=ItemView,
    summary="Send a draft to the first review (editor)",
    errors=("ITEM_NOT_FOUND", "ROLE_REQUIRED", "STATE_CONFLICT", "MEDIA_NOT_READY", "ITEM_CONTENDED"),
)
def submit_item(item_id: str) -> ItemView:
    return wiring.content_service().submit(_staff(), item_id)


@app.route(
    "/content/items/{item_id}/reviews",
    methods=["POST"],
    auth="token",
    request=ContentReviewRequest,
    response=ItemView,
    summary="Approve or reject the item's current review stage (reviewer; chief-editor for the final)",
    errors=("ITEM_NOT_FOUND", "ROLE_REQUIRED", "STATE_CONFLICT", "REVIEWER_CONFLICT", "REASON_REQUIRED",
            "NOT_REVIEWED", "ITEM_CONTENDED"),
)  # fmt: skip
def review_item(item_id: str) -> ItemView:
    return wiring.content_service().review(_staff(), item_id, app.body(ContentReviewRequest))


@app.route(
    "/content/items/{item_id}/withdraw",
    methods=["POST"],
    auth="token",
    request=WithdrawRequest,
    response=ItemView,
    summary="Take a published or scheduled item down (chief-editor)",
    errors=("ITEM_NOT_FOUND", "ROLE_REQUIRED", "STATE_CONFLICT", "ITEM_CONTENDED"),
)
def withdraw_item(item_id: str) -> ItemView:
    return wiring.content_service().withdraw(_staff(), item_id, app.body(WithdrawRequest).reason)


@app.route(
    "/content/queue",
    methods=["GET"],
    auth="token",
    query=QueueQuery,
    response=QueueAnswer,
    summary="Items in one workflow state, in the columns the caller may work on",
    errors=("ROLE_REQUIRED",),
)
def review_queue() -> QueueAnswer:
    query = app.query(QueueQuery)
    return QueueAnswer(items=wiring.content_service().queue(_staff(), query.status))


# -- sources (汇聚共享) -------------------------------------------------------------------------------


class SourceAnswer(BaseModel):
    id: str
    config: dict[str, Any]
    status: str | None = None
    last_error: dict[str, Any] | None = None
    last_run_at: str | None = None


class SourcesAnswer(BaseModel):
    sources: list[SourceAnswer]


def _chief() -> Actor:
    actor = app.staff_actor()
    if not actor.has_role("chief-editor"):
        from bianjie.kit.errors import AppError

        raise AppError("配置来源需要总编辑权限 (chief-editor)", code="ROLE_REQUIRED", status=403)
    return actor


@app.route(
    "/content/sources/{source_id}",
    methods=["PUT"],
    auth="token",
    request=SourceConfig,
    response=SourceAnswer,
    summary="Configure a hospital source (feed, or list page with a link rule) for aggregation (chief-editor)",
    errors=("ROLE_REQUIRED", "RULE_REQUIRED", "RULE_INVALID", "SOURCE_ID_INVALID"),
)
def put_source(source_id: str) -> SourceAnswer:
    _chief()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", source_id):
        from bianjie.kit.errors import AppError

        raise AppError("来源编号只能用小写字母、数字和“-”（最多 40 个）", code="SOURCE_ID_INVALID", status=422)
    return SourceAnswer.model_validate(wiring.aggregator().configure(source_id, app.body(SourceConfig)))


@app.route(
    "/content/sources",
    methods=["GET"],
    auth="token",
    response=SourcesAnswer,
    summary="The sources with their last run and error (chief-editor)",
    errors=("ROLE_REQUIRED",),
)
def list_sources() -> SourcesAnswer:
    _chief()
    return SourcesAnswer(sources=[SourceAnswer.model_validate(s) for s in wiring.aggregator().sources()])


# -- party-building (申康党建), members only -------------------------------------------------------------


@app.route(
    "/content/party/members/{member_id}",
    methods=["PUT"],
    auth="token",
    request=MemberRequest,
    response=MemberView,
    summary="Register or update a party member (name and phone SM4-encrypted; party-admin)",
    errors=("ROLE_REQUIRED",),
)
def put_member(member_id: str) -> MemberView:
    return wiring.party_service().put_member(_staff(), member_id, app.body(MemberRequest))


@app.route(
    "/content/party/members/{member_id}",
    methods=["GET"],
    auth="token",
    response=MemberView,
    summary="A member's record (party-admin, or the member), audited",
    errors=("ROLE_REQUIRED", "MEMBER_NOT_FOUND"),
)
def get_member(member_id: str) -> MemberView:
    return wiring.party_service().get_member(_staff(), member_id)


@app.route(
    "/content/party/activities",
    methods=["POST"],
    auth="token",
    request=ActivityRequest,
    response=ActivityView,
    status=201,
    summary="Publish a party activity (party-admin)",
    errors=("ROLE_REQUIRED",),
)
def publish_activity() -> ActivityView:
    return wiring.party_service().publish_activity(_staff(), app.body(ActivityRequest))


@app.route(
    "/content/party/activities",
    methods=["GET"],
    auth="token",
    response=ActivitiesAnswer,
    summary="Activities the member may join, with sign-up counts (party members only)",
    errors=("ROLE_REQUIRED", "NOT_A_MEMBER"),
)
def list_activities() -> ActivitiesAnswer:
    return ActivitiesAnswer(activities=wiring.party_service().activities(_staff()))


@app.route(
    "/content/party/activities/{activity_id}/signups",
    methods=["POST"],
    auth="token",
    response=ActivityView,
    status=201,
    summary="Sign up for an activity (once, within capacity, before it starts)",
    errors=("ROLE_REQUIRED", "NOT_A_MEMBER", "ACTIVITY_NOT_FOUND", "OTHER_BRANCH", "SIGNUP_CLOSED", "ACTIVITY_FULL",
            "ALREADY_SIGNED_UP"),
)  # fmt: skip
def sign_up(activity_id: str) -> ActivityView:
    return wiring.party_service().sign_up(_staff(), activity_id)


@app.route(
    "/content/party/activities/{activity_id}/attendance",
    methods=["POST"],
    auth="token",
    request=AttendanceRequest,
    response=ActivityView,
    summary="Record that a signed-up member attended (party-admin)",
    errors=("ROLE_REQUIRED", "ACTIVITY_NOT_FOUND", "NOT_SIGNED_UP"),
)
def attend(activity_id: str) -> ActivityView:
    return wiring.party_service().attend(_staff(), activity_id, app.body(AttendanceRequest).member_id)


# -- statistics (staff: chief-editor or admin) ------------------------------------------------------


class StatsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    from_: str = Field(alias="from", pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
    to: str = Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


class OaDay(BaseModel):
    followers: int
    new_followers: int
    lost_followers: int
    reads: int
    shares: int


class StatsDay(BaseModel):
    day: str
    views: int
    visitors: int
    oa: OaDay | None = None


class StatsItem(BaseModel):
    id: str
    views: int
    kind: str | None = None
    column: str | None = None
    title: str | None = None


class StatsColumn(BaseModel):
    column: str
    label: str
    views: int
    page_views: int


class StatsTerm(BaseModel):
    term: str
    count: int


class StatsTotals(BaseModel):
    views: int
    visitors: int
    home_views: int
    reads: int
    shares: int
    followers: int | None = None


class StatsAnswer(BaseModel):
    model_config = ConfigDict(populate_by_name=True)
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    days: list[StatsDay]
    top_items: list[StatsItem]
    top_columns: list[StatsColumn]
    top_terms: list[StatsTerm]
    totals: StatsTotals


@app.route(
    "/content/stats",
    methods=["GET"],
    auth="token",
    query=StatsQuery,
    response=StatsAnswer,
    summary="Site and official-account statistics per day, with the top items, columns and search terms "
    "(chief-editor or admin; at most 92 days)",
    errors=("ROLE_REQUIRED", "RANGE_INVALID", "RANGE_TOO_LONG"),
)
def content_stats() -> Response:
    app.staff_actor("chief-editor", "admin")
    query = app.query(StatsQuery)
    answer = StatsAnswer.model_validate(wiring.stats_service().report(query.from_, query.to))
    return Response(
        body=answer.model_dump_json(by_alias=True),
        status_code=200,
        headers={"Content-Type": "application/json", "Cache-Control": "private, no-store"},
    )


@app.route(
    "/content/console",
    methods=["GET"],
    summary="The editors' statistics console (charts; the data comes from /content/stats with a staff token)",
    media_type="text/html",
)
def console_page() -> Response:
    return _html(site.console())


def _visit() -> Visit:
    request = app.current_request
    agent = (request.headers or {}).get("user-agent", "") if request else ""
    return Visit(address=app.source_ip, agent=agent)


# -- search and the website (public) ------------------------------------------------------------


@app.route(
    "/content/search",
    methods=["GET"],
    query=SearchQuery,
    response=ContentSearchAnswer,
    summary="Search published articles and videos (Chinese, pinyin, initials, synonyms) with facets",
)
def search() -> ContentSearchAnswer:
    query = app.query(SearchQuery)
    wiring.stats_recorder().search(query.q)
    holder = wiring.search_index()
    results = holder.current().search(
        query.q, kind=query.kind, hospital=query.hospital, disease=query.disease, limit=query.limit
    )
    names = holder.disease_names()
    return ContentSearchAnswer(
        query=query.q,
        terms=results.terms,
        total=results.total,
        hits=[
            ContentSearchHit(**{**h.__dict__, "hospital_name": hospital_name(h.hospital)})  # type: ignore[arg-type]
            for h in results.hits
        ],
        facets={
            "hospital": [Facet(value=v, label=hospital_name(v), count=c) for v, c in results.facets["hospital"]],
            "disease": [Facet(value=v, label=names.get(v, v), count=c) for v, c in results.facets["disease"]],
            "kind": [
                Facet(value=v, label="视频" if v == "video" else "文章", count=c) for v, c in results.facets["kind"]
            ],
        },
    )


def _media_origin() -> str:
    sample = wiring.content_objects().presigned_get(wiring.media_bucket(), "x", 60)
    found = _ORIGIN.match(sample)
    return found.group(1) if found else ""


def _html(body: str, status: int = 200, *, media: bool = False) -> Response:
    origin = _media_origin() if media else ""
    csp = "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: {origin}".strip(),
            f"media-src 'self' blob: {origin}".strip(),
            f"connect-src 'self' {origin}".strip(),
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
    return Response(
        body=body,
        status_code=status,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Cache-Control": "public, max-age=60" if status == 200 else "no-store",
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "strict-origin-when-cross-origin",
        },
    )


def _stored(key: str, *, media: bool = False, item: str | None = None, page: str | None = None) -> Response:
    found = read_page(wiring.content_objects(), wiring.site_bucket(), key)
    if found is None:
        return _html(site.not_found(), 404)
    if item:
        wiring.stats_recorder().item_view(item, _visit())
    elif page:
        wiring.stats_recorder().page_view(page, _visit())
    return _html(found, media=media)


@app.route("/content/site", methods=["GET"], summary="The website's home page", media_type="text/html")
def site_home() -> Response:
    return _stored("pages/home.html", page="home")


@app.route(
    "/content/site/columns/{column}",
    methods=["GET"],
    summary="A column's list (医联动态, 健康资讯, 科普知识, 疾病防治指南)",
    media_type="text/html",
    errors=("PAGE_NOT_FOUND",),
)
def site_column(column: str) -> Response:
    if column not in COLUMNS:
        return _html(site.not_found(), 404)
    return _stored(f"pages/columns/{column}.html", page=column)


@app.route(
    "/content/site/articles/{item_id}",
    methods=["GET"],
    summary="A published article",
    media_type="text/html",
    errors=("PAGE_NOT_FOUND",),
)
def site_article(item_id: str) -> Response:
    if not re.fullmatch(r"a-[0-9a-f]{16}", item_id):
        return _html(site.not_found(), 404)
    return _stored(f"pages/articles/{item_id}.html", item=item_id)


@app.route(
    "/content/site/videos/{item_id}",
    methods=["GET"],
    summary="A published video with its player",
    media_type="text/html",
    errors=("PAGE_NOT_FOUND",),
)
def site_video(item_id: str) -> Response:
    if not re.fullmatch(r"v-[0-9a-f]{16}", item_id):
        return _html(site.not_found(), 404)
    return _stored(f"pages/videos/{item_id}.html", media=True, item=item_id)


@app.route(
    "/content/site/videos",
    methods=["GET"],
    query=LibraryQuery,
    summary="The video library by hospital and by disease, with counts",
    media_type="text/html",
)
def site_library() -> Response:
    query = app.query(LibraryQuery)
    holder = wiring.search_index()
    searcher = holder.current()
    hits = searcher.listing(kind="video", hospital=query.hospital, disease=query.disease)
    names = holder.disease_names()
    title = "科普视频"
    if query.hospital:
        title += " · " + hospital_name(query.hospital)
    if query.disease:
        title += " · " + names.get(query.disease, query.disease)
    body = site.library(
        hits, searcher.browse("hospital", "video"), searcher.browse("disease", "video"), names, title=title
    )
    return _html(body)


@app.route(
    "/content/site/search",
    methods=["GET"],
    query=SiteSearchQuery,
    summary="The website's search page",
    media_type="text/html",
)
def site_search() -> Response:
    query = app.query(SiteSearchQuery)
    answer = None
    if query.q.strip():
        wiring.stats_recorder().search(query.q)
        answer = wiring.search_index().current().search(query.q, hospital=query.hospital, limit=20)
    return _html(site.results(query.q, answer))


@app.route(
    "/content/site/assets/{name}",
    methods=["GET"],
    summary="The website's style sheet and the video player script",
    errors=("ASSET_NOT_FOUND",),
)
def site_asset(name: str) -> Response:
    if not _ASSET.fullmatch(name):
        raise NotFound("no such file", code="ASSET_NOT_FOUND")
    found = read_page(wiring.content_objects(), wiring.site_bucket(), f"assets/{name}")
    if found is None:
        raise NotFound("no such file", code="ASSET_NOT_FOUND")
    kind = "text/css" if name.endswith(".css") else "text/javascript"
    return Response(
        body=found,
        status_code=200,
        headers={"Content-Type": f"{kind}; charset=utf-8", "Cache-Control": "public, max-age=300",
                 "X-Content-Type-Options": "nosniff"},
    )  # fmt: skip


@app.route(
    "/content/media/{item_id}/{name}",
    methods=["GET"],
    summary="A published video's HLS playlists (segments signed for storage) and cover",
    errors=("MEDIA_NOT_FOUND",),
)
def media(item_id: str, name: str) -> Response:
    store, objects, bucket = wiring.content_store(), wiring.content_objects(), wiring.media_bucket()
    found = store.head(item_id) if re.fullmatch(r"v-[0-9a-f]{16}", item_id) else None
    doc = found[0] if found else None
    if doc is None or not _MEDIA_NAME.fullmatch(name) or not is_public(store, doc):
        raise NotFound("没有这个视频", code="MEDIA_NOT_FOUND")
    prefix = doc["media"]["prefix"]
    if name == "cover.jpg":
        return Response(
            body="", status_code=302, headers={"Location": objects.presigned_get(bucket, prefix + name, 3600)}
        )
    try:
        text = objects.get(bucket, prefix + name).decode()
    except Exception:
        raise NotFound("没有这个视频", code="MEDIA_NOT_FOUND") from None
    if name != "master.m3u8":
        lines = text.splitlines()
        segments = [ln for ln in lines if ln and not ln.startswith("#")]
        urls = dict(zip(segments, objects.presigned_gets(bucket, [prefix + s for s in segments], 3600), strict=True))
        text = "\n".join(urls.get(ln, ln) for ln in lines) + "\n"
    return Response(
        body=text,
        status_code=200,
        headers={"Content-Type": "application/vnd.apple.mpegurl", "Cache-Control": "private, max-age=600"},
    )


# -- the official account's message push -----------------------------------------------------------


def _answer(message: dict[str, str]) -> str | None:
    kind = message.get("MsgType")
    if kind == "event" and message.get("Event") == "subscribe":
        return "欢迎关注申康医联健康科普！回复疾病名称（如“糖尿病”“中风”）即可查找科普文章和视频。"
    if kind == "event" and message.get("Event") == "CLICK":
        column = message.get("EventKey", "")
        return f"{COLUMNS[column]}：/content/site/columns/{column}" if column in COLUMNS else None
    if kind != "text" or not message.get("Content", "").strip():
        return None
    results = wiring.search_index().current().search(message["Content"].strip()[:50], limit=3)
    if not results.hits:
        return "暂未找到相关内容，换个说法试试，如“高血压 饮食”。"
    return "为您找到：\n" + "\n".join(f"{i + 1}. {h.title} {h.url}" for i, h in enumerate(results.hits))


def _callback() -> Callback:
    return Callback(wiring.wechat_config(), wiring.content_store(), _answer)


@app.route(
    "/content/wechat",
    methods=["GET"],
    query=WechatQuery,
    summary="WeChat's server URL verification (echoes echostr when the signature holds)",
    errors=("WECHAT_SIGNATURE",),
    media_type="text/plain",
)
def wechat_verify() -> Response:
    params = app.query(WechatQuery).model_dump(exclude_none=True)
    return Response(body=_callback().verify(params), status_code=200, headers={"Content-Type": "text/plain"})


@app.route(
    "/content/wechat",
    methods=["POST"],
    query=WechatQuery,
    summary="WeChat's message push (plain or safe mode), deduplicated by MsgId, answered within 5 s",
    errors=("WECHAT_SIGNATURE", "WECHAT_XML_REFUSED", "WECHAT_XML_INVALID", "WECHAT_BODY_TOO_LARGE", "WECHAT_DECRYPT",
            "WECHAT_APPID"),
    media_type="application/xml",
    content_types=["text/xml", "application/xml", "application/json"],
)  # fmt: skip
def wechat_push() -> Response:
    params = app.query(WechatQuery).model_dump(exclude_none=True)
    raw = app.current_request.raw_body or b""
    reply = _callback().handle(params, raw if isinstance(raw, bytes) else raw.encode())
    kind = "text/plain" if reply == "success" else "application/xml"
    return Response(body=reply, status_code=200, headers={"Content-Type": f"{kind}; charset=utf-8"})


@app.route(
    "/content/wechat/menu",
    methods=["PUT"],
    auth="token",
    request=Menu,
    response=MenuView,
    summary="Push the official account's custom menu (menu/create; 3 buttons, 5 sub-buttons, WeChat's name "
    "limits) and keep it (chief-editor)",
    errors=("ROLE_REQUIRED", "WECHAT_REFUSED"),
)
def put_wechat_menu() -> MenuView:
    actor = app.staff_actor("chief-editor")
    menu_service: MenuService = wiring.menu_service()
    return menu_service.push(actor, app.body(Menu))


class OauthStart(BaseModel):
    model_config = ConfigDict(extra="forbid")
    next: str = Field(default="/content/site", max_length=300)


class OauthCallback(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    state: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9]+$")


_STATE_COOKIE = "bj_oauth_state"
_FOLLOWER_COOKIE = "bj_follower"


def _cookie(name: str) -> str | None:
    request = app.current_request
    raw = (request.headers or {}).get("cookie", "") if request else ""
    for part in raw.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


@app.route(
    "/content/wechat/oauth",
    methods=["GET"],
    query=OauthStart,
    summary="Start a follower's web authorisation (snsapi_base): a redirect to WeChat's authorize page",
    errors=("NEXT_INVALID",),
    also=(302,),
    media_type="text/plain",
)
def wechat_oauth_start() -> Response:
    started = wiring.follower_auth().start(
        app.query(OauthStart).next, wiring.site_url() + "/content/wechat/oauth/callback"
    )
    return Response(
        body="",
        status_code=302,
        headers={
            "Location": started.location,
            "Set-Cookie": f"{_STATE_COOKIE}={started.state}; Max-Age=600; Path=/content/wechat/oauth; HttpOnly; "
            "Secure; SameSite=Lax",
            "Cache-Control": "no-store",
        },
    )


@app.route(
    "/content/wechat/oauth/callback",
    methods=["GET"],
    query=OauthCallback,
    summary="WeChat's redirect back with code and state: the state checked, the code exchanged for the "
    "follower's openid (kept only as a blind index in a sealed session cookie)",
    errors=("OAUTH_STATE", "OAUTH_CODE"),
    also=(302,),
    media_type="text/plain",
)
def wechat_oauth_callback() -> Response:
    query = app.query(OauthCallback)
    done = wiring.follower_auth().finish(query.code, query.state, _cookie(_STATE_COOKIE))
    return Response(
        body="",
        status_code=302,
        headers={
            "Location": done.next,
            "Set-Cookie": f"{_FOLLOWER_COOKIE}={done.session}; Max-Age=7200; Path=/content; HttpOnly; Secure; "
            "SameSite=Lax",
            "Cache-Control": "no-store",
        },
    )


# -- events and schedules ---------------------------------------------------------------------------


class PublishJob(BaseModel):
    id: str = Field(pattern=r"^[av]-[0-9a-f]{16}$")
    version: int
    status: str


@app.on_sqs_message(queue="content-upload", batch_size=1)
def transcode(event: Any) -> dict[str, Any]:
    def one(message: batch.SqsMessage) -> None:
        for ref in s3events.object_refs(message.json()):
            wiring.media_service().uploaded(ref.bucket, ref.key)

    return batch.process_partial_response(
        event, one, dead_letters=deps.dead_letters("CONTENT_UPLOAD_DLQ_URL"), name="content.transcode"
    )


@app.on_sqs_message(queue="content-publish", batch_size=10)
def publish_worker(event: Any) -> dict[str, Any]:
    def one(message: batch.SqsMessage) -> None:
        job = PublishJob.model_validate(message.json())
        wiring.publisher().handle(job.id)

    return batch.process_partial_response(
        event, one, dead_letters=deps.dead_letters("CONTENT_PUBLISH_DLQ_URL"), name="content.publish"
    )


@app.lambda_function(name="publish_due")
def publish_due(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Scheduled publishing: items approved for a later time become public when it comes."""
    return {"published": wiring.content_service().publish_due()}


@app.lambda_function(name="aggregate")
def aggregate(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fetch every hospital source (conditional requests); new items enter as drafts for review."""
    runs = wiring.aggregator().run_all()
    return {"runs": [r.__dict__ for r in runs]}


@app.lambda_function(name="refresh_wechat_token")
def refresh_wechat_token(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The one writer of the official account's access token (stable_token); every other function reads it."""
    return wiring.token_keeper().refresh()


@app.lambda_function(name="copy_wechat_stats")
def copy_wechat_stats(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Nightly: the official account's followers, reads and shares of the last 7 days from datacube."""
    return wiring.oa_stats_copier().copy()
