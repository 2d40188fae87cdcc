"""The ``Http`` port over urllib (HTTPS to the upstream identity providers), JSON answers."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from bianjie.identity.upstream import UpstreamRefused


class UrllibHttp:
    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    def _send(self, request: urllib.request.Request) -> Any:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            try:
                return json.loads(exc.read() or b"{}")
            except ValueError:
                raise UpstreamRefused(f"upstream answered HTTP {exc.code}") from None
        except (urllib.error.URLError, TimeoutError, ValueError) as exc:
            raise UpstreamRefused(f"upstream unreachable or not JSON: {type(exc).__name__}") from None

    def get(self, url: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Any:
        query = urllib.parse.urlencode(dict(params))
        target = f"{url}{'&' if '?' in url else '?'}{query}" if query else url
        return self._send(urllib.request.Request(target, headers=dict(headers or {}), method="GET"))

    def post_form(self, url: str, form: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Any:
        data = urllib.parse.urlencode(dict(form)).encode("ascii")
        head = {"Content-Type": "application/x-www-form-urlencoded", **dict(headers or {})}
        return self._send(urllib.request.Request(url, data=data, headers=head, method="POST"))

    def post_form_status(self, url: str, form: Mapping[str, str]) -> int:
        """POST a form and only the status (OIDC back-channel logout answers no body); 0 if unreachable."""
        data = urllib.parse.urlencode(dict(form)).encode("ascii")
        request = urllib.request.Request(
            url, data=data, headers={"Content-Type": "application/x-www-form-urlencoded"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except (urllib.error.URLError, TimeoutError):
            return 0
