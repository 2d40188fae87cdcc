"""The viewer page a link opens: HTML with the manifest inlined and a first-paint script.

The manifest is inlined so the first image needs no extra round trip: the inline script paints the
middle slice's lossy preview at once, then the real pixels (raw frame, default window), while the
Cornerstone3D bundle (``/film/viewer/viewer.js``, built from ``web/film``) loads and takes over.
Refusals (expired, revoked, altered links) are pages in Chinese with the stable code.
"""

from __future__ import annotations

import html
import json
from functools import cache
from pathlib import Path
from typing import Any

from chalice import Response

from bianjie.kit.errors import AppError

TEMPLATE = Path(__file__).with_name("viewer.html")
REFUSALS = {
    "LINK_EXPIRED": "链接已过期，请回到医院应用重新获取云胶片链接。",
    "LINK_REVOKED": "链接已被撤销，请回到医院应用重新获取云胶片链接。",
    "LINK_NOT_FOUND": "未找到该云胶片链接，请确认链接完整。",
    "LINK_INVALID": "链接无效（可能不完整或被修改），请重新获取。",
}
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",  # the key is in the path: never send it to another site
    "X-Content-Type-Options": "nosniff",
}


@cache
def _template() -> str:
    return TEMPLATE.read_text(encoding="utf-8")


def _json_for_script(value: Any) -> str:
    # "</" would end the script element; U+2028/2029 are fine in JSON but not in older JS parsers
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render(manifest: dict[str, Any], *, key: str) -> Response:
    body = _template().replace("__MANIFEST__", _json_for_script(manifest)).replace("__KEY__", html.escape(key))
    return Response(body=body, status_code=200, headers=dict(HEADERS))


def refusal(exc: AppError) -> Response:
    message = REFUSALS.get(exc.code, "无法打开云胶片。")
    body = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>云胶片</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;padding:40px 24px;background:#111;color:#eee;text-align:center}}
.code{{color:#888;font-size:12px;margin-top:16px}}</style></head>
<body><h2>云胶片</h2><p id="refusal">{html.escape(message)}</p>
<p class="code">{html.escape(exc.code)}</p></body></html>"""
    return Response(body=body, status_code=exc.status, headers=dict(HEADERS))
