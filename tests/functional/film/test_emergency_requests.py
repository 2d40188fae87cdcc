"""Who may ask for which study in an emergency retrieval (应急调阅), and bad fields refused before anything
is stored: from a partner app (its own hospital only, unless its registry setting says more) and from
a viewing link (only a study the link shows)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bianjie.kit import deps
from chalice.test import Client

from tests.functional.conftest import DemoPartner
from tests.functional.film.conftest import FilmStack, signer
from tests.functional.film.test_links import key_of, mint


@pytest.fixture
def client(film: FilmStack) -> Client:
    with Client(film.app) as c:
        yield c


def ask(client: Client, partner: DemoPartner, body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()
    return client.http.post("/film/emergency", body=raw, headers=signer(partner)("POST", "/film/emergency", raw))


def answer(response: Any) -> dict[str, Any]:
    return json.loads(response.body)


def queued(film: FilmStack) -> int:
    attrs = film.sqs.get_queue_attributes(
        QueueUrl=film.deployment.ref("FilmEmergencyQueue"), AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attrs["Attributes"]["ApproximateNumberOfMessages"])


def test_an_app_asks_only_for_its_own_hospitals_studies(film: FilmStack, client: Client, partner: DemoPartner) -> None:
    before = queued(film)
    refused = ask(client, partner, {"accession": "A1", "hospital": "other-hospital"})
    assert refused.status_code == 403 and answer(refused)["error"]["code"] == "HOSPITAL_NOT_ALLOWED"
    assert queued(film) == before  # nothing stored or queued for a refusal
    accepted = ask(client, partner, {"accession": "A 1", "hospital": partner.app_id})  # a space is DICOM text
    assert accepted.status_code == 202, accepted.body
    assert queued(film) == before + 1


def test_an_app_the_registry_lets_act_for_other_hospitals(
    film: FilmStack, client: Client, partner: DemoPartner
) -> None:
    deps.partner_registry().set_setting(partner.app_id, "film", "hospitals", ["*"])
    try:
        accepted = ask(client, partner, {"accession": "A2", "hospital": "other-hospital"})
        assert accepted.status_code == 202, accepted.body
    finally:
        deps.partner_registry().set_setting(partner.app_id, "film", "hospitals", [partner.app_id])


@pytest.mark.parametrize(
    "body",
    [
        {"accession": "A\\1", "hospital": "test-hospital"},
        {"accession": "A1", "hospital": "test hospital"},
        {"accession": "A1"},
        {},
    ],
)
def test_bad_fields_are_a_400_and_store_nothing(
    film: FilmStack, client: Client, partner: DemoPartner, body: dict[str, Any]
) -> None:
    before = queued(film)
    refused = ask(client, partner, body)
    assert refused.status_code == 400 and answer(refused)["error"]["code"] == "VALIDATION_FAILED", refused.body
    assert queued(film) == before


def test_a_nul_is_refused_at_the_edge(film: FilmStack, client: Client, partner: DemoPartner) -> None:
    before = queued(film)
    refused = ask(client, partner, {"accession": "A\x001", "hospital": "test-hospital"})
    assert refused.status_code == 400 and answer(refused)["error"]["code"] == "INVALID_CHARACTER"
    assert queued(film) == before


def test_a_link_reaches_only_its_own_studies(
    film: FilmStack, client: Client, partner: DemoPartner, small_study: tuple[Any, list[Path]]
) -> None:
    spec, paths = small_study
    film.put_files("test-hospital", paths)
    film.drain()
    key = key_of(mint(client, partner, {"study_uid": spec.study_uid}))

    def from_link(body: dict[str, Any]) -> Any:
        raw = json.dumps(body).encode()
        return client.http.post(f"/film/v/{key}/emergency", body=raw, headers={"Content-Type": "application/json"})

    # another hospital's accession is not one of the link's studies
    other = from_link({"accession": spec.accession, "hospital": "other-hospital"})
    assert other.status_code == 404 and answer(other)["error"]["code"] == "STUDY_NOT_FOUND"
    own = from_link({"accession": spec.accession, "hospital": "test-hospital"})
    assert own.status_code == 202, own.body
