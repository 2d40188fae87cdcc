"""HTTP adapters of the pay service: the transport to a real channel's gateway, and the webhook POST."""

from __future__ import annotations

import http.client
import ssl
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from bianjie.pay.channels import ChannelUnknown, WireResponse


class HttpTransport:
    """HTTP(S) to a channel's gateway (``bianjie.pay.channels.Transport``), over kept-alive connections.

    Each handler thread keeps one connection to the channel and reuses it while it has been idle for
    less than ``max_idle`` seconds (below any sane server keep-alive), so a charge costs no TCP (and, on
    HTTPS, no TLS) handshake. Any failure is ``ChannelUnknown`` and drops the connection: the charge
    algorithm then queries the trade, never resends blindly.
    """

    def __init__(self, base_url: str, *, max_idle: float = 4.0) -> None:
        parts = urlsplit(base_url.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path
        self._max_idle = max_idle
        self._local = threading.local()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is not None and time.monotonic() - self._local.used < self._max_idle:
            conn.timeout = timeout
            if conn.sock is not None:
                conn.sock.settimeout(timeout)
            return conn
        if conn is not None:
            conn.close()
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        self._local.conn = conn
        return conn

    def send(self, path: str, headers: dict[str, str], body: bytes, timeout: float) -> WireResponse:
        conn = self._connection(timeout)
        try:
            conn.request(
                "POST", self._prefix + path, body=body, headers={"Content-Type": "application/json", **headers}
            )
            response = conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            self._local.conn = None
            raise ChannelUnknown(f"{type(exc).__name__}") from exc
        self._local.used = time.monotonic()
        if response.will_close:
            conn.close()
            self._local.conn = None
        return WireResponse(response.status, dict(response.getheaders()), data)


def http_post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> int:
    """A webhook POST (``bianjie.pay.webhooks.Poster``): the HTTP status, or 0 when none arrived."""
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, urllib.error.URLError):
        return 0
