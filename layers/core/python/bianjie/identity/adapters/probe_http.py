"""The live probe's network (``bianjie.identity.probe.ProbeHttp``) over urllib: one request, redirects not
followed (the probe reads where a hospital's page sends the browser), a short timeout, failures named."""

from __future__ import annotations

import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from bianjie.identity.probe import ProbeAnswer, Unreachable


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class UrllibProbeHttp:
    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout
        self.opener = urllib.request.build_opener(_NoRedirect)

    def request(
        self,
        method: str,
        url: str,
        *,
        form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ProbeAnswer:
        data = urllib.parse.urlencode(dict(form)).encode("ascii") if form is not None else None
        head = dict(headers or {})
        if data is not None:
            head.setdefault("Content-Type", "application/x-www-form-urlencoded")
        request = urllib.request.Request(url, data=data, headers=head, method=method)
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                return ProbeAnswer(int(response.status), dict(response.headers.items()), response.read(65536))
        except urllib.error.HTTPError as exc:  # 3xx (not followed), 4xx, 5xx: an answer all the same
            body = exc.read(65536) if exc.fp else b""
            return ProbeAnswer(int(exc.code), dict(exc.headers.items()) if exc.headers else {}, body)
        except urllib.error.URLError as exc:
            reason = exc.reason
            if isinstance(reason, socket.gaierror):
                raise Unreachable("dns") from None
            if isinstance(reason, ssl.SSLError):
                raise Unreachable("tls") from None
            if isinstance(reason, TimeoutError):
                raise Unreachable("timeout") from None
            if isinstance(reason, ConnectionRefusedError):
                raise Unreachable("refused") from None
            raise Unreachable("network") from None
        except TimeoutError:
            raise Unreachable("timeout") from None
        except ssl.SSLError:
            raise Unreachable("tls") from None
        except (ConnectionError, OSError):
            raise Unreachable("network") from None
