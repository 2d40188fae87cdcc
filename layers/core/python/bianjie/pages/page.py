"""A page's HTML as served: a per-response nonce on our script and style elements, the stage in a meta
element (the pages offer the demo sign-in hint on the local stage only), and a Content-Security-Policy
like the film viewer's: only our own scripts run, and the page talks only to its own origin.

The pages show patient data, so: no inline script at all (the nonce covers the module scripts Vite
writes; a script injected into the page has none), no third-party origin, never framed, no referrer
(a token never rides in a URL's query, but keep paths to ourselves too).
"""

from __future__ import annotations

import html
import re
import secrets

from chalice import Response

HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
_TAG = re.compile(r"<(script|link)\b")


def content_security_policy(nonce: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "font-src 'self'",
            "manifest-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ]
    )


def render(document: str, *, stage: str) -> Response:
    nonce = secrets.token_urlsafe(16)
    body = _TAG.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"', document)
    meta = f'<meta name="bianjie-stage" content="{html.escape(stage)}">'
    body = body.replace('<meta charset="utf-8">', '<meta charset="utf-8">' + meta, 1)
    headers: dict[str, str | list[str]] = {**HEADERS, "Content-Security-Policy": content_security_policy(nonce)}
    return Response(body=body, status_code=200, headers=headers)


def not_found() -> Response:
    body = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>页面不存在</title></head>
<body><h1>页面不存在</h1><p>请从医院应用首页重新进入。</p><p>PAGE_NOT_FOUND</p></body></html>"""
    headers: dict[str, str | list[str]] = {
        **HEADERS,
        "Content-Security-Policy": "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    }
    return Response(body=body, status_code=404, headers=headers)
