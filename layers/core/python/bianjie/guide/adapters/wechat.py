"""WeChat subscribe messages (订阅消息): the client, and a local stand-in speaking the same protocol.

Protocol (developers.weixin.qq.com, 服务端 API):
    GET  /cgi-bin/token?grant_type=client_credential&appid=APPID&secret=SECRET
         -> {"access_token": "...", "expires_in": 7200} | {"errcode": 40013, "errmsg": "invalid appid"}
    POST /cgi-bin/message/subscribe/send?access_token=TOKEN
         {"touser": openid, "template_id": id, "page": "...", "data": {"thing1": {"value": "..."}},
          "miniprogram_state": "formal", "lang": "zh_CN"}
         -> {"errcode": 0, "errmsg": "ok", "msgid": 123}
            40001 invalid access_token · 40003 invalid openid · 40037 invalid template_id
            43101 user refuse to accept the msg · 47003 argument invalid (a data value breaks its rule)

The client takes a *transport* ``(method, url, body) -> dict``: ``http_transport`` on a deployment
that can reach api.weixin.qq.com, ``WeChatStandIn`` locally. Everything else (token caching, the
request shape, error codes) is the same code in both.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from bianjie.guide.adapters.outbox import OutboxRecorder
from bianjie.guide.delivery import ChannelUnavailable
from bianjie.guide.templates import FieldInvalid, TemplateBook, check_field
from bianjie.kit.masking import mask_id

Transport = Callable[[str, str, bytes | None], dict[str, Any]]
API = "https://api.weixin.qq.com"


def http_transport(method: str, url: str, body: bytes | None, timeout: float = 5.0) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise ChannelUnavailable(f"WECHAT_UNREACHABLE ({type(exc).__name__})") from None


class WeChatClient:
    def __init__(
        self,
        app_id: str,
        app_secret: str,
        transport: Transport,
        base: str = API,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app_id = app_id
        self._secret = app_secret
        self.transport = transport
        self.base = base.rstrip("/")
        self.clock = clock
        self._token: tuple[str, float] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WeChatClient(app_id={self.app_id!r})"

    def _access_token(self, refresh: bool = False) -> str:
        with self._lock:
            if self._token and not refresh and self._token[1] > self.clock():
                return self._token[0]
            query = urlencode({"grant_type": "client_credential", "appid": self.app_id, "secret": self._secret})
            answer = self.transport("GET", f"{self.base}/cgi-bin/token?{query}", None)
            if "access_token" not in answer:
                raise ChannelUnavailable(f"WECHAT_TOKEN ({answer.get('errcode')})")
            # renew five minutes early: a token expiring mid-send costs a retry
            self._token = (answer["access_token"], self.clock() + int(answer.get("expires_in", 7200)) - 300)
            return self._token[0]

    def send_subscribe(
        self, touser: str, template_id: str, page: str, data: dict[str, dict[str, str]]
    ) -> dict[str, Any]:
        body = json.dumps(
            {
                "touser": touser,
                "template_id": template_id,
                "page": page,
                "data": data,
                "miniprogram_state": "formal",
                "lang": "zh_CN",
            },
            ensure_ascii=False,
        ).encode("utf-8")
        answer: dict[str, Any] = {}
        for refresh in (False, True):
            token = self._access_token(refresh)
            answer = self.transport("POST", f"{self.base}/cgi-bin/message/subscribe/send?access_token={token}", body)
            if answer.get("errcode") not in (40001, 42001):  # invalid / expired token: fetch a new one once
                break
        return answer


class WeChatStandIn:
    """Plays api.weixin.qq.com for the local stack and tests; records every send in the outbox.

    It checks what WeChat checks: the token, the openid's shape, the template id, each data value's
    field rule (47003). It cannot know who tapped "allow" on a phone, so refusal is simulated: openids
    starting with ``refuse`` answer 43101, as a patient who turned the template off would.
    """

    def __init__(
        self,
        recorder: OutboxRecorder,
        templates: TemplateBook,
        app_id: str = "wx-local-standin",
        app_secret: str = "local-standin-secret",
    ) -> None:
        self.recorder = recorder
        self.templates = templates
        self.app_id = app_id
        self._secret = app_secret
        self._tokens: set[str] = set()
        self._msgid = 1_000_000
        self._lock = threading.Lock()

    def __call__(self, method: str, url: str, body: bytes | None) -> dict[str, Any]:
        parts = urlsplit(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if method == "GET" and parts.path == "/cgi-bin/token":
            if query.get("appid") != self.app_id:
                return {"errcode": 40013, "errmsg": "invalid appid"}
            if query.get("secret") != self._secret:
                return {"errcode": 40125, "errmsg": "invalid appsecret"}
            token = secrets.token_urlsafe(24)
            with self._lock:
                self._tokens.add(token)
            return {"access_token": token, "expires_in": 7200}
        if method == "POST" and parts.path == "/cgi-bin/message/subscribe/send":
            if query.get("access_token") not in self._tokens:
                return {"errcode": 40001, "errmsg": "invalid credential, access_token is invalid or not latest"}
            return self._send(json.loads(body or b"{}"))
        return {"errcode": 40066, "errmsg": "invalid url"}

    def _send(self, msg: dict[str, Any]) -> dict[str, Any]:
        touser = str(msg.get("touser", ""))
        template_id = str(msg.get("template_id", ""))
        data = msg.get("data") or {}
        kind = self.templates.kind_of_wechat_template(template_id)
        answer: dict[str, Any]
        if not re.fullmatch(r"[A-Za-z0-9_\-]{6,64}", touser):
            answer = {"errcode": 40003, "errmsg": "invalid openid"}
        elif kind is None:
            answer = {"errcode": 40037, "errmsg": "invalid template_id"}
        elif touser.startswith("refuse"):
            answer = {"errcode": 43101, "errmsg": "user refuse to accept the msg"}
        else:
            answer = self._check_data(kind, data)
        if answer.get("errcode") == 0:
            with self._lock:
                self._msgid += 1
                answer["msgid"] = self._msgid
        visit = parse_qs(urlsplit(str(msg.get("page", ""))).query).get("visit_id", [None])[0]
        self.recorder.record(
            "wechat",
            visit_id=visit,
            kind=kind.value if kind else None,
            dedup_key=None,
            to=mask_id(touser),
            template=template_id,
            content={k: (v or {}).get("value") for k, v in data.items()},
            result=answer,
            accepted=answer.get("errcode") == 0,
        )
        return answer

    def _check_data(self, kind: Any, data: dict[str, Any]) -> dict[str, Any]:
        wanted = {f.key for f in self.templates.wechat[kind].fields}
        if set(data) != wanted:
            return {"errcode": 47003, "errmsg": f"argument invalid! data keys {sorted(set(data) ^ wanted)}"}
        for key, value in data.items():
            try:
                check_field(key, str((value or {}).get("value", "")))
            except FieldInvalid:
                return {"errcode": 47003, "errmsg": f"argument invalid! data.{key}.value invalid"}
        return {"errcode": 0, "errmsg": "ok"}
