"""The provider's server-rendered pages (Chinese, phone-first): login, account linking, consent, errors.

No script at all, so the Content-Security-Policy forbids every script; forms post only to ourselves
and the page cannot be framed (clickjacking a consent button). Everything shown is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Protocol
from urllib.parse import quote, urlencode

CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; "
    "base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": CSP,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
UPSTREAM_LABELS = {
    "suishenban": "随申办登录",
    "yiwangtongban": "一网通办登录",
    "wechat": "微信登录",
    "alipay": "支付宝登录",
    "directory": "医务人员登录（医院统一身份）",
}
_STYLE = """
body{margin:0;font:16px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;background:#f4f6f9;color:#1f2d3d}
main{max-width:480px;margin:0 auto;padding:24px 16px}
h1{font-size:20px;margin:8px 0 16px} p{color:#5a6b7d}
a.btn,button{display:block;width:100%;box-sizing:border-box;margin:12px 0;padding:14px;border:0;border-radius:8px;
font-size:17px;text-align:center;text-decoration:none;background:#0b5cad;color:#fff}
a.btn.alt,button.alt{background:#fff;color:#0b5cad;border:1px solid #0b5cad}
.card{background:#fff;border-radius:12px;padding:16px;box-shadow:0 1px 3px rgba(0,0,0,.06)}
small{color:#5a6b7d}
"""


def page(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><main><h1>{html.escape(title)}</h1>{body}</main></body></html>"
    )


def login(req_id: str, client_name: str, upstreams: Iterable[str], staff: bool) -> str:
    buttons = "".join(
        f'<a class="btn{"" if i == 0 else " alt"}" href="/identity/login/{html.escape(name)}?'
        f'{html.escape(urlencode({"req": req_id}))}">{html.escape(UPSTREAM_LABELS[name])}</a>'
        for i, name in enumerate(n for n in upstreams if (n == "directory") == staff)
    )
    intro = "请使用医院统一身份登录。" if staff else "一次登录，即可使用各市级医院互联网医院服务。"
    return page(
        "申康统一认证",
        f'<div class="card"><p>{html.escape(client_name)} 请求您登录。{intro}</p>{buttons}'
        "<small>登录即表示您同意《申康统一认证服务协议》。</small></div>",
    )


def link_needed(req_id: str, channel: str) -> str:
    return page(
        "请先完成实名认证",
        f'<div class="card"><p>首次使用{html.escape(UPSTREAM_LABELS.get(channel, channel))}，'
        "需要用随申办或一网通办完成一次实名登录，之后即可直接使用该方式登录同一账户。</p>"
        f'<a class="btn" href="/identity/login/suishenban?{html.escape(urlencode({"req": req_id}))}">随申办实名登录</a>'
        f'<a class="btn alt" href="/identity/login/yiwangtongban?{html.escape(urlencode({"req": req_id}))}">'
        "一网通办实名登录</a></div>",
    )


def consent(req_id: str, client_name: str, hospital: str | None, scope: str) -> str:
    items = ["您的实名认证等级", "一个仅供该医院使用的用户标识"]
    if "profile" in scope.split():
        items.append("您的姓名")
    if "id_number" in scope.split():
        items.append("您的身份证号（仅用于绑卡）")
    listed = "".join(f"<li>{html.escape(i)}</li>" for i in items)
    rid = html.escape(req_id)
    return page(
        "授权确认",
        f'<div class="card"><p>{html.escape(client_name)}（{html.escape(hospital or "平台")}）将获得：</p>'
        f"<ul>{listed}</ul>"
        f'<form method="post" action="/identity/consent"><input type="hidden" name="req" value="{rid}">'
        '<button name="decision" value="approve">同意并继续</button>'
        '<button class="alt" name="decision" value="deny">拒绝</button></form></div>',
    )


def message(title: str, text: str) -> str:
    return page(title, f'<div class="card"><p>{html.escape(text)}</p></div>')


_MARK = {"ok": "✅", "warn": "⚠️", "fail": "❌"}


class CheckLine(Protocol):
    name: str
    status: str
    detail: str


def _rows(checks: Iterable[CheckLine]) -> str:
    return "".join(
        f'<tr data-status="{html.escape(c.status)}"><td>{_MARK[c.status]}</td><td>{html.escape(c.name)}</td>'
        f"<td>{html.escape(c.detail)}</td></tr>"
        for c in checks
    )


def self_check(hospital: str, checks: Iterable[CheckLine], live: Iterable[CheckLine] | None = None) -> str:
    """The configuration check, then the live probe's form (the hospital's engineer types the hospital's
    client credentials: only the hospital holds them) or, after it ran, its results."""
    table = '<table style="width:100%;border-collapse:collapse">'
    action = html.escape(f"/identity/entries/{quote(hospital, safe='')}/check")
    probe = (
        f'<section class="card" id="live"><h2>联调实测结果</h2>{table}{_rows(live)}</table>'
        "<small>实测逐步调用：目标地址、令牌端点签发一次性票据、以本院凭据兑换并验证防重放、第三方发起登录。"
        "第一处 ❌ 即为实际进入时失败的地方。</small></section>"
        if live is not None
        else ""
    )
    form = (
        f'<form class="card" method="post" action="{action}"><h2>联调实测</h2>'
        "<p>用本院的客户端凭据实际走一遍进入流程（不涉及任何患者）。</p>"
        '<label>client_id <input name="client_id" autocomplete="off" required></label>'
        '<label>客户端密钥 <input name="client_secret" type="password" autocomplete="off" required></label>'
        '<button class="btn" type="submit">开始实测</button></form>'
    )
    return page(
        f"联调自检：{hospital}",
        f'<div class="card" id="config"><h2>配置检查</h2>{table}{_rows(checks)}</table>'
        f"<small>第一处 ❌ 即为进入失败的原因；⚠️ 不阻断进入。</small></div>{probe}{form}",
    )
