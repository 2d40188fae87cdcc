"""The launch ticket (single use, audience-bound, 60 s) and the archive (one person, linking, merge)."""

from __future__ import annotations

from typing import Any

import pytest
from bianjie.identity import jws
from bianjie.identity.archive import valid_id_number
from bianjie.identity.errors import OAuthError
from bianjie.identity.launch import Entry, LaunchAnswer, MiniProgram, redeem
from bianjie.kit.actor import Actor
from bianjie.kit.errors import NotFound
from bianjie.kit.tokens import TokenVerifier

from tests.unit.identity.conftest import World


def _patient(world: World) -> tuple[Actor, Any]:
    actor, claims, _ = _patient_token(world)
    return actor, claims


def _patient_token(world: World) -> tuple[Actor, Any, str]:
    code, verifier, _ = world.code()
    access = world.redeem(code, verifier)["access_token"]
    claims = TokenVerifier(world.provider.keys, clock=world.clock).verify(access)
    return Actor(kind="patient", id=claims.sub, patient_ref=claims.extra["id_ref"]), claims, access


def _consent(world: World, claims: Any, hospital: str = "hospital-b") -> None:
    person = world.provider.archive.person_of_ref(claims.extra["id_ref"])
    world.provider.grant_consent(Actor.system("test"), person, hospital, claims.extra["id_ref"])


def _ticket(world: World, access: str, answer: LaunchAnswer, client: tuple[str, str] | None = None) -> str:
    """What the entry page does with a ticket-mode launch answer: the RFC 8693 exchange it describes."""
    assert answer.exchange is not None
    form = {
        "grant_type": answer.exchange.grant_type,
        "subject_token": access,
        "subject_token_type": answer.exchange.subject_token_type,
        "requested_token_type": answer.exchange.requested_token_type,
        "audience": answer.exchange.audience,
        "channel": answer.exchange.channel,
    }
    body = world.provider.token(form, client or ("hospital-a", world.secret)).body
    assert body["issued_token_type"] == "urn:bianjie:params:oauth:token-type:launch-ticket"
    assert body["token_type"] == "N_A" and body["expires_in"] == 60
    return str(body["access_token"])


def _entry(world: World, **over: object) -> None:
    fields = {
        "hospital": "hospital-b",
        "name": "B",
        "h5_url": "https://b.example/h5",
        "wechat": MiniProgram(app_id="wxb", path="pages/home"),
        **over,
    }
    world.entries.put(Actor.system("test"), Entry(**fields))  # type: ignore[arg-type]


def test_launch_asks_for_consent_first_and_tells_nothing_before(world: World) -> None:
    actor, claims, access = _patient_token(world)
    _entry(world)
    answer = world.launcher.launch(actor, claims, "hospital-b", "wechat")
    assert answer.consent_required and answer.target == {} and answer.exchange is None
    # the exchange is refused too until the person agrees
    with pytest.raises(OAuthError) as exc:
        world.provider.token(
            {
                "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
                "subject_token": access,
                "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
                "requested_token_type": "urn:bianjie:params:oauth:token-type:launch-ticket",
                "audience": "hospital-b",
            },
            ("hospital-a", world.secret),
        )
    assert exc.value.error == "invalid_grant"


def test_launch_ticket_exchange_refuses_another_clients_token_and_unknown_hospitals(world: World) -> None:
    actor, claims, access = _patient_token(world)
    _entry(world)
    _consent(world, claims)
    answer = world.launcher.launch(actor, claims, "hospital-b", "h5")
    secret, digest = world.provider.clients.new_secret()
    from bianjie.identity.clients import Client

    world.provider.clients.register(
        Client(client_id="other", name="O", hospital="o", redirect_uris=("https://o.example/cb",), secret_digest=digest)
    )
    with pytest.raises(OAuthError) as other:
        _ticket(world, access, answer, ("other", secret))
    assert other.value.error == "invalid_grant"
    answer.exchange.audience = "nowhere"  # type: ignore[union-attr]
    with pytest.raises(OAuthError) as target:
        _ticket(world, access, answer)
    assert target.value.error == "invalid_target"


def test_consent_names_a_registered_hospital_and_is_audited(world: World) -> None:
    _, claims = _patient(world)
    with pytest.raises(NotFound) as exc:
        _consent(world, claims, "nowhere")
    assert exc.value.code == "ENTRY_NOT_FOUND"
    _entry(world)
    _consent(world, claims)
    person = world.provider.archive.person_of_ref(claims.extra["id_ref"])
    assert world.provider.has_consent_at(person, "hospital-b")
    consents = [
        r
        for chain in world.audit.chains("identity")
        for r in world.audit.records(chain)
        if r.action == "identity.consent" and r.resource == "identity.entry:hospital-b"
    ]
    assert len(consents) == 1 and consents[0].patient_ref == claims.extra["id_ref"]


def test_a_ticket_for_an_unknown_channel_is_invalid_request(world: World) -> None:
    actor, claims, access = _patient_token(world)
    _entry(world)
    _consent(world, claims)
    answer = world.launcher.launch(actor, claims, "hospital-b", "h5")
    answer.exchange.channel = "fax"  # type: ignore[union-attr,assignment]
    with pytest.raises(OAuthError) as exc:
        _ticket(world, access, answer)
    assert exc.value.error == "invalid_request"


