"""WeChat subscribe messages (订阅消息): the client (``bianjie_dev.guide.adapters.wechat`` is a local
stand-in speaking the same protocol).

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
that can reach api.weixin.qq.com, the stand-in locally. Everything else (token caching, the
request shape, error codes) is the same code in both.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from bianjie.guide.delivery import ChannelUnavailable

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
