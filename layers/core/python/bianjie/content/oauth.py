"""Web authorisation of the official account's followers (网页授权, ``snsapi_base``): a follower who opens
one of our pages inside WeChat is sent to WeChat's authorize page, comes back with a one-time ``code``,
and we exchange it (``sns/oauth2/access_token``) for their ``openid``.

- ``state`` (WeChat allows ``[a-zA-Z0-9]``, at most 128 bytes) is 32 random hex characters, kept
  server-side for 10 minutes with the page to return to (``wx#oauth#<state> / pending``, TTL) and bound
  to the browser by an HttpOnly cookie: the callback needs both, and the state is deleted on first use,
  so a replayed or forged callback is refused (403 ``OAUTH_STATE``).
- Only site paths (``/content/site...``) are return targets (no open redirect).
- The openid is never stored: the follower's session cookie carries its blind index (HMAC-SM3 under
  the deployment's key, kind ``openid``) and an expiry, sealed with HMAC-SM3 under a derived key.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from bianjie.content.oa import Transport
from bianjie.kit.crypto import hmac_sm3
from bianjie.kit.documents.port import Cond, ConditionFailed, DocumentStore
from bianjie.kit.encoding import b64url, b64url_decode
from bianjie.kit.errors import AppError

AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"
STATE_TTL_S = 600
SESSION_TTL_S = 7200
STATE_RE = re.compile(r"[0-9a-f]{32}")
NEXT_RE = re.compile(r"/content/site(/[A-Za-z0-9._~%/-]*)?(\?[A-Za-z0-9._~%=&+-]*)?")


_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _quote(text: str) -> str:
    """Percent-encoding of a query value (RFC 3986 unreserved characters kept; the domain does no I/O
    and imports no urllib)."""
    return "".join(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in text.encode("utf-8"))


def _refused(message: str, code: str) -> AppError:
    return AppError(message, code=code, status=403)


@dataclass(frozen=True)
class Started:
    location: str
    state: str


@dataclass(frozen=True)
class Finished:
    next: str
    session: str
    follower: str  # the openid's blind index


class FollowerAuth:
    def __init__(self, documents: DocumentStore, table: str, transport: Transport, app_id: str,
                 secret: Callable[[], str], session_key: Callable[[], bytes], blind: Callable[[str], str],
                 clock: Callable[[], float], *, authorize_url: str = AUTHORIZE) -> None:  # fmt: skip
        self.documents = documents
        self.table = table
        self.transport = transport
        self.app_id = app_id
        self.secret = secret
        self.session_key = session_key
        self.blind = blind
        self.clock = clock
        self.authorize_url = authorize_url

    def start(self, next_path: str, callback_url: str) -> Started:
        if not NEXT_RE.fullmatch(next_path) or "//" in next_path or ".." in next_path:
            raise AppError("只能返回本站页面（/content/site…）", code="NEXT_INVALID", status=422)
        state = secrets.token_hex(16)
        now = self.clock()
        self.documents.put(
            self.table,
            {"pk": f"wx#oauth#{state}", "sk": "pending", "next": next_path, "until": now + STATE_TTL_S,
             "expires_at": int(now) + STATE_TTL_S},
            condition=Cond.absent(),
        )  # fmt: skip
        query = "&".join(
            f"{k}={_quote(v)}"
            for k, v in (("appid", self.app_id), ("redirect_uri", callback_url), ("response_type", "code"),
                         ("scope", "snsapi_base"), ("state", state))
        )  # fmt: skip
        return Started(f"{self.authorize_url}?{query}#wechat_redirect", state)

    def finish(self, code: str, state: str, cookie_state: str | None) -> Finished:
        if not STATE_RE.fullmatch(state or "") or not cookie_state or not hmac.compare_digest(state, cookie_state):
            raise _refused("授权请求无效或已过期，请重新打开页面", "OAUTH_STATE")
        key = {"pk": f"wx#oauth#{state}", "sk": "pending"}
        held = self.documents.get(self.table, key)
        try:  # one use only: whoever deletes it first finishes
            self.documents.delete(self.table, key, condition=Cond.exists())
        except ConditionFailed:
            held = None
        if held is None or float(held["until"]) <= self.clock():
            raise _refused("授权请求无效或已过期，请重新打开页面", "OAUTH_STATE")
        answer = self.transport(
            "GET",
            "/sns/oauth2/access_token",
            {"appid": self.app_id, "secret": self.secret(), "code": code, "grant_type": "authorization_code"},
            None,
        )
        if answer.get("errcode") or not answer.get("openid"):
            raise _refused(f"微信未确认授权（错误码 {answer.get('errcode')}）", "OAUTH_CODE")
        follower = self.blind(str(answer["openid"]))
        payload = b64url(json.dumps({"f": follower, "exp": int(self.clock()) + SESSION_TTL_S}).encode())
        seal = hmac_sm3(self.session_key(), payload.encode()).hex()
        return Finished(next=str(held["next"]), session=f"{payload}.{seal}", follower=follower)

    def follower(self, session: str | None) -> str | None:
        """The follower's blind index from a session cookie, or None (absent, forged or expired)."""
        payload, _, seal = (session or "").partition(".")
        if not payload or not seal:
            return None
        expected = hmac_sm3(self.session_key(), payload.encode()).hex()
        if not hmac.compare_digest(expected, seal):
            return None
        try:
            claims = json.loads(b64url_decode(payload))
        except ValueError:
            return None
        return str(claims["f"]) if int(claims.get("exp", 0)) > self.clock() else None
