"""The website (一网), server-rendered: Chinese HTML pages that need no script to read (the video page's
player is the one script), crawlable, phone-first, with headings, alt text and WCAG AA contrast. The
publisher renders the public pages into ContentSiteBucket when a record is published or withdrawn; the
site function serves them from there (a CDN caches them in front), so a spike is served from storage.
Search and browsing pages are rendered per request from the search index."""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from bianjie.content.model import AUDIENCES, COLUMNS, hospital_name

SITE_NAME = "申康医联 健康科普"
CSS = """
:root{--fg:#1a1a1a;--muted:#4a4a4a;--accent:#0b5394;--bg:#fff;--line:#d0d7de}
*{box-sizing:border-box}
body{margin:0;font:16px/1.7 -apple-system,"PingFang SC","Noto Sans CJK SC",sans-serif;
color:var(--fg);background:var(--bg)}
a{color:var(--accent)}
a:focus,button:focus,input:focus{outline:3px solid #f5a623;outline-offset:2px}
.skip{position:absolute;left:-999px}
.skip:focus{left:8px;top:8px;background:#fff;padding:4px}
header{background:var(--accent);color:#fff;padding:12px 16px}
header a{color:#fff;text-decoration:none}
header .brand{font-size:1.15rem;font-weight:600}
nav ul{list-style:none;margin:8px 0 0;padding:0;display:flex;flex-wrap:wrap;gap:4px 14px}
main{max-width:760px;margin:0 auto;padding:12px 16px 48px}
h1{font-size:1.5rem;line-height:1.35}
h2{font-size:1.2rem;margin-top:1.6em}
.meta{color:var(--muted);font-size:.9rem}
.list{list-style:none;padding:0}
.list li{border-bottom:1px solid var(--line);padding:10px 0}
.list .t{font-weight:600}
.tag{display:inline-block;border:1px solid var(--line);border-radius:4px;padding:0 6px;margin:2px;font-size:.85rem}
form.search{display:flex;gap:6px;margin:12px 0}
form.search input{flex:1;font-size:1rem;padding:8px;border:1px solid #767676;border-radius:4px}
form.search button{font-size:1rem;padding:8px 14px;background:var(--accent);color:#fff;border:0;border-radius:4px}
video{width:100%;max-height:70vh;background:#000}
.digest{word-break:break-all;color:var(--muted);font-size:.8rem}
footer{border-top:1px solid var(--line);color:var(--muted);font-size:.85rem;padding:16px;text-align:center}
"""


def e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def page(title: str, body: str, *, description: str = "", scripts: Sequence[str] = ()) -> str:
    nav = "".join(f'<li><a href="/content/site/columns/{k}">{e(v)}</a></li>' for k, v in COLUMNS.items())
    nav += '<li><a href="/content/site/videos">科普视频</a></li><li><a href="/content/site/search">搜索</a></li>'
    script_tags = "".join(f'<script type="module" src="{e(s)}"></script>' for s in scripts)
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title)} - {SITE_NAME}</title>"
        f'<meta name="description" content="{e(description or title)}">'
        '<link rel="stylesheet" href="/content/site/assets/site.css">'
        f"{script_tags}</head><body>"
        '<a class="skip" href="#main">跳到正文</a>'
        f'<header><a class="brand" href="/content/site">{SITE_NAME}</a><nav aria-label="栏目"><ul>{nav}</ul></nav></header>'  # noqa: E501
        f'<main id="main">{body}</main>'
        "<footer>上海申康医院发展中心 · 内容经三级审核后发布</footer></body></html>"
    )


def _item_url(doc: dict[str, Any]) -> str:
    return f"/content/site/{'articles' if doc['kind'] == 'article' else 'videos'}/{e(doc['id'])}"


def _list(docs: Sequence[dict[str, Any]]) -> str:
    if not docs:
        return '<p class="meta">暂无内容</p>'
    rows = []
    for d in docs:
        rows.append(
            f'<li><a class="t" href="{_item_url(d)}">{e(d["title"])}</a>'
            f'<div class="meta">{e(hospital_name(d["hospital"]))} · {e((d.get("published_at") or "")[:10])}</div>'
            + (f"<div>{e(d['summary'])}</div>" if d.get("summary") else "")
            + "</li>"
        )
    return '<ul class="list">' + "".join(rows) + "</ul>"


def search_form(query: str = "") -> str:
    return (
        '<form class="search" role="search" action="/content/site/search" method="get">'
        '<label for="q" class="skip">搜索文章和视频</label>'
        f'<input id="q" name="q" type="search" value="{e(query)}" placeholder="疾病、症状或拼音，如 tnb、中风" maxlength="50">'  # noqa: E501
        "<button type=submit>搜索</button></form>"
    )


