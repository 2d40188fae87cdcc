"""A local stand-in of the official account's server API (development tooling, never in the core layer):
a ``bianjie.content.oa.Transport`` that answers ``stable_token``, ``draft/add`` and
``freepublish/submit`` as WeChat documents them, with their checks (app id and secret, a valid token,
title ≤ 32 characters, digest ≤ 128, content < 20,000 characters, a thumb media id, 40007 for an
unknown media id), and records what was published in the content table (``oa-standin`` partition), which
``bianjie content oa-published`` lists. The callback side needs no stand-in: WeChat calls us, and tests
play WeChat with wechatpy."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

from bianjie.kit.documents.port import DocumentStore, KeyCond

APP_ID = "wx-content-local-standin"
APP_SECRET = "content-local-standin-secret"
TOKEN = "content-local-standin-token"
ENCODING_AES_KEY = "bianjieContentLocalStandinAesKey0123456789A"  # 43 characters
THUMB_MEDIA_ID = "standin-thumb-default"
PARTITION = "oa-standin"


class WechatApiStandIn:
    def __init__(self, documents: DocumentStore, table: str) -> None:
        self.documents = documents
        self.table = table

    def _get(self, sk: str) -> dict[str, Any] | None:
        item = self.documents.get(self.table, {"pk": PARTITION, "sk": sk})
        return json.loads(item["doc"]) if item else None

    def _put(self, sk: str, doc: dict[str, Any]) -> None:
        self.documents.put(self.table, {"pk": PARTITION, "sk": sk, "doc": json.dumps(doc, ensure_ascii=False)})

    def _token_ok(self, query: dict[str, str]) -> bool:
        held = self._get("token")
        return bool(held and query.get("access_token") == held["token"] and held["expires_at"] > time.time())

    def __call__(self, method: str, path: str, query: dict[str, str], body: dict[str, Any] | None) -> dict[str, Any]:
        body = body or {}
        if path == "/cgi-bin/stable_token":
            if body.get("grant_type") != "client_credential":
                return {"errcode": 40002, "errmsg": "invalid grant_type"}
            if body.get("appid") != APP_ID:
                return {"errcode": 40013, "errmsg": "invalid appid"}
            if body.get("secret") != APP_SECRET:
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            held = self._get("token")
            if held and held["expires_at"] - time.time() > 300 and not body.get("force_refresh"):
                # stable_token answers the same token while it is valid
                return {"access_token": held["token"], "expires_in": int(held["expires_at"] - time.time())}
            token = secrets.token_urlsafe(48)
            self._put("token", {"token": token, "expires_at": time.time() + 7200})
            return {"access_token": token, "expires_in": 7200}
        if not self._token_ok(query):
            return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
        if path == "/cgi-bin/draft/add":
            articles = body.get("articles") or []
            if not articles or len(articles) > 8:
                return {"errcode": 45003, "errmsg": "articles: 1 to 8"}
            for article in articles:
                if not article.get("title") or len(article["title"]) > 32:
                    return {"errcode": 45003, "errmsg": "title size out of limit"}
                if len(article.get("digest") or "") > 128:
                    return {"errcode": 45004, "errmsg": "description size out of limit"}
                if not article.get("content") or len(article["content"]) >= 20000:
                    return {"errcode": 45002, "errmsg": "content size out of limit"}
                if not article.get("thumb_media_id"):
                    return {"errcode": 40007, "errmsg": "invalid media_id"}
            media_id = "draft-" + secrets.token_hex(8)
            self._put(f"draft#{media_id}", {"media_id": media_id, "articles": articles, "at": time.time()})
            return {"media_id": media_id}
        if path == "/cgi-bin/freepublish/submit":
            draft = self._get(f"draft#{body.get('media_id')}")
            if draft is None:
                return {"errcode": 40007, "errmsg": "invalid media_id"}
            publish_id = str(2247483000 + int(time.time() * 1000) % 1000000)
            self._put(
                f"published#{publish_id}",
                {
                    "publish_id": publish_id,
                    "media_id": draft["media_id"],
                    "articles": draft["articles"],
                    "at": time.time(),
                },
            )
            return {"errcode": 0, "errmsg": "ok", "publish_id": publish_id, "msg_data_id": int(publish_id)}
        return {"errcode": 48001, "errmsg": f"api unauthorized or unknown in the stand-in: {path}"}

    def published(self) -> list[dict[str, Any]]:
        page = self.documents.query(self.table, KeyCond.of("pk", PARTITION).begins_with("sk", "published#"), limit=200)
        return [json.loads(i["doc"]) for i in page.items]
