"""Withdrawing a hospital's consent: afterwards its launch asks again, its ticket exchange, its RFC 8693
exchange and its refresh tokens are refused with ``invalid_grant``; the withdrawal is audited."""

from __future__ import annotations

import pytest
from bianjie.identity.errors import OAuthError
from bianjie.kit.actor import Actor
from bianjie.kit.errors import NotFound

from tests.unit.identity.conftest import World
from tests.unit.identity.test_launch_and_archive import _consent, _entry, _patient_token, _ticket

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


def _person(world: World, id_ref: str) -> str:
    person = world.provider.archive.person_of_ref(id_ref)
    assert person
    return person


def test_withdrawn_consent_refuses_the_launch_ticket_and_asks_again(world: World) -> None:
    actor, claims, access = _patient_token(world)
    _entry(world)
    _consent(world, claims)
    answer = world.launcher.launch(actor, claims, "hospital-b", "h5")
    assert not answer.consent_required and _ticket(world, access, answer)  # works while consented

    person = _person(world, claims.extra["id_ref"])
    assert "hospital-b" in {c["hospital"] for c in world.provider.consents(person)}
    world.provider.withdraw_consent(actor, person, "hospital-b", claims.extra["id_ref"])
    assert "hospital-b" not in {c["hospital"] for c in world.provider.consents(person)}

    with pytest.raises(OAuthError) as refused:
        _ticket(world, access, answer)  # the exchange the entry page would make
    assert refused.value.error == "invalid_grant" and refused.value.status == 400
    again = world.launcher.launch(actor, claims, "hospital-b", "h5")
    assert again.consent_required and again.target == {} and again.exchange is None

    withdrawals = [
        r
        for chain in world.audit.chains("identity")
        for r in world.audit.records(chain)
        if r.action == "identity.consent.withdraw"
    ]
    assert len(withdrawals) == 1
    assert withdrawals[0].resource == "identity.entry:hospital-b"
    assert withdrawals[0].patient_ref == claims.extra["id_ref"] and withdrawals[0].actor == f"patient:{actor.id}"


def test_withdrawn_consent_refuses_the_hospitals_token_exchange_and_refresh(world: World) -> None:
    code, verifier, _ = world.code()  # hospital-a's own login: its consent page consented
    body = world.redeem(code, verifier)
    form = {"grant_type": EXCHANGE, "subject_token": body["access_token"], "subject_token_type": ACCESS}
    assert world.provider.token({**form, "audience": "hospital-a"}, ("hospital-a", world.secret)).body["access_token"]

    actor, claims, _ = _patient_token(world)
    person = _person(world, claims.extra["id_ref"])
    world.provider.withdraw_consent(actor, person, "demo-hospital", claims.extra["id_ref"])  # hospital-a's hospital

    with pytest.raises(OAuthError) as exchange:
        world.provider.token({**form, "audience": "hospital-a"}, ("hospital-a", world.secret))
    assert exchange.value.error == "invalid_grant"
    with pytest.raises(OAuthError) as refresh:
        world.refresh(body["refresh_token"])
    assert refresh.value.error == "invalid_grant"
    # the family is gone for good: consenting again does not bring the old refresh token back
    _entry(world, hospital="demo-hospital", name="A")
    world.provider.grant_consent(Actor.system("test"), person, "demo-hospital", claims.extra["id_ref"])
    with pytest.raises(OAuthError):
        world.refresh(body["refresh_token"])


def test_withdrawing_what_was_never_given_is_consent_not_found(world: World) -> None:
    actor, claims, _ = _patient_token(world)
    person = _person(world, claims.extra["id_ref"])
    with pytest.raises(NotFound) as exc:
        world.provider.withdraw_consent(actor, person, "hospital-b", claims.extra["id_ref"])
    assert exc.value.code == "CONSENT_NOT_FOUND" and exc.value.status == 404
