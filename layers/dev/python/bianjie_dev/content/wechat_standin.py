"""A local stand-in of the official account's server API (development tooling, never in the core layer):
a ``bianjie.content.oa.Transport`` that answers ``stable_token``, ``draft/add``,
``freepublish/submit`` and the datacube statistics (``getusersummary``, ``getusercumulate``,
``getarticlesummary``, with their date-span limits) as WeChat documents them, with their checks (app id
and secret, a valid token, title ≤ 32 characters, digest ≤ 128, content < 20,000 characters, a thumb
media id, 40007 for an unknown media id), and records what was published in the content table
(``oa-standin`` partition), which ``bianjie content oa-published`` lists. The callback side needs no
stand-in: WeChat calls us, and tests play WeChat with wechatpy."""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from datetime import date, timedelta
from typing import Any

from bianjie.kit.documents.port import DocumentStore, KeyCond
from bianjie.kit.timefmt import beijing_day

APP_ID = "wx-content-local-standin"
APP_SECRET = "content-local-standin-secret"
TOKEN = "content-local-standin-token"
ENCODING_AES_KEY = "bianjieContentLocalStandinAesKey0123456789A"  # 43 characters
THUMB_MEDIA_ID = "standin-thumb-default"
PARTITION = "oa-standin"


# datacube: the longest span (days) WeChat allows per request, as documented for each interface
DATACUBE_SPAN = {"getusersummary": 7, "getusercumulate": 7, "getarticlesummary": 1, "getarticletotal": 1,
                 "getuserread": 3, "getusershare": 7}  # fmt: skip
FOLLOWERS_BASE = 182_000  # the stand-in account's followers on 2026-01-01


def _day_seed(day: str, salt: str) -> int:
    return int(hashlib.sha256(f"{salt}{day}".encode()).hexdigest()[:8], 16)


