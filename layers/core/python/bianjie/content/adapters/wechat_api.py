"""HTTPS to the official account's server API (api.weixin.qq.com), as a ``bianjie.content.oa.Transport``."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

API = "https://api.weixin.qq.com"


class WechatUnreachable(Exception):
    pass


def https_transport(method: str, path: str, query: dict[str, str], body: dict[str, Any] | None) -> dict[str, Any]:
    url = API + path + ("?" + urllib.parse.urlencode(query) if query else "")
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5.0) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise WechatUnreachable(f"WECHAT_UNREACHABLE ({type(exc).__name__})") from None
