"""Which ``notify_url`` a hospital may give: the guard against a server-side request forgery.

Pay POSTs a signed webhook to the charge's ``notify_url``. Were any URL accepted, a partner (or whoever
holds its key) could make our servers call addresses inside the hospital's or our network (the
PostgreSQL host, a metadata service, an admin console on loopback). So, outside the local stage:

- only ``https://``, no user name or password in the URL, default or explicit port;
- the host must be one registered for the hospital (partner setting ``pay`` / ``notify_hosts``, set with
  ``bianjie pay notify-hosts APP_ID HOST...``); an IP literal must be registered as such;
- every address the host resolves to must be a public one: never loopback, link-local, private (RFC
  1918, unique-local), shared (100.64/10), multicast, reserved or unspecified. The check runs when the
  charge is accepted and again before each delivery (``guarded_post``), so a DNS answer changed later
  (rebinding) does not get through.

On the local stage (``BIANJIE_STAGE=local``) any http(s) URL is accepted, so the walkthrough and the
tests can receive webhooks on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from bianjie.kit.actor import Actor
from bianjie.kit.errors import AppError

Resolver = Callable[[str], Sequence[str]]
SETTING = "notify_hosts"


def resolve(host: str) -> list[str]:
    """Every address ``host`` resolves to (IPv4 and IPv6)."""
    try:
        return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, 443, proto=socket.IPPROTO_TCP)})
    except (socket.gaierror, UnicodeError):
        return []


def _refuse(message: str) -> AppError:
    return AppError(message, code="NOTIFY_URL_REFUSED", status=422)


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def check_addresses(host: str, resolver: Resolver = resolve) -> None:
    """Refuse a host that resolves to nothing or to any address that is not public."""
    addresses = list(resolver(host))
    if not addresses:
        raise _refuse(f"notify_url host {host} does not resolve")
    inner = [a for a in addresses if not public_address(a)]
    if inner:
        raise _refuse(f"notify_url host {host} resolves to a non-public address ({inner[0]}); use a public one")


def check_notify_url(url: str, hospital: Actor, *, local: bool, resolver: Resolver = resolve) -> None:
    """Raises 422 NOTIFY_URL_REFUSED unless ``url`` may receive this hospital's webhooks."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in range
    except ValueError:
        raise _refuse("notify_url is not a valid URL") from None
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _refuse("notify_url must be an http(s) URL with a host")
    if local:
        return
    if parts.scheme != "https":
        raise _refuse("notify_url must be https:// (plain http only on the local stage)")
    if parts.username is not None or parts.password is not None:
        raise _refuse("notify_url must not carry a user name or password")
    host = parts.hostname.lower().rstrip(".")
    registered = {str(h).lower().rstrip(".") for h in (hospital.setting("pay", SETTING) or [])}
    if host not in registered:
        raise _refuse(
            f"notify_url host {host} is not registered for this hospital; ask the operator to add it"
            " (bianjie pay notify-hosts)"
        )
    check_addresses(host, resolver)


def guarded_post(
    post: Callable[[str, dict[str, str], bytes, float], int], resolver: Resolver = resolve
) -> Callable[[str, dict[str, str], bytes, float], int]:
    """``post`` that first re-checks the URL's addresses (0, "no answer", when they are not public)."""

    def send(url: str, headers: dict[str, str], body: bytes, timeout: float) -> int:
        host = (urlsplit(url).hostname or "").lower()
        try:
            check_addresses(host, resolver)
        except AppError:
            return 0  # the retry schedule, then the dead-letter queue, where an operator sees it
        return post(url, headers, body, timeout)

    return send
