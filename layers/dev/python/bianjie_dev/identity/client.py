"""A relying party and a browser, for walkthroughs, integration tests and the benchmark.

The relying party is Authlib's OAuth2 client (``authlib.integrations.requests_client.OAuth2Session``):
an independent implementation of the client side (PKCE S256, state, the token request, ID token
validation against the provider's JWKS), so our provider is checked by code we did not write. The
browser leg follows redirects by hand and picks the demo person on the stand-in IdP's page, as a
person clicking would, and stops when the provider sends it back to the client's redirect URI.
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

_HREF = re.compile(r'href="([^"]+)"')
_REQ = re.compile(r'name="req" value="([^"]+)"')


@dataclass
class LoginResult:
    token: dict[str, Any]
    id_claims: dict[str, Any]
    session: requests.Session


class Browser:
    def __init__(self, base: str) -> None:
        self.base = base.rstrip("/")
        self.http = requests.Session()

    def walk(self, url: str, upstream: str, who: str, redirect_uri: str, max_steps: int = 14) -> str:
        """Follow the login from ``url`` until the provider redirects to ``redirect_uri``; that URL."""
        for _ in range(max_steps):
            response = self.http.get(urljoin(self.base + "/", url), allow_redirects=False, timeout=30)
            if response.status_code in (301, 302, 303):
                url = response.headers["Location"]
                if url.startswith(redirect_uri):
                    return url
                continue
            if response.status_code != 200:
                raise RuntimeError(f"login step {url} answered {response.status_code}: {response.text[:300]}")
            body = response.text
            links = [html.unescape(h) for h in _HREF.findall(body)]
            if "授权确认" in body:
                req = _REQ.search(body)
                assert req, "consent page without its request"
                answer = self.http.post(
                    f"{self.base}/identity/consent",
                    data={"req": req.group(1), "decision": "approve"},
                    allow_redirects=False,
                    timeout=30,
                )
                url = answer.headers["Location"]
                if url.startswith(redirect_uri):
                    return url
                continue
            if "STAND-IN" in body:
                url = next(link for link in links if f"who={who}" in link)
                continue
            wanted = "suishenban" if "请先完成实名认证" in body else upstream
            url = next(link for link in links if f"/identity/login/{wanted}?" in link)
        raise RuntimeError("the login did not return to the client")


def login(
    base: str,
    client_id: str,
    redirect_uri: str,
    *,
    client_secret: str | None = None,
    upstream: str = "suishenban",
    who: str = "zhangsan",
    scope: str = "openid profile",
    browser: Browser | None = None,
) -> LoginResult:
    """One login as a hospital's relying party would run it, through Authlib's client."""
    from authlib.integrations.requests_client import OAuth2Session
    from authlib.jose import JsonWebKey, JsonWebToken

    issuer = f"{base.rstrip('/')}/identity/oidc"
    meta = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=30).json()
    assert meta["issuer"] == issuer
    rp = OAuth2Session(
        client_id,
        client_secret,
        scope=scope,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if client_secret else "none",
    )
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(12)
    url, state = rp.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier, nonce=nonce)
    back = (browser or Browser(base)).walk(url, upstream, who, redirect_uri)
    assert parse_qs(urlsplit(back).query).get("state") == [state]
    token = rp.fetch_token(meta["token_endpoint"], authorization_response=back, code_verifier=verifier, state=state)
    keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=30).json())
    claims = JsonWebToken(["ES256"]).decode(
        token["id_token"],
        keys,
        claims_options={
            "iss": {"essential": True, "value": issuer},
            "aud": {"essential": True, "value": client_id},
            "nonce": {"essential": True, "value": nonce},
        },
    )
    claims.validate()
    return LoginResult(dict(token), dict(claims), rp)
