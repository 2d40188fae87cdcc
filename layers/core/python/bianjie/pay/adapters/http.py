"""HTTP adapters of the pay service: the transport to a real channel's gateway, and the webhook POST."""

from __future__ import annotations

import urllib.error
import urllib.request

from bianjie.pay.channels import ChannelUnknown, WireResponse


class HttpTransport:
    """HTTPS to a channel's gateway (``bianjie.pay.channels.Transport``)."""

    def __init__(self, base_url: str) -> None:
        self._base = base_url.rstrip("/")

    def send(self, path: str, headers: dict[str, str], body: bytes, timeout: float) -> WireResponse:
        request = urllib.request.Request(
            self._base + path, data=body, method="POST", headers={"Content-Type": "application/json", **headers}
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return WireResponse(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as exc:
            return WireResponse(exc.code, dict(exc.headers.items()), exc.read())
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            raise ChannelUnknown(f"{type(exc).__name__}") from exc


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
