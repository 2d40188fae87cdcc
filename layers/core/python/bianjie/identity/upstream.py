"""Upstream identity: who the person is, as 随申办, 一网通办, WeChat, Alipay or a hospital directory says.

One port (``Upstream``) for every upstream; the adapters (``adapters/upstreams.py``) speak each
system's protocol over an ``Http`` port, so a stand-in (``bianjie_dev.identity.standin``) answers the
same requests on the local stack. The browser leg (sending the person to the upstream's login) is a
URL the adapter builds; the server leg (code or ticket to identity) is the adapter's ``resolve``.

Real-name level (实名等级) becomes the OIDC ``acr`` of the login:
- ``rn3``: 实人认证 (face verified against the ID photo), 一网通办 / 随申办 level 3 *(uncertain: the level
  names and the field carrying them are not in public documents; the adapters read the research's reading)*
- ``rn2``: 实名核验 (ID number and name checked against the population registry)
- ``rn1``: an account without checked identity (WeChat, Alipay without 实名 scope, a registered account)
- ``staff``: a hospital directory login
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

UpstreamName = Literal["suishenban", "yiwangtongban", "wechat", "alipay", "directory"]
UPSTREAMS: tuple[UpstreamName, ...] = ("suishenban", "yiwangtongban", "wechat", "alipay", "directory")
ACR_PREFIX = "urn:bianjie:acr:"


def acr(level: str) -> str:
    return ACR_PREFIX + level


class UpstreamIdentity(BaseModel):
    """What an upstream vouches for. ``id_number`` and ``name`` are sensitive: never logged."""

    model_config = ConfigDict(frozen=True)

    upstream: UpstreamName
    subject: str = Field(min_length=1, max_length=128, description="the upstream's stable id of the account")
    level: Literal["rn1", "rn2", "rn3", "staff"]
    id_number: str | None = Field(default=None, repr=False)
    name: str | None = Field(default=None, repr=False)
    phone: str | None = Field(default=None, repr=False)
    # staff only: the hospital directory's roles per hospital
    hospital_roles: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @property
    def acr(self) -> str:
        return acr(self.level)


class UpstreamRefused(Exception):
    """The upstream refused the code or ticket (expired, reused, forged); the login fails."""


class Http(Protocol):
    """The network as the adapters see it (urllib in production, the stand-in IdPs locally)."""

    def get(self, url: str, params: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Any: ...

    def post_form(self, url: str, form: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Any: ...


class Upstream(Protocol):
    name: UpstreamName

    def login_url(self, state: str, callback: str) -> str:
        """Where the browser goes to log in; it comes back to ``callback`` with ``state``."""

    def resolve(self, params: Mapping[str, str], callback: str) -> UpstreamIdentity:
        """The identity behind the callback's parameters (code, ticket, auth_code), server to server."""
