"""Fetching a hospital source over HTTP(S) with conditional requests (If-None-Match, If-Modified-Since),
a timeout and a size cap. Outside the local stage only public addresses are fetched (a source URL that
resolves to a private, loopback or link-local address is refused), so a source cannot reach into the
deployment's own network."""

from __future__ import annotations

import ipaddress
import socket
import urllib.error
import urllib.parse
import urllib.request

from bianjie.content.aggregate import Fetched, FetchFailed

MAX_BYTES = 2 * 1024 * 1024
USER_AGENT = "bianjie-content-aggregator/1 (+https://www.shdc.org.cn)"


class HttpFetcher:
    def __init__(self, *, allow_private: bool = False, timeout_s: float = 10.0) -> None:
        self.allow_private = allow_private
        self.timeout_s = timeout_s

    def _check(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchFailed("只支持 http/https 地址")
        if self.allow_private:
            return
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise FetchFailed(f"域名无法解析（{exc}）") from None
        for info in infos:
            address = ipaddress.ip_address(info[4][0])
            if address.is_private or address.is_loopback or address.is_link_local or address.is_reserved:
                raise FetchFailed("地址不是公网地址")

    def __call__(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> Fetched:
        self._check(url)
        headers = {"User-Agent": USER_AGENT}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        request = urllib.request.Request(url, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:  # the URL is checked above
                body = response.read(MAX_BYTES + 1)
                if len(body) > MAX_BYTES:
                    raise FetchFailed("页面超过 2 MB")
                return Fetched(200, body, response.headers.get("ETag"), response.headers.get("Last-Modified"))
        except urllib.error.HTTPError as exc:
            if exc.code == 304:
                return Fetched(304, b"", etag, last_modified)
            raise FetchFailed(f"HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise FetchFailed(type(exc).__name__) from None
