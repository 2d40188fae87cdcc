"""Builds content's use cases from the environment (functions/content/template.yaml), once per function.

On the local stage (``use_standin("content.wechat")``) the official account is the stand-in in
``bianjie_dev.content.wechat_standin`` (its app id, token and EncodingAESKey are fixed there); elsewhere
CONTENT_WECHAT_APP_ID and the secrets CONTENT_WECHAT_SECRET, CONTENT_WECHAT_TOKEN and
CONTENT_WECHAT_AES_KEY, each wrapped by the master key (as `bianjie keys init` wraps the blind-index key).
"""

from __future__ import annotations

import time
from typing import Any

from bianjie.content.media import MediaService
from bianjie.content.oa import OfficialAccount, TokenKeeper, Transport
from bianjie.content.publisher import Publisher
from bianjie.content.search import tokenizer
from bianjie.content.service import ContentService
from bianjie.content.store import ContentStore
from bianjie.content.wechat import WechatConfig, aes_key_of
from bianjie.kit import deps
from bianjie.kit.config import env, env_int, require_env
from bianjie.kit.objects import ObjectStore
from bianjie.kit.standins import use_standin

SEAL_LABEL = b"bianjie/content/review-seal/v1"


@deps.singleton
def content_store() -> ContentStore:
    return ContentStore(deps.documents(), deps.table("CONTENT_TABLE"))


@deps.singleton
def content_objects() -> ObjectStore:
    store: ObjectStore = deps.objects()
    return store


def site_bucket() -> str:
    return require_env("CONTENT_SITE_BUCKET")


def media_bucket() -> str:
    return require_env("CONTENT_MEDIA_BUCKET")


class _NoQueue:
    def send(self, payload: Any, delay_seconds: int = 0, attributes: Any = None) -> Any:
        raise RuntimeError("this function has no CONTENT_PUBLISH_QUEUE")


@deps.singleton
def seal_key() -> bytes:
    """The workflow steps' HMAC-SM3 key, derived from the master-key-wrapped secret (only the functions
    that write or check steps unwrap it, so only they hold kms:Decrypt)."""
    return deps.derived_key(SEAL_LABEL)


@deps.singleton
def content_service() -> ContentService:
    queue = deps.queue("CONTENT_PUBLISH_QUEUE") if env("CONTENT_PUBLISH_QUEUE") else _NoQueue()
    sign = None
    if env("CONTENT_UPLOAD_BUCKET"):
        objects, bucket = content_objects(), require_env("CONTENT_UPLOAD_BUCKET")

        def sign(key: str, content_type: str, expires_in: int) -> str:
            return objects.presigned_put(bucket, key, expires_in, content_type=content_type)

    return ContentService(
        content_store(),
        deps.audit_log("content"),
        queue,
        seal_key,
        time.time,
        sign_upload=sign,
    )


@deps.singleton
def media_service() -> MediaService:
    from bianjie.content.adapters.ffmpeg import FfmpegTranscoder

    return MediaService(
        content_store(),
        content_objects(),
        require_env("CONTENT_UPLOAD_BUCKET"),
        media_bucket(),
        FfmpegTranscoder(),
        deps.audit_log("content"),
        time.time,
        max_bytes=env_int("CONTENT_VIDEO_MAX_BYTES", 500 * 1024 * 1024),
    )


# -- the official account ------------------------------------------------------------------------


@deps.singleton
def wechat_transport() -> Transport:
    if not use_standin("content.wechat"):
        from bianjie.content.adapters.wechat_api import https_transport

        return https_transport
    from bianjie_dev.content.wechat_standin import WechatApiStandIn

    return WechatApiStandIn(deps.documents(), deps.table("CONTENT_TABLE"))


@deps.singleton
def wechat_config() -> WechatConfig:
    if not use_standin("content.wechat"):
        return WechatConfig(
            app_id=require_env("CONTENT_WECHAT_APP_ID"),
            token=deps.unwrap_setting("CONTENT_WECHAT_TOKEN").decode(),
            aes_key=aes_key_of(deps.unwrap_setting("CONTENT_WECHAT_AES_KEY").decode()),
        )
    from bianjie_dev.content import wechat_standin

    return WechatConfig(wechat_standin.APP_ID, wechat_standin.TOKEN, aes_key_of(wechat_standin.ENCODING_AES_KEY))


def _wechat_secret() -> str:
    if not use_standin("content.wechat"):
        return deps.unwrap_setting("CONTENT_WECHAT_SECRET").decode()
    from bianjie_dev.content import wechat_standin

    return wechat_standin.APP_SECRET


def _thumb_media_id() -> str:
    if not use_standin("content.wechat"):
        return require_env("CONTENT_WECHAT_THUMB_MEDIA_ID")
    from bianjie_dev.content import wechat_standin

    return wechat_standin.THUMB_MEDIA_ID


def _app_id() -> str:
    if not use_standin("content.wechat"):
        return require_env("CONTENT_WECHAT_APP_ID")
    from bianjie_dev.content import wechat_standin

    return wechat_standin.APP_ID