def datacube(name: str, body: dict[str, Any], now: float) -> dict[str, Any]:
    """Answers one ``/datacube/<name>`` request as WeChat does: ``begin_date`` and ``end_date``
    (``YYYY-MM-DD``), at most the interface's span, the latest day yesterday (Beijing); 61500 for a
    malformed date, 61501 for a range WeChat refuses. The numbers are made up but stable per day."""
    if name not in DATACUBE_SPAN:
        return {"errcode": 48001, "errmsg": f"api unauthorized or unknown in the stand-in: /datacube/{name}"}
    try:
        begin = date.fromisoformat(str(body.get("begin_date")))
        end = date.fromisoformat(str(body.get("end_date")))
    except ValueError:
        return {"errcode": 61500, "errmsg": "date format error"}
    yesterday = date.fromisoformat(beijing_day(now)) - timedelta(days=1)
    if begin > end or end > yesterday or (end - begin).days + 1 > DATACUBE_SPAN[name]:
        return {"errcode": 61501, "errmsg": "date range error"}
    days = [(begin + timedelta(days=i)).isoformat() for i in range((end - begin).days + 1)]
    rows: list[dict[str, Any]] = []
    for day in days:
        seed = _day_seed(day, name)
        if name == "getusersummary":
            rows.append({"ref_date": day, "user_source": 0, "new_user": 80 + seed % 120, "cancel_user": 5 + seed % 20})
        elif name == "getusercumulate":
            elapsed = (date.fromisoformat(day) - date(2026, 1, 1)).days
            rows.append({"ref_date": day, "cumulate_user": FOLLOWERS_BASE + 95 * max(elapsed, 0)})
        elif name == "getarticlesummary":
            for n in range(1 + seed % 3):
                reads = 300 + (seed >> (n + 1)) % 2500
                rows.append({"ref_date": day, "msgid": f"{2247483000 + seed % 1000}_{n + 1}",
                             "title": f"科普推送 {day} 第{n + 1}篇", "int_page_read_user": reads * 4 // 5,
                             "int_page_read_count": reads, "ori_page_read_user": reads // 10,
                             "ori_page_read_count": reads // 8, "share_user": reads // 25, "share_count": reads // 20,
                             "add_to_fav_user": reads // 40, "add_to_fav_count": reads // 35})  # fmt: skip
        else:
            rows.append({"ref_date": day})
    return {"list": rows}


def _size(text: Any) -> int:
    return len(str(text).encode("utf-8"))


def menu_refusal(body: dict[str, Any]) -> dict[str, Any] | None:
    """``menu/create``'s documented checks, in WeChat's order and codes (None when the menu is taken)."""

    def no(code: int, msg: str) -> dict[str, Any]:
        return {"errcode": code, "errmsg": msg}

    buttons = body.get("button")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= 3:
        return no(40016, "invalid button size")
    for button in buttons:
        if not button.get("name") or _size(button["name"]) > 16:
            return no(40018, "invalid button name size")
        subs = button.get("sub_button")
        if subs is not None:
            if not isinstance(subs, list) or not 1 <= len(subs) <= 5:
                return no(40023, "invalid sub button size")
            for sub in subs:
                if sub.get("type") not in ("click", "view", "miniprogram", "scancode_push", "location_select"):
                    return no(40024, "invalid sub button type")
                if not sub.get("name") or _size(sub["name"]) > 60:
                    return no(40025, "invalid sub button name size")
                if sub["type"] == "click" and not 1 <= _size(sub.get("key", "")) <= 128:
                    return no(40026, "invalid sub button key size")
                if sub["type"] == "view" and not 1 <= _size(sub.get("url", "")) <= 1024:
                    return no(40027, "invalid sub button url size")
            continue
        if button.get("type") not in ("click", "view", "miniprogram", "scancode_push", "location_select"):
            return no(40017, "invalid button type")
        if button["type"] == "click" and not 1 <= _size(button.get("key", "")) <= 128:
            return no(40019, "invalid button key size")
        if button["type"] == "view" and not 1 <= _size(button.get("url", "")) <= 1024:
            return no(40020, "invalid button url size")
    return None


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
        if path == "/sns/oauth2/access_token":
            return self._oauth_exchange(query)
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
        if path == "/cgi-bin/menu/create":
            refused = menu_refusal(body)
            if refused:
                return refused
            self._put("menu", {"menu": body, "at": time.time()})
            return {"errcode": 0, "errmsg": "ok"}
        if path.startswith("/datacube/"):
            return datacube(path.removeprefix("/datacube/"), body, time.time())
        return {"errcode": 48001, "errmsg": f"api unauthorized or unknown in the stand-in: {path}"}

    def authorize(self, openid: str, redirect_uri: str, state: str) -> str:
        """What WeChat's authorize page does when a follower opens our link in WeChat: a one-time
        ``code`` (5 minutes) for ``openid``, appended to ``redirect_uri`` with ``state``."""
        code = secrets.token_hex(16)
        self._put(f"code#{code}", {"openid": openid, "until": time.time() + 300, "used": False})
        joiner = "&" if "?" in redirect_uri else "?"
        return f"{redirect_uri}{joiner}code={code}&state={state}"

    def _oauth_exchange(self, query: dict[str, str]) -> dict[str, Any]:
        if query.get("appid") != APP_ID:
            return {"errcode": 40013, "errmsg": "invalid appid"}
        if query.get("secret") != APP_SECRET:
            return {"errcode": 40125, "errmsg": "invalid appsecret"}
        if query.get("grant_type") != "authorization_code":
            return {"errcode": 40002, "errmsg": "invalid grant_type"}
        held = self._get(f"code#{query.get('code')}")
        if held is None or held["until"] < time.time():
            return {"errcode": 40029, "errmsg": "invalid code"}
        if held["used"]:
            return {"errcode": 40163, "errmsg": "code been used"}
        self._put(f"code#{query.get('code')}", {**held, "used": True})
        tokens = {"access_token": secrets.token_urlsafe(32), "refresh_token": secrets.token_urlsafe(32)}
        return {**tokens, "expires_in": 7200, "openid": held["openid"], "scope": "snsapi_base"}

    def menu(self) -> dict[str, Any] | None:
        held = self._get("menu")
        return held["menu"] if held else None

    def published(self) -> list[dict[str, Any]]:
        page = self.documents.query(self.table, KeyCond.of("pk", PARTITION).begins_with("sk", "published#"), limit=200)
        return [json.loads(i["doc"]) for i in page.items]
