"""The viewer page a link opens: HTML with the manifest inlined and a first-paint script.

The manifest is inlined so the first image needs no extra round trip: the inline script paints the
middle slice's lossy preview at once, then the real pixels (raw frame, default window), while the
Cornerstone3D bundle (``/film/viewer/viewer.js``, built from ``web/film``) loads and takes over.
Refusals (expired, revoked, altered links) are pages in Chinese with the stable code.

Both carry a Content-Security-Policy: the page shows patient images to whoever holds the link, so
nothing but our own scripts may run in it (the inline script is allowed by a per-response nonce) and it
may talk only to its own origin and the object store its presigned URLs point at.
"""

from __future__ import annotations

import html
import json
import secrets
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


def storage_origins(manifest: Any) -> list[str]:
    """The origins of every absolute URL in the manifest (frames, previews, metadata, reports)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, str):
            if value.startswith(("https://", "http://")):
                parts = urlsplit(value)
                found.add(f"{parts.scheme}://{parts.netloc}")
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(manifest)
    return sorted(found)


# both the viewer and the refusal pages: no <base>, no form posts, never inside another site's frame
_CSP_ALWAYS = ("base-uri 'none'", "form-action 'none'", "object-src 'none'", "frame-ancestors 'none'")


def content_security_policy(nonce: str, origins: list[str]) -> str:
    storage = " ".join(origins)
    return "; ".join(
        [
            "default-src 'none'",
            # the viewer bundle and its decode workers are ours; the codecs are WebAssembly
            f"script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'",
            "worker-src 'self' blob:",
            f"connect-src 'self' {storage}".rstrip(),
            f"img-src 'self' data: blob: {storage}".rstrip(),
            "style-src 'self' 'unsafe-inline'",  # Cornerstone sets style attributes on its elements
            *_CSP_ALWAYS,
        ]
    )


def render(manifest: dict[str, Any], *, key: str) -> Response:
    nonce = secrets.token_urlsafe(16)
    body = (
        _template()
        .replace("__NONCE__", nonce)
        .replace("__MANIFEST__", _json_for_script(manifest))
        .replace("__KEY__", html.escape(key))
    )
    headers: dict[str, str | list[str]] = {
        **HEADERS,
        "Content-Security-Policy": content_security_policy(nonce, storage_origins(manifest)),
    }
    return Response(body=body, status_code=200, headers=headers)


def refusal(exc: AppError) -> Response:
    message = REFUSALS.get(exc.code, "无法打开云胶片。")
    body = f"""<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>云胶片</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;padding:40px 24px;background:#111;color:#eee;text-align:center}}
.code{{color:#888;font-size:12px;margin-top:16px}}</style></head>
<body><h2>云胶片</h2><p id="refusal">{html.escape(message)}</p>
<p class="code">{html.escape(exc.code)}</p></body></html>"""
    policy = "; ".join(["default-src 'none'", "style-src 'unsafe-inline'", *_CSP_ALWAYS])
    return Response(body=body, status_code=exc.status, headers={**HEADERS, "Content-Security-Policy": policy})