def home(columns: dict[str, list[dict[str, Any]]], videos: list[dict[str, Any]]) -> str:
    parts = [f"<h1>{SITE_NAME}</h1>", search_form()]
    for key, name in COLUMNS.items():
        parts.append(
            f'<section><h2><a href="/content/site/columns/{key}">{e(name)}</a></h2>{_list(columns.get(key, [])[:5])}</section>'  # noqa: E501
        )
    parts.append(f'<section><h2><a href="/content/site/videos">科普视频</a></h2>{_list(videos[:5])}</section>')
    return page("首页", "".join(parts), description="申康中心及市级医院的医联动态、健康资讯、科普知识与疾病防治指南")


def column(key: str, docs: list[dict[str, Any]]) -> str:
    name = COLUMNS.get(key, "科普视频")
    return page(name, f"<h1>{e(name)}</h1>{_list(docs)}")


def _diseases(doc: dict[str, Any]) -> str:
    tags = "".join(
        f'<a class="tag" href="/content/site/videos?disease={e(d["code"])}">{e(d["name"])}（{e(d["code"])}）</a>'
        for d in doc.get("diseases") or []
    )
    return f'<p aria-label="相关疾病">{tags}</p>' if tags else ""


def _integrity(doc: dict[str, Any]) -> str:
    return f'<p class="digest">版本 {e(doc["version"])} · 完整性校验（SM3）{e(doc.get("digest") or "")}</p>'


def article(doc: dict[str, Any]) -> str:
    paragraphs = "".join(f"<p>{e(p.strip())}</p>" for p in doc["body"].split("\n\n") if p.strip())
    source = (
        f'<p class="meta">来源：<a href="{e(doc["source_url"])}" rel="nofollow">{e(doc["source_url"])}</a></p>'
        if doc.get("source_url")
        else ""
    )
    body = (
        f"<article><h1>{e(doc['title'])}</h1>"
        f'<p class="meta">{e(COLUMNS.get(doc["column"], ""))} · {e(hospital_name(doc["hospital"]))} · '
        f'<time datetime="{e(doc.get("published_at") or "")}">{e((doc.get("published_at") or "")[:10])}</time></p>'
        f"{_diseases(doc)}{paragraphs}{source}{_integrity(doc)}</article>"
    )
    return page(doc["title"], body, description=doc.get("summary") or doc["title"])