@deps.singleton
def token_keeper() -> TokenKeeper:
    # the app id alone: the functions that only call the API hold neither the callback token nor the AES key
    return TokenKeeper(content_store(), deps.field_cipher(), wechat_transport(), _app_id(), _wechat_secret, time.time)


@deps.singleton
def official_account() -> OfficialAccount:
    return OfficialAccount(token_keeper(), wechat_transport(), _thumb_media_id(), env("CONTENT_SITE_URL", "") or "")


# -- search: one index, where the deployment keeps it ------------------------------------------------


def search_backend() -> str:
    """``CONTENT_SEARCH`` (sqlite | postgres); on premises, where documents live in PostgreSQL, the
    index does too unless told otherwise."""
    from bianjie.kit.config import settings

    default = "postgres" if settings().document_backend == "postgres" else "sqlite"
    backend = (env("CONTENT_SEARCH", default) or default).lower()
    if backend not in ("sqlite", "postgres"):
        raise RuntimeError(f"CONTENT_SEARCH must be sqlite or postgres, not {backend!r}")
    return backend


@deps.singleton
def search_index() -> Any:
    """The index the publisher writes and the search functions read (``current()`` is the searcher)."""
    if search_backend() == "postgres":
        from bianjie.content.adapters.postgres_search import PostgresSearch
        from bianjie.kit.config import settings
        from bianjie.kit.documents.postgres import open_pool

        dsn = settings().postgres_dsn
        if not dsn:
            raise RuntimeError("CONTENT_SEARCH=postgres needs BIANJIE_POSTGRES_DSN")
        return PostgresSearch(open_pool(dsn, max_size=4), tokenizer())
    from bianjie.content.adapters.sqlite_search import ObjectIndex

    return ObjectIndex(content_objects(), site_bucket(), tokenizer())


@deps.singleton
def publisher() -> Publisher:
    return Publisher(
        content_store(), content_objects(), site_bucket(), search_index(), official_account, deps.audit_log("content")
    )


# -- aggregation ------------------------------------------------------------------------------------


@deps.singleton
def aggregator() -> Any:
    from bianjie.content.adapters.extract import extract
    from bianjie.content.adapters.http_fetch import HttpFetcher
    from bianjie.content.aggregate import Aggregator, Candidate, SourceConfig
    from bianjie.content.model import ArticleDraft
    from bianjie.kit.actor import Actor
    from bianjie.kit.standins import stage

    service = content_service()
    actor = Actor.system("content-aggregator")

    def ingest(source_id: str, config: SourceConfig, candidate: Candidate) -> str:
        draft = ArticleDraft(
            column=config.column,
            hospital=config.hospital,
            title=candidate.title[:64] or config.name,
            summary="",
            body=candidate.text[:20000] or candidate.title,
            source_url=candidate.url if len(candidate.url) <= 500 else None,
        )
        return service.ingest_article(actor, draft).id

    # the local stage's stand-in hospital sites listen on loopback
    fetcher = HttpFetcher(allow_private=stage() == "local")
    return Aggregator(content_store(), fetcher, extract, ingest, time.time)


@deps.singleton
def party_service() -> Any:
    from bianjie.content.party import PartyService

    return PartyService(
        deps.documents(), deps.table("CONTENT_TABLE"), deps.field_cipher(), deps.audit_log("content"), time.time
    )


# -- statistics ------------------------------------------------------------------------------------


@deps.singleton
def stats_store() -> Any:
    from bianjie.content.stats import StatsStore

    return StatsStore(deps.documents(), deps.table("CONTENT_TABLE"))


@deps.singleton
def stats_recorder() -> Any:
    from bianjie.content.stats import Recorder

    store = content_store()

    def info(item_id: str) -> dict[str, Any] | None:
        found = store.head(item_id)
        return found[0] if found else None

    return Recorder(stats_store(), info, time.time)


@deps.singleton
def oa_stats_copier() -> Any:
    from bianjie.content.stats import OaStatsCopier

    return OaStatsCopier(stats_store(), token_keeper().current, wechat_transport(), time.time)


@deps.singleton
def stats_service() -> Any:
    from bianjie.content.stats import StatsService

    return StatsService(stats_store(), time.time)


@deps.singleton
def menu_service() -> Any:
    from bianjie.content.menu import MenuService

    return MenuService(deps.documents(), deps.table("CONTENT_TABLE"), token_keeper(), wechat_transport(), time.time)


FOLLOWER_SESSION_LABEL = b"bianjie/content/follower-session/v1"


@deps.singleton
def follower_auth() -> Any:
    from bianjie.content.oauth import FollowerAuth

    return FollowerAuth(
        deps.documents(),
        deps.table("CONTENT_TABLE"),
        wechat_transport(),
        _app_id(),
        _wechat_secret,
        lambda: deps.derived_key(FOLLOWER_SESSION_LABEL),
        lambda openid: deps.blind_index().digest(openid, "openid"),  # only the callback unwraps the key
        time.time,
    )


def site_url() -> str:
    return (env("CONTENT_SITE_URL", "") or "").rstrip("/")
