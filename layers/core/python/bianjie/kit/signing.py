"""Partner request signatures: SM2-with-SM3 over a canonical request (docs/partner-api.md).

Header::

    Authorization: SM2-SM3 app_id="...", serial="...", timestamp="<unix seconds>",
                   nonce="<16-64 of [A-Za-z0-9_-]>", signature="<base64 DER SM2 signature>"

Canonical request (UTF-8, lines joined by "\\n", no trailing newline)::

    SM2-SM3
    <METHOD upper-case>
    <path, each segment percent-decoded then RFC 3986 encoded (unreserved kept, '/' kept)>
    <canonical query>
    <app_id>
    <serial>
    <timestamp, as in the header>
    <nonce>
    <lower-hex SM3 of the raw body bytes (SM3 of the empty string if no body)>

Canonical query: every name and value percent-decoded (UTF-8; "+" decodes to a space, as API Gateway
does), re-encoded with RFC 3986 (everything but ``A-Z a-z 0-9 - . _ ~`` as %XX, upper-case hex),
``name=value`` pairs (``=`` even when the value is empty) sorted by encoded name then encoded value,
joined with "&"; the empty string when there is no query.

``query`` arguments: either a mapping of DECODED name -> list of decoded values (what API Gateway
gives in ``multiValueQueryStringParameters`` and Chalice in ``query_params``; a plain string value
counts as a one-element list), or a raw query string as it appears after "?" in the URL.

Check order in ``PartnerVerifier.verify`` (cheap first; nothing is recorded before the signature
verifies, so a forger cannot burn a partner's nonces)::

    header present / well-formed -> timestamp window -> app known -> app enabled -> source IP allowed
    -> key serial active -> signature -> nonce unused (recorded here, atomically)
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

from bianjie.kit.crypto import CryptoError, Sm2PrivateKey, Sm2PublicKey, sm2_sign, sm2_verify, sm3
from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore
from bianjie.kit.errors import Forbidden, Unauthorized
from bianjie.kit.partners import APP_ID_RE, Partner, PartnerRegistry

SCHEME = "SM2-SM3"
DEFAULT_WINDOW = 300
NONCE_RE = re.compile(r"[A-Za-z0-9_-]{16,64}")
SERIAL_RE = re.compile(r"[1-9][0-9]{0,8}")
TIMESTAMP_RE = re.compile(r"[0-9]{1,12}")
BASE64_RE = re.compile(r"[A-Za-z0-9+/]+={0,2}")
PARAMS = ("app_id", "serial", "timestamp", "nonce", "signature")
MAX_HEADER_CHARS = 1024
_UNRESERVED = "-._~"  # plus ALPHA / DIGIT, which quote() never encodes

QueryArg = Mapping[str, str | Sequence[str] | None] | str | None


# ---------------------------------------------------------------- canonical form


def encode_component(value: str) -> str:
    """RFC 3986 percent-encoding of a decoded string (UTF-8, upper-case hex, unreserved kept)."""
    return quote(value, safe=_UNRESERVED, encoding="utf-8", errors="strict")


def _decode_component(raw: str) -> str:
    return unquote(raw.replace("+", " "), encoding="utf-8", errors="strict")


def parse_query_string(raw: str) -> list[tuple[str, str]]:
    """Split a raw query string into decoded (name, value) pairs; ``a`` and ``a=`` both give value ""."""
    pairs: list[tuple[str, str]] = []
    for part in raw.lstrip("?").split("&"):
        if part == "":
            continue
        name, _, value = part.partition("=")
        pairs.append((_decode_component(name), _decode_component(value)))
    return pairs


def _query_pairs(query: QueryArg) -> list[tuple[str, str]]:
    if query is None:
        return []
    if isinstance(query, str):
        return parse_query_string(query)
    pairs: list[tuple[str, str]] = []
    getlist = getattr(query, "getlist", None)  # Chalice's MultiDict keeps repeated names
    for name in query:
        values: Any = getlist(name) if getlist is not None else query[name]
        if values is None:
            values = [""]
        elif isinstance(values, str):
            values = [values]
        pairs.extend((str(name), str(v)) for v in values)
    return pairs


def canonical_query(query: QueryArg) -> str:
    encoded = sorted((encode_component(n), encode_component(v)) for n, v in _query_pairs(query))
    return "&".join(f"{n}={v}" for n, v in encoded)


def canonical_path(path: str) -> str:
    """The path in one form whether the server sees it decoded (ASGI, API Gateway) or as sent:
    percent-decode, then encode everything but unreserved characters and '/'."""
    return quote(unquote(path, encoding="utf-8", errors="strict"), safe="/" + _UNRESERVED, encoding="utf-8")


def body_digest(body: bytes | str | None) -> str:
    if body is None:
        body = b""
    elif isinstance(body, str):
        body = body.encode("utf-8")
    return sm3(bytes(body)).hex()


def canonical_request(
    method: str,
    path: str,
    query: QueryArg,
    body: bytes | str | None,
    app_id: str,
    serial: str,
    timestamp: int | str,
    nonce: str,
) -> bytes:
    """The exact bytes that are signed."""
    lines = (
        SCHEME,
        method.upper(),
        canonical_path(path),
        canonical_query(query),
        app_id,
        str(serial),
        str(timestamp),
        nonce,
        body_digest(body),
    )
    return "\n".join(lines).encode("utf-8")


# ---------------------------------------------------------------- signing (partners, tests, our CLI)


def new_nonce() -> str:
    return secrets.token_urlsafe(18)  # 24 chars of [A-Za-z0-9_-]


def sign_request(
    private_key: Sm2PrivateKey,
    method: str,
    path: str,
    query: QueryArg,
    body: bytes | str | None,
    app_id: str,
    serial: str,
    timestamp: int | None = None,
    nonce: str | None = None,
) -> dict[str, str]:
    """Headers to add to a request: ``{"Authorization": "SM2-SM3 ..."}``."""
    ts = str(int(time.time()) if timestamp is None else int(timestamp))
    nonce = nonce or new_nonce()
    message = canonical_request(method, path, query, body, app_id, serial, ts, nonce)
    signature = base64.b64encode(sm2_sign(private_key, message)).decode("ascii")
    return {"Authorization": format_authorization(app_id, serial, ts, nonce, signature)}


def format_authorization(app_id: str, serial: str, timestamp: str, nonce: str, signature: str) -> str:
    return (
        f'{SCHEME} app_id="{app_id}", serial="{serial}", timestamp="{timestamp}", '
        f'nonce="{nonce}", signature="{signature}"'
    )


# ---------------------------------------------------------------- parsing


@dataclass(frozen=True)
class SignatureParams:
    app_id: str
    serial: str
    timestamp: str
    nonce: str
    signature: bytes

    @property
    def timestamp_int(self) -> int:
        return int(self.timestamp)


def _missing() -> Unauthorized:
    return Unauthorized(f"the request is not signed: send an Authorization: {SCHEME} header", code="SIGNATURE_MISSING")


def _malformed(why: str) -> Unauthorized:
    return Unauthorized(f"the Authorization header is malformed: {why}", code="SIGNATURE_MALFORMED")


_PARAM_RE = re.compile(r'\s*([a-z_]+)\s*=\s*"([^"]*)"\s*')


def parse_authorization(header: str | None) -> SignatureParams:
    """Parse an ``SM2-SM3`` Authorization value; 401 SIGNATURE_MISSING / SIGNATURE_MALFORMED."""
    if header is None or not header.strip():
        raise _missing()
    if len(header) > MAX_HEADER_CHARS:
        raise _malformed("too long")
    scheme, _, rest = header.strip().partition(" ")
    if scheme != SCHEME:
        if scheme.lower() == "bearer":
            raise _missing()  # a user token on a partner route: the partner signature is what is missing
        raise _malformed(f"the scheme must be {SCHEME}")
    values: dict[str, str] = {}
    for part in rest.split(","):
        m = _PARAM_RE.fullmatch(part)
        if m is None:
            raise _malformed('expected name="value" pairs separated by commas')
        name, value = m.groups()
        if name not in PARAMS:
            raise _malformed(f"unknown parameter {name}")
        if name in values:
            raise _malformed(f"duplicate parameter {name}")
        values[name] = value
    absent = [p for p in PARAMS if p not in values]
    if absent:
        raise _malformed(f"missing {', '.join(absent)}")
    if not APP_ID_RE.fullmatch(values["app_id"]):
        raise _malformed("app_id")
    if not SERIAL_RE.fullmatch(values["serial"]):
        raise _malformed("serial must be a positive decimal integer")
    if not TIMESTAMP_RE.fullmatch(values["timestamp"]):
        raise _malformed("timestamp must be unix seconds")
    if not NONCE_RE.fullmatch(values["nonce"]):
        raise _malformed("nonce must be 16-64 characters of A-Z a-z 0-9 - _")
    if not BASE64_RE.fullmatch(values["signature"]) or len(values["signature"]) % 4:
        raise _malformed("signature must be standard base64 with padding")
    try:
        signature = base64.b64decode(values["signature"], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _malformed("signature must be standard base64") from exc
    if not 8 <= len(signature) <= 80:  # a DER SM2 signature is 70-72 bytes, rarely fewer
        raise _malformed("signature must be a DER SM2 signature")
    return SignatureParams(
        app_id=values["app_id"],
        serial=values["serial"],
        timestamp=values["timestamp"],
        nonce=values["nonce"],
        signature=signature,
    )


def header_value(headers: Mapping[str, str] | None, name: str) -> str | None:
    """Case-insensitive header lookup on any mapping (Chalice's headers are already case-insensitive)."""
    if not headers:
        return None
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, val in headers.items():
        if key.lower() == lowered:
            return val
    return None


# ---------------------------------------------------------------- nonces


class NonceStore:
    """Remembers (app_id, nonce) pairs for ``ttl`` seconds.

    ``ttl`` defaults to twice the timestamp window: a request stamped at the far edge of the window
    (now + window) stays acceptable until now + 2*window, so its nonce must be remembered that long.
    """

    def __init__(
        self,
        store: DocumentStore,
        table: str,
        ttl: int = 2 * DEFAULT_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._table = table
        self._ttl = ttl
        self._clock = clock

    def remember(self, app_id: str, nonce: str) -> None:
        """Record the nonce; 401 NONCE_REPLAYED if it is already recorded and not expired."""
        now = int(self._clock())
        # claim: a random token, so a retried write of our own is told apart from another request's
        item = {
            "pk": f"{app_id}#{nonce}",
            "app_id": app_id,
            "seen_at": now,
            "expires_at": now + self._ttl,
            "claim": secrets.token_hex(8),
        }
        try:
            self._store.put(self._table, item, condition=Cond.absent())
        except ConditionFailed as exc:
            raise Unauthorized("this nonce was already used", code="NONCE_REPLAYED") from exc


# ---------------------------------------------------------------- verification


@dataclass(frozen=True)
class VerifiedPartner:
    app_id: str
    serial: str
    partner: Partner


class PartnerVerifier:
    def __init__(
        self,
        registry: PartnerRegistry,
        nonce_store: NonceStore,
        clock: Callable[[], float] = time.time,
        window: int = DEFAULT_WINDOW,
        header: str = "Authorization",
    ) -> None:
        self._registry = registry
        self._nonces = nonce_store
        self._clock = clock
        self._window = window
        self._header = header

    def verify(
        self,
        method: str,
        path: str,
        query: QueryArg,
        headers: Mapping[str, str] | None,
        body: bytes | str | None,
        source_ip: str,
    ) -> VerifiedPartner:
        """Authenticate a partner request or raise the AppError naming the first failed check.

        ``source_ip`` must be the connection's address (API Gateway ``requestContext.identity.sourceIp``),
        never an X-Forwarded-For value the caller controls.
        """
        params = parse_authorization(header_value(headers, self._header))

        now = self._clock()
        if abs(now - params.timestamp_int) > self._window:
            raise Unauthorized(
                f"timestamp is more than {self._window} s away from server time",
                code="TIMESTAMP_OUT_OF_WINDOW",
                details={"server_time": int(now)},
            )

        partner = self._registry.lookup(params.app_id)
        if partner is None:
            raise Unauthorized("unknown app_id", code="APP_UNKNOWN")
        if not partner.active:
            raise Forbidden("this app is disabled", code="APP_DISABLED")
        if not partner.allows_ip(source_ip):
            raise Forbidden("the source address is not in this app's allowlist", code="IP_NOT_ALLOWED")
        key = partner.active_key(params.serial)
        if key is None:
            raise Unauthorized("unknown or retired key serial", code="KEY_UNKNOWN")

        try:
            message = canonical_request(
                method, path, query, body, params.app_id, params.serial, params.timestamp, params.nonce
            )
        except UnicodeError as exc:
            raise Unauthorized("the query string is not valid percent-encoded UTF-8", code="SIGNATURE_INVALID") from exc
        if not _verify(key.public_key, message, params.signature):
            raise Unauthorized("the signature does not verify", code="SIGNATURE_INVALID")

        self._nonces.remember(params.app_id, params.nonce)
        return VerifiedPartner(app_id=params.app_id, serial=params.serial, partner=partner)


def _verify(public_key_hex: str, message: bytes, signature: bytes) -> bool:
    try:
        return bool(sm2_verify(Sm2PublicKey.from_hex(public_key_hex), message, signature))
    except (CryptoError, ValueError):
        return False


def iter_reason_codes() -> Iterable[tuple[str, int]]:
    """(code, HTTP status) of every rejection, for docs and tests."""
    return (
        ("SIGNATURE_MISSING", 401),
        ("SIGNATURE_MALFORMED", 401),
        ("TIMESTAMP_OUT_OF_WINDOW", 401),
        ("APP_UNKNOWN", 401),
        ("APP_DISABLED", 403),
        ("IP_NOT_ALLOWED", 403),
        ("KEY_UNKNOWN", 401),
        ("SIGNATURE_INVALID", 401),
        ("NONCE_REPLAYED", 401),
    )
