"""A local stand-in for api.weixin.qq.com (development tooling, never in the core layer): the client in
``bianjie.guide.adapters.wechat`` talks to it as a transport, and every send is recorded in the outbox."""

from __future__ import annotations

import json
import re
import secrets
import threading
from typing import Any
from urllib.parse import parse_qs, urlsplit

from bianjie.guide.templates import FieldInvalid, TemplateBook, check_field
from bianjie.kit.masking import mask_id

from bianjie_dev.guide.adapters.outbox import OutboxRecorder


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
