"""HTTP to the NHSA prescription center (``bianjie.rx.center.client.Transport``)."""

from __future__ import annotations

import urllib.error
import urllib.request

from bianjie.rx.center.port import CenterError


class HttpTransport:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    def post(self, path: str, body: bytes) -> bytes:
        request = urllib.request.Request(
            self._base + path, data=body, method="POST", headers={"Content-Type": "application/json;charset=utf-8"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                return bytes(response.read())
        except (urllib.error.URLError, TimeoutError) as exc:
            raise CenterError(
                "the prescription center cannot be reached; retry later", code="CENTER_UNAVAILABLE", status=503
            ) from exc
