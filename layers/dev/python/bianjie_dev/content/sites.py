"""Stand-ins of hospital websites for the aggregator (development tooling): static pages served on
loopback, the way the city hospitals publish news. ``ruijin`` has an RSS feed (and answers conditional
requests with 304); ``renji`` has only a list page and detail pages wrapped in navigation and footers;
``chest`` has a list page whose layout can change (its links move to another path, so the configured rule
matches nothing). Tests and the demo add items and change layouts while it runs."""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from xml.sax.saxutils import escape


@dataclass
class Item:
    number: int
    title: str
    text: str
    date: str


@dataclass
class Site:
    name: str
    hospital: str
    items: list[Item] = field(default_factory=list)
    layout: str = "v1"
    broken_feed: bool = False


def _detail(site: Site, item: Item) -> str:
    paragraphs = "".join(f"<p>{escape(p)}</p>" for p in item.text.split("\n\n"))
    return (
        f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(item.title)} - {site.name}</title>'  # noqa: E501
        f'<meta property="article:published_time" content="{item.date}"></head><body>'
        f'<div class="nav"><a href="/">首页</a> <a href="/{site.hospital}/news/">新闻中心</a> <a href="#">就医指南</a></div>'  # noqa: E501
        f'<div class="main"><h1>{escape(item.title)}</h1><div class="info">发布时间：{item.date} 浏览次数：1024</div>'
        f'<div class="content">{paragraphs}</div></div>'
        '<div class="footer">版权所有 © 医院 沪ICP备00000000号 地址：上海市</div></body></html>'
    )


class HospitalSites:
    def __init__(self) -> None:
        self.sites = {
            "ruijin": Site("瑞金医院", "ruijin"),
            "renji": Site("仁济医院", "renji"),
            "chest": Site("胸科医院", "chest"),
        }
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # content --------------------------------------------------------------------------------------

    def add(self, site: str, title: str, text: str, date: str = "2026-11-20") -> Item:
        with self._lock:
            s = self.sites[site]
            item = Item(100 + len(s.items) + 1, title, text, date)
            s.items.append(item)
            return item

    def change_layout(self, site: str) -> None:
        self.sites[site].layout = "v2"

    def break_feed(self, site: str = "ruijin") -> None:
        self.sites[site].broken_feed = True

    # serving --------------------------------------------------------------------------------------

    def page(self, path: str) -> tuple[int, str, str]:
        parts = [p for p in path.split("?")[0].split("/") if p]
        site = self.sites.get(parts[0]) if parts else None
        if site is None:
            return 404, "text/plain", "not found"
        if parts[1:] == ["feed.xml"] and site.hospital == "ruijin":
            if site.broken_feed:
                return 200, "application/rss+xml", "<rss><channel><item><title>未闭合"
            entries = "".join(
                f"<item><title>{escape(i.title)}</title><link>http://{{host}}/{site.hospital}/news/{i.number}.html</link>"
                f"<description>{escape(i.text)}</description>"
                f"<pubDate>{format_datetime(datetime.fromisoformat(i.date).replace(tzinfo=UTC))}</pubDate></item>"
                for i in site.items
            )
            return (
                200,
                "application/rss+xml; charset=utf-8",
                (
                    f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{site.name}新闻</title>'
                    f"{entries}</channel></rss>"
                ),
            )
        folder = "news" if site.layout == "v1" else "articles"
        if parts[1:] == ["news"]:
            links = "".join(
                f'<li><a href="/{site.hospital}/{folder}/{i.number}.html">{escape(i.title)}</a></li>'
                for i in site.items
            )
            return (
                200,
                "text/html; charset=utf-8",
                (
                    f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>新闻中心 - {site.name}</title></head>'  # noqa: E501
                    f'<body><div class="nav"><a href="/">首页</a></div><ul class="news-list">{links}</ul></body></html>'
                ),
            )
        if len(parts) == 3 and parts[1] in ("news", "articles") and parts[2].endswith(".html"):
            number = parts[2].removesuffix(".html")
            item = next((i for i in site.items if str(i.number) == number), None)
            if item is not None:
                return 200, "text/html; charset=utf-8", _detail(site, item)
        return 404, "text/plain", "not found"

    def start(self, port: int = 0) -> str:
        sites = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, kind, body = sites.page(self.path)
                body = body.replace("{host}", self.headers.get("Host", ""))
                data = body.encode("utf-8")
                etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
                sites.requests.append((self.path, self.headers.get("If-None-Match") or ""))
                if status == 200 and self.headers.get("If-None-Match") == etag:
                    self.send_response(304)
                    self.send_header("ETag", etag)
                    self.end_headers()
                    return
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True, name="hospital-sites").start()
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
