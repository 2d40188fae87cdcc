"""Builds the identity service from the environment (functions/identity/template.yaml sets it).

Upstreams: on the local stage (``use_standin("identity.upstreams")``) every upstream is the stand-in
IdP of ``bianjie_dev.identity.standin``, reached in-process through the same protocol adapters. Other
stages read ``IDENTITY_UPSTREAM_<NAME>`` (JSON: base_url, app_id, api_url) and the secret
``IDENTITY_UPSTREAM_<NAME>_SECRET`` (wrapped by the master key); an upstream without settings is not
offered on the login page.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from bianjie.identity.archive import Archive
from bianjie.identity.clients import ClientRegistry
from bianjie.identity.launch import EntryRegistry, Launcher
from bianjie.identity.provider import BackchannelSender, Provider, Signers
from bianjie.identity.store import IdentityStore
from bianjie.identity.upstream import UPSTREAMS, Upstream
from bianjie.kit import deps
from bianjie.kit.config import env, require_env, scope_cached
from bianjie.kit.standins import use_standin
from bianjie.kit.tokenkeys import PublicKeySet

if TYPE_CHECKING:
    from bianjie_dev.identity.standin import StandinIdps

PAIRWISE_LABEL = b"bianjie/identity/pairwise/v1"


def store() -> IdentityStore:
    return scope_cached("identity.store", lambda: IdentityStore(deps.documents(), deps.table("IDENTITY_TABLE")))


def audit() -> Any:
    return deps.audit_log("identity")


def clients() -> ClientRegistry:
    return scope_cached("identity.clients", lambda: ClientRegistry(store()))


def archive() -> Archive:
    return scope_cached("identity.archive", lambda: Archive(store(), deps.field_cipher(), deps.blind_index(), audit()))


def keys() -> PublicKeySet:
    return deps.token_verifier().keys


def signers() -> Signers | None:
    """The signing keys: only in TokenIssueFunction, whose environment names them."""
    if not env("BIANJIE_TOKEN_SIGNING_KEY") and not env("BIANJIE_TOKEN_SIGNING_KEY_WRAPPED"):
        return None

    def build() -> Signers:
        from bianjie.kit import aws
        from bianjie.kit.config import settings
        from bianjie.kit.tokenkeys import KmsTokenSigner, LocalTokenSigner, TokenSigner
        from bianjie.kit.tokens import TokenIssuer

        signer: TokenSigner
        if settings().key_backend == "local":  # on premises: the issuer alone unwraps its key
            signer = LocalTokenSigner.from_pem(deps.unwrap_setting("BIANJIE_TOKEN_SIGNING_KEY_WRAPPED"))
        else:
            signer = KmsTokenSigner(aws.client("kms"), require_env("BIANJIE_TOKEN_SIGNING_KEY"))
        rp_key = env("IDENTITY_RP_SIGNING_KEY")
        rp = KmsTokenSigner(aws.client("kms"), rp_key) if rp_key else None
        return Signers(platform=TokenIssuer(signer), platform_signer=signer, rp=rp)

    return scope_cached("identity.signers", build)


class _HttpBackchannel(BackchannelSender):
    def send(self, uri: str, logout_token: str) -> int:
        if use_standin("identity.upstreams") and standins().owns(uri):
            return standins().backchannel(uri, logout_token)
        from bianjie.identity.adapters.http import UrllibHttp

        return UrllibHttp(timeout=3).post_form_status(uri, {"logout_token": logout_token})


def provider(issuer: str) -> Provider:
    built = Provider(
        store(),
        clients(),
        archive(),
        audit(),
        deps.derived_key(PAIRWISE_LABEL),
        keys(),
        issuer=issuer,
        signers=signers(),
        backchannel=_HttpBackchannel(),
        # only the logout route's function is given the queue (and may send to it)
        logout_notices=deps.queue("IDENTITY_LOGOUT_QUEUE") if env("IDENTITY_LOGOUT_QUEUE") else None,
        entries=entries(),
    )
    return built


def entries() -> EntryRegistry:
    return scope_cached("identity.entries", lambda: EntryRegistry(store(), audit()))


def launcher(issuer: str) -> Launcher:
    return Launcher(store(), entries(), clients(), provider(issuer), audit())


def standins() -> StandinIdps:
    from bianjie_dev.identity.standin import standin_idps

    return standin_idps()


def upstreams(base_url: str) -> dict[str, Upstream]:
    """The upstreams this deployment offers, by name (stand-ins at ``base_url`` on the local stage)."""
    from bianjie.identity.adapters.upstreams import ADAPTERS, UpstreamSettings

    if use_standin("identity.upstreams"):
        idps = standins()
        return {name: ADAPTERS[name](idps.settings(name, base_url), idps) for name in UPSTREAMS}
    offered: dict[str, Upstream] = {}
    for name in UPSTREAMS:
        raw = env(f"IDENTITY_UPSTREAM_{name.upper()}")
        if not raw:
            continue
        values = json.loads(raw)
        secret_name = f"IDENTITY_UPSTREAM_{name.upper()}_SECRET"
        secret = deps.unwrap_setting(secret_name).decode() if env(secret_name) else ""
        settings = UpstreamSettings(
            base_url=values["base_url"], app_id=values["app_id"], secret=secret, api_url=values.get("api_url", "")
        )
        from bianjie.identity.adapters.http import UrllibHttp

        offered[name] = ADAPTERS[name](settings, UrllibHttp())
    return offered


def card_verifier() -> Any:
    """The hospitals' card checks: the stand-in hospital registry locally (no hospital adapter exists yet)."""
    if use_standin("identity.upstreams"):
        return standins().cards
    raise RuntimeError("no hospital card-verification adapter is configured for this stage")


def browser_url(url: str) -> str:
    """Where the browser goes for an upstream login: the stand-in's one page locally."""
    if use_standin("identity.upstreams") and standins().owns(url):
        return standins().browser_url(url)
    return url


def live_probe(issuer: str) -> Any:
    """The joint-debugging live probe (``bianjie.identity.probe``) over real HTTP (urllib), on every stage:
    it walks the public endpoints as a relying party does."""
    from bianjie.identity.adapters.probe_http import UrllibProbeHttp
    from bianjie.identity.probe import LiveProbe

    return LiveProbe(entries(), clients(), UrllibProbeHttp(timeout=5), issuer, audit())
