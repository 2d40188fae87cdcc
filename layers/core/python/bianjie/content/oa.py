"""The official account's server API as this service uses it: the access token (``stable_token``, by the
one refresh schedule; everyone else reads the stored copy), and publishing one record (``draft/add``, then
``freepublish/submit``). Calls go through a ``Transport`` (the real HTTPS client, or the local stand-in,
which speaks the same requests and checks the documented limits)."""

from __future__ import annotations

import html
import json
from collections.abc import Callable
from typing import Any, Protocol

from bianjie.content.store import ContentStore
from bianjie.kit.timefmt import utc_iso

TOKEN_CONTEXT = "content/wechat/access_token"
REFRESH_MARGIN_S = 1800


class Transport(Protocol):
    def __call__(self, method: str, path: str, query: dict[str, str], body: dict[str, Any] | None) -> dict[str, Any]:
        """One call to ``https://api.weixin.qq.com`` + ``path``; the decoded JSON answer."""
        ...


class Cipher(Protocol):
    def encrypt(self, value: str, *, context: str) -> str: ...
    def decrypt(self, value: str, *, context: str) -> str: ...


class WechatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode


def _checked(answer: dict[str, Any]) -> dict[str, Any]:
    code = int(answer.get("errcode") or 0)
    if code:
        raise WechatApiError(code, str(answer.get("errmsg", "")))
    return answer


class TokenKeeper:
    """``refresh`` is the scheduled function's; ``current`` every caller's (no refresh there)."""

    def __init__(
        self,
        store: ContentStore,
        cipher: Cipher,
        transport: Transport,
        app_id: str,
        secret: Callable[[], str],
        clock: Callable[[], float],
    ) -> None:
        self.store = store
        self.cipher = cipher
        self.transport = transport
        self.app_id = app_id
        self.secret = secret
        self.clock = clock

    def refresh(self, *, force: bool = False) -> dict[str, Any]:
        held = self.store.wechat_token()
        now = self.clock()
        if held and not force and held["expires_at"] - now > REFRESH_MARGIN_S:
            return {"refreshed": False, "expires_at": utc_iso(held["expires_at"])}
        answer = _checked(
            self.transport(
                "POST",
                "/cgi-bin/stable_token",
                {},
                {"grant_type": "client_credential", "appid": self.app_id, "secret": self.secret(),
                 "force_refresh": False},
            )
        )  # fmt: skip
        expires_at = now + int(answer["expires_in"])
        self.store.put_wechat_token(
            {"token": self.cipher.encrypt(answer["access_token"], context=TOKEN_CONTEXT), "expires_at": expires_at}
        )
        return {"refreshed": True, "expires_at": utc_iso(expires_at)}

    def current(self) -> str:
        held = self.store.wechat_token()
        if not held or held["expires_at"] <= self.clock():
            raise WechatApiError(42001, "no valid access token stored (the refresh schedule has not run)")
        return self.cipher.decrypt(held["token"], context=TOKEN_CONTEXT)


def article_html(doc: dict[str, Any]) -> str:
    """The body as the official account's editor takes it (external images would be stripped)."""
    paragraphs = [p.strip() for p in doc.get("body", "").split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br/>')}</p>" for p in paragraphs)


class OfficialAccount:
    def __init__(self, tokens: TokenKeeper, transport: Transport, thumb_media_id: str, site_url: str) -> None:
        self.tokens = tokens
        self.transport = transport
        self.thumb_media_id = thumb_media_id
        self.site_url = site_url.rstrip("/")

    def publish(self, doc: dict[str, Any]) -> dict[str, str]:
        """``draft/add`` then ``freepublish/submit``; the draft's media id and the publish id."""
        token = {"access_token": self.tokens.current()}
        article = {
            "title": doc["title"],
            "author": doc.get("hospital_name") or doc["hospital"],
            "digest": doc.get("summary", "")[:120],
            "content": article_html(doc),
            "content_source_url": f"{self.site_url}/content/site/articles/{doc['id']}",
            "thumb_media_id": self.thumb_media_id,
            "need_open_comment": 0,
            "only_fans_can_comment": 0,
        }
        draft = _checked(self.transport("POST", "/cgi-bin/draft/add", token, {"articles": [article]}))
        submitted = _checked(
            self.transport("POST", "/cgi-bin/freepublish/submit", token, {"media_id": draft["media_id"]})
        )
        return {"media_id": str(draft["media_id"]), "publish_id": str(submitted["publish_id"])}


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()
