"""The widget's and the desk's pages, built from web/assistant into AssistantWebBucket (HTML under
``html/``, content-hashed scripts and styles under ``assets/``), served from the APIs' origin with a
per-response nonce and a Content-Security-Policy that lets only our own scripts run and talk only to
this origin. The widget may be framed by the hospital's own pages (``ASSISTANT_FRAME_ANCESTORS``,
default none: it opens as a page of its own from the WeChat menu)."""

from __future__ import annotations

import html
import re
import secrets

from chalice import Response

from bianjie.kit.webassets import asset, content_type, page_html, publish

__all__ = ["asset", "content_type", "page_html", "publish"]

_TAG = re.compile(r"<(script|link)\b")


_ORIGIN = re.compile(r"https://[a-z0-9.-]+(:[0-9]{1,5})?")


def frame_ancestors(name: str) -> str:
    """Who may frame the page: the widget (``chat``) the origins in ``ASSISTANT_FRAME_ANCESTORS`` (each must
    be an https origin, else the setting is ignored whole), the desk nobody."""
    from bianjie.kit.config import env

    origins = (env("ASSISTANT_FRAME_ANCESTORS") or "").split()
    if name != "chat" or not origins or not all(_ORIGIN.fullmatch(o) for o in origins):
        return "'none'"
    return " ".join(origins)


def render(document: str, *, stage: str, frame_ancestors: str = "'none'") -> Response:
    nonce = secrets.token_urlsafe(16)
    body = _TAG.sub(lambda m: f'<{m.group(1)} nonce="{nonce}"', document)
    meta = f'<meta name="bianjie-stage" content="{html.escape(stage)}">'
    body = body.replace('<meta charset="utf-8">', '<meta charset="utf-8">' + meta, 1)
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src 'self' 'nonce-{nonce}'",
            f"style-src 'self' 'nonce-{nonce}'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'none'",
            "object-src 'none'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": csp,
    }
    return Response(body=body, status_code=200, headers=headers)


def not_found() -> Response:
    body = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>页面不存在</title></head>
<body><h1>页面不存在</h1><p>请从医院应用首页重新进入。</p><p>PAGE_NOT_FOUND</p></body></html>"""
    headers: dict[str, str | list[str]] = {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    }
    return Response(body=body, status_code=404, headers=headers)