def test_replayed_launch_ticket_is_refused(world: World) -> None:
    actor, claims, access = _patient_token(world)
    _entry(world)
    _consent(world, claims)
    answer = world.launcher.launch(actor, claims, "hospital-b", "wechat")
    assert answer.mode == "ticket" and answer.target == {"app_id": "wxb", "path": "pages/home"}
    ticket = _ticket(world, access, answer)
    secret, digest = world.provider.clients.new_secret()
    from bianjie.identity.clients import Client

    world.provider.clients.register(
        Client(
            client_id="hospital-b-api",
            name="B",
            hospital="hospital-b",
            redirect_uris=("https://b.example/cb",),
            secret_digest=digest,
        )
    )
    form = {"ticket": ticket}
    first = redeem(
        world.store, world.provider.keys, world.provider.clients, form, ("hospital-b-api", secret), world.audit
    )
    assert first["aud"] == "hospital-b" and first["channel"] == "wechat"
    with pytest.raises(OAuthError) as exc:
        redeem(world.store, world.provider.keys, world.provider.clients, form, ("hospital-b-api", secret), world.audit)
    assert exc.value.error == "invalid_grant"


def test_ticket_for_another_hospital_or_expired_is_refused(world: World) -> None:
    actor, claims, access = _patient_token(world)
    _entry(world)
    _consent(world, claims)
    ticket = _ticket(world, access, world.launcher.launch(actor, claims, "hospital-b", "h5"))
    assert jws.verify(ticket, world.provider.keys, typ="launch+jwt")["exp"] == world.clock.now + 60
    # hospital-a's credentials cannot redeem a ticket whose audience is hospital-b
    with pytest.raises(OAuthError):
        redeem(
            world.store,
            world.provider.keys,
            world.provider.clients,
            {"ticket": ticket},
            ("hospital-a", world.secret),
            world.audit,
        )
    world.clock.now += 61
    secret, digest = world.provider.clients.new_secret()
    from bianjie.identity.clients import Client

    world.provider.clients.register(
        Client(
            client_id="b2",
            name="B",
            hospital="hospital-b",
            redirect_uris=("https://b.example/cb",),
            secret_digest=digest,
        )
    )
    with pytest.raises(OAuthError):
        redeem(
            world.store,
            world.provider.keys,
            world.provider.clients,
            {"ticket": ticket},
            ("b2", secret),
            world.audit,
        )


def test_oidc_capable_hospital_gets_third_party_initiated_login(world: World) -> None:
    actor, claims = _patient(world)
    from bianjie.identity.clients import Client

    world.provider.clients.register(
        Client(
            client_id="hb-oidc",
            name="B",
            hospital="hospital-b",
            redirect_uris=("https://b.example/cb",),
            initiate_login_uri="https://b.example/login",
        )
    )
    _entry(world, client_id="hb-oidc")
    _consent(world, claims)
    answer = world.launcher.launch(actor, claims, "hospital-b", "h5")
    assert answer.mode == "oidc_initiated" and answer.exchange is None and not answer.consent_required
    assert (
        answer.target["url"].startswith("https://b.example/login?iss=") and "target_link_uri=" in answer.target["url"]
    )


def test_channel_without_an_entry_is_404(world: World) -> None:
    actor, claims = _patient(world)
    _entry(world, wechat=None)
    with pytest.raises(NotFound) as exc:
        world.launcher.launch(actor, claims, "hospital-b", "alipay")
    assert exc.value.code == "CHANNEL_NOT_AVAILABLE"


def test_one_person_per_id_number_and_channel_accounts_link(world: World) -> None:
    archive = world.provider.archive
    first = archive.resolve(world.resident())
    again = archive.resolve(world.resident(upstream="yiwangtongban"))
    assert first == again
    wechat = world.resident(upstream="wechat")
    assert archive.resolve(wechat) is None  # not linked yet: no ID number from WeChat
    archive.link_account(first, "wechat", wechat.subject)
    assert archive.resolve(wechat) == first
    record = world.store.get(f"person#{first}", "person")
    assert record is not None and "310101" not in str(record)  # only ciphertext and the blind index at rest


def test_merge_moves_accounts_and_keeps_history(world: World) -> None:
    archive = world.provider.archive
    keep = archive.resolve(world.resident("zhangsan"))
    dup = archive.resolve(world.resident("lisi"))
    admin = Actor(kind="staff", id="A0001", org="platform", roles=("platform-admin",))
    result = archive.merge(admin, keep, dup, "同一人两份档案")
    assert result["survivor"] == keep
    assert archive.resolve(world.resident("lisi")) == keep
    fhir = archive.fhir_patient(admin, keep, "https://idp.test/identity")
    assert {"other": {"reference": f"Patient/{dup}"}, "type": "replaces"} in fhir["link"]
    with pytest.raises(Exception) as exc:
        archive.merge(admin, keep, dup, "again")
    assert getattr(exc.value, "code", "") == "ALREADY_MERGED"


@pytest.mark.parametrize(("value", "ok"), [("11010519491231002X", True), ("110105194912310021", False), ("123", False)])
def test_id_number_check_digit(value: str, ok: bool) -> None:
    assert valid_id_number(value) is ok