def video(doc: dict[str, Any]) -> str:
    media = doc.get("media") or {}
    base = f"/content/media/{e(doc['id'])}"
    cover = f"{base}/cover.jpg" if media.get("cover") else ""
    minutes = int((media.get("duration_s") or 0) // 60)
    seconds = int((media.get("duration_s") or 0) % 60)
    body = (
        f"<article><h1>{e(doc['title'])}</h1>"
        f'<p class="meta">{e(hospital_name(doc["hospital"]))} · {e("、".join(doc.get("departments") or []))} · '
        f"适合{e(AUDIENCES.get(doc.get('audience', 'public'), '公众'))} · 时长 {minutes}:{seconds:02d}</p>"
        f'<video id="player" controls playsinline preload="none" poster="{cover}" '
        f'data-src="{base}/master.m3u8" aria-label="视频：{e(doc["title"])}"></video>'
        '<p class="meta" id="player-status" role="status"></p>'
        f"{_diseases(doc)}<p>{e(doc.get('summary') or '')}</p>{_integrity(doc)}</article>"
    )
    return page(
        doc["title"], body, description=doc.get("summary") or doc["title"], scripts=["/content/site/assets/player.js"]
    )


def results(query: str, answer: Any, facets_base: str = "/content/site/search") -> str:
    parts = ["<h1>搜索</h1>", search_form(query)]
    if query:
        parts.append(f'<p class="meta" role="status">“{e(query)}” 共 {answer.total} 条结果</p>')
        rows = [
            f'<li><a class="t" href="{e(h.url)}">{e(h.title)}</a><span class="tag">{"视频" if h.kind == "video" else "文章"}</span>'  # noqa: E501
            f'<div class="meta">{e(hospital_name(h.hospital))}</div><div>{e(h.summary)}</div></li>'
            for h in answer.hits
        ]
        parts.append(
            '<ul class="list">' + "".join(rows) + "</ul>" if rows else "<p>没有找到相关内容，换个说法试试。</p>"
        )
        hospitals = "".join(
            f'<a class="tag" href="{facets_base}?q={e(query)}&amp;hospital={e(v)}">{e(hospital_name(v))} {c}</a>'
            for v, c in answer.facets.get("hospital", [])
        )
        if hospitals:
            parts.append(f"<h2>按医院</h2><p>{hospitals}</p>")
    return page(f"搜索 {query}" if query else "搜索", "".join(parts))


def library(
    hits: Sequence[Any],
    by_hospital: Sequence[tuple[str, int]],
    by_disease: Sequence[tuple[str, int]],
    disease_names: dict[str, str],
    *,
    title: str = "科普视频",
) -> str:
    rows = "".join(
        f'<li><a class="t" href="{e(h.url)}">{e(h.title)}</a><div class="meta">{e(hospital_name(h.hospital))}</div></li>'  # noqa: E501
        for h in hits
    )
    hospitals = "".join(
        f'<a class="tag" href="/content/site/videos?hospital={e(v)}">{e(hospital_name(v))} {c}</a>'
        for v, c in by_hospital
    )
    diseases = "".join(
        f'<a class="tag" href="/content/site/videos?disease={e(v)}">{e(disease_names.get(v, v))} {c}</a>'
        for v, c in by_disease
    )
    body = (
        f"<h1>{e(title)}</h1>{search_form()}<h2>按医院浏览</h2><p>{hospitals or '暂无'}</p>"
        f"<h2>按疾病浏览</h2><p>{diseases or '暂无'}</p><h2>视频</h2>"
        + (f'<ul class="list">{rows}</ul>' if rows else '<p class="meta">暂无视频</p>')
    )
    return page(title, body)


def not_found() -> str:
    return page(
        "页面不存在", '<h1>页面不存在</h1><p>内容可能已撤回或尚未发布。<a href="/content/site">返回首页</a></p>'
    )


def console() -> str:
    """The editors' statistics console (内容统计): a desktop page whose script (``console.js``, with the
    chart library; never loaded by the public pages) fetches ``/content/stats`` with the staff token it
    takes from the address's ``#token=`` fragment (kept in the tab's sessionStorage, never in the URL)."""
    return (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>内容统计 - {SITE_NAME}</title>"
        '<meta name="robots" content="noindex">'
        '<link rel="stylesheet" href="/content/site/assets/console.css">'
        '<script type="module" src="/content/site/assets/console.js"></script></head><body class="console">'
        '<a class="skip" href="#main">跳到正文</a>'
        f'<header><span class="brand">{SITE_NAME} · 内容统计</span></header>'
        '<main id="main"><h1>网站与公众号统计</h1>'
        '<form id="range" class="range" aria-label="统计时段">'
        '<label for="from">开始日期</label> <input id="from" name="from" type="date" required> '
        '<label for="to">结束日期</label> <input id="to" name="to" type="date" required> '
        '<button type="submit">查询</button></form>'
        '<p id="status" class="meta" role="status" aria-live="polite">正在加载…</p>'
        '<div id="report" hidden>'
        '<section aria-labelledby="h-views"><h2 id="h-views">每日浏览量与访客数</h2>'
        '<div class="pair"><div id="chart-views" class="chart" role="img" aria-label="每日浏览量与访客数折线图，数据见右侧表格"></div>'  # noqa: E501
        '<table id="table-views"><caption>每日浏览量与访客数</caption><thead><tr><th scope="col">日期</th>'
        '<th scope="col">浏览量</th><th scope="col">访客数</th></tr></thead><tbody></tbody></table></div></section>'
        '<section aria-labelledby="h-oa"><h2 id="h-oa">公众号：关注人数、阅读与分享</h2>'
        '<div class="pair"><div id="chart-oa" class="chart" role="img" aria-label="公众号每日阅读与分享折线图，数据见右侧表格"></div>'  # noqa: E501
        '<table id="table-oa"><caption>公众号每日数据</caption><thead><tr><th scope="col">日期</th>'
        '<th scope="col">关注人数</th><th scope="col">新增</th><th scope="col">取消</th><th scope="col">阅读</th>'
        '<th scope="col">分享</th></tr></thead><tbody></tbody></table></div></section>'
        '<div class="tops"><section aria-labelledby="h-items"><h2 id="h-items">浏览最多的内容</h2>'
        '<table id="table-items"><thead><tr><th scope="col">标题</th><th scope="col">栏目</th>'
        '<th scope="col">浏览量</th></tr></thead><tbody></tbody></table></section>'
        '<section aria-labelledby="h-columns"><h2 id="h-columns">栏目</h2>'
        '<table id="table-columns"><thead><tr><th scope="col">栏目</th><th scope="col">内容浏览量</th>'
        '<th scope="col">栏目页浏览量</th></tr></thead><tbody></tbody></table></section>'
        '<section aria-labelledby="h-terms"><h2 id="h-terms">热门搜索词</h2>'
        '<table id="table-terms"><thead><tr><th scope="col">搜索词</th><th scope="col">次数</th></tr></thead>'
        "<tbody></tbody></table></section></div></div></main>"
        "<footer>上海申康医院发展中心 · 统计不含个人信息（访客按每日随机盐的摘要去重，次日即不可追溯）</footer>"
        "</body></html>"
    )
