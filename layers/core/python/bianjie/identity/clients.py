"""Relying parties (OIDC clients) of the platform provider: a hospital's internet hospital, the entry pages.

Registered by platform operators (``bianjie identity client``, the demo seed), never by themselves:
dynamic registration is not offered. Redirect URIs are compared by exact string equality (RFC 9700
2.1: no prefix, no wildcard, no normalisation), so one differing character is refused.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from bianjie.identity.errors import invalid_client
from bianjie.identity.store import IdentityStore, digest

Alg = Literal["ES256", "SM2-SM3"]


class Client(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")
    name: str = Field(min_length=1, max_length=100)
    hospital: str | None = Field(default=None, description="the hospital it acts for; None: the platform's own pages")
    redirect_uris: tuple[str, ...] = Field(min_length=1, max_length=10)
    post_logout_redirect_uris: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None
    initiate_login_uri: str | None = Field(default=None, description="OIDC third-party-initiated login (launch)")
    secret_digest: str | None = Field(default=None, description="SM3 of the secret; None: a public client")
    id_token_alg: Alg = "ES256"
    may_receive_id_number: bool = Field(default=False, description="entitled to the ID number for card binding")
    may_exchange: bool = Field(default=False, description="may use RFC 8693 token exchange (server to server)")
    staff: bool = Field(default=False, description="staff log in here (the hospital directory upstream)")

    @property
    def confidential(self) -> bool:
        return self.secret_digest is not None


class ClientRegistry:
    def __init__(self, store: IdentityStore) -> None:
        self.store = store

    def register(self, client: Client) -> None:
        self.store.put({"pk": f"client#{client.client_id}", "sk": "client", **client.model_dump(mode="json")})
        if client.hospital:
            self.store.put({"pk": f"hospital-clients#{client.hospital}", "sk": client.client_id})

    def of_hospital(self, hospital: str) -> list[Client]:
        """The clients registered for ``hospital`` (its internet hospital, its staff workbench ...)."""
        rows = self.store.query(f"hospital-clients#{hospital}", limit=50)
        found = [self.get(row["sk"]) for row in rows]
        return [c for c in found if c is not None and c.hospital == hospital]

    @staticmethod
    def new_secret() -> tuple[str, str]:
        """A fresh client secret and the digest to register (the secret is shown once)."""
        secret = secrets.token_urlsafe(32)
        return secret, digest(secret)

    def get(self, client_id: str) -> Client | None:
        if not client_id or len(client_id) > 64:
            return None
        item = self.store.get(f"client#{client_id}", "client")
        if item is None:
            return None
        return Client.model_validate({k: v for k, v in item.items() if k not in ("pk", "sk")})

    def authenticate(self, client_id: str | None, secret: str | None) -> Client:
        """The client of a token-endpoint request (client_secret_basic / _post, or public + PKCE)."""
        client = self.get(client_id or "")
        if client is None:
            raise invalid_client()
        if client.confidential:
            if not secret or not hmac.compare_digest(digest(secret), client.secret_digest or ""):
                raise invalid_client()
        elif secret:
            raise invalid_client()  # a public client has no secret; one sent is a misconfiguration
        return client
