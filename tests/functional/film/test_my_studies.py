"""我的影像 (GET /film/my/studies, POST /film/my/studies/{study}/view) through chalice.test.Client and moto:
the person's own studies by the provider token's id_ref, paging, the viewing link, the audit, refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from bianjie.kit import deps
from chalice.test import Client

from tests.functional.conftest import token_issuer
from tests.functional.film.conftest import FilmStack


@pytest.fixture
def two_studies(film: FilmStack, small_study: tuple[Any, list[Path]], tmp_path: Path) -> list[Any]:
    """The session's small study plus a second (another date, another hospital) of the same resident."""
    import datetime as dt

    from bianjie_dev.film import testdata

    spec, paths = small_study
    film.put_files("test-hospital", paths)
    later = testdata.StudySpec(hospital="hospital-b", accession="B0001", description="头颅MR", date=dt.date(2026, 6, 1))
    film.put_files("hospital-b", testdata.write_study(tmp_path, later, ct_slices=0, mr_slices=2, us_frames=0))
    film.drain()
    return [spec, later]


@pytest.fixture
def client(film: FilmStack) -> Client:
    with Client(film.app) as c:
        yield c


def bearer(id_number: str | None, subject: str = "p-self") -> dict[str, str]:
    extra = {"id_ref": deps.blind_index().digest(id_number, "id_number")} if id_number else {}
    return {"Authorization": f"Bearer {token_issuer().issue(subject, 'patient', **extra)}"}


def body(response: Any) -> Any:
    return json.loads(response.body)


def audit_actions(action: str) -> list[Any]:
    import time

    log = deps.audit_log("film")
    return [r for r in log.records(log.chain_for(time.time())) if r.action == action]


def test_lists_only_the_persons_studies_newest_first_and_opens_one(client: Client, two_studies: list[Any]) -> None:
    spec, later = two_studies
    mine = bearer(spec.patient.id_card)
    response = client.http.get("/film/my/studies", headers=mine)
    assert response.status_code == 200, response.body
    items = body(response)["items"]
    assert [i["study_uid"] for i in items] == [later.study_uid, spec.study_uid]  # newest first
    first, second = items
    assert first["hospital"] == "hospital-b" and first["date"] == "2026-06-01" and first["modalities"] == ["MR"]
    assert first["body_parts"] == ["HEAD"]
    assert second["hospital"] == "test-hospital" and set(second["modalities"]) == {"CT", "MR", "US"}
    assert {"CHEST", "HEAD", "ABDOMEN"} <= set(second["body_parts"])
    assert body(response)["cursor"] is None
    # no patient identifier anywhere in the answer: neither the ID number, its blind index nor the MRN
    text = response.body.decode()
    assert spec.patient.id_card not in text and spec.patient.mrn not in text
    assert deps.blind_index().digest(spec.patient.id_card, "id_number") not in text

    opened = client.http.post(second["view"], headers=mine)
    assert opened.status_code == 201, opened.body
    url = body(opened)["url"]
    assert "/film/v/" in url and spec.patient.id_card not in url and spec.patient.mrn not in url
    key = url.rsplit("/", 1)[1]
    manifest = client.http.get(f"/film/v/{key}/manifest")
    assert manifest.status_code == 200, manifest.body
    shown = body(manifest)
    assert [s["study_uid"] for s in shown["studies"]] == [spec.study_uid]  # that study only
    assert shown["study"]["series"]

    listed, viewed = audit_actions("film.my.list"), audit_actions("film.my.view")
    ref = deps.blind_index().digest(spec.patient.id_card, "id_number")
    assert listed and listed[-1].patient_ref == ref and listed[-1].actor == "patient:p-self"
    assert viewed and viewed[-1].resource == f"film.study:{spec.study_uid}" and viewed[-1].patient_ref == ref


def test_pages_with_the_kits_cursor(client: Client, two_studies: list[Any]) -> None:
    spec, later = two_studies
    mine = bearer(spec.patient.id_card)
    page = body(client.http.get("/film/my/studies?limit=1", headers=mine))
    assert [i["study_uid"] for i in page["items"]] == [later.study_uid] and page["cursor"]
    rest = body(client.http.get(f"/film/my/studies?limit=1&cursor={page['cursor']}", headers=mine))
    assert [i["study_uid"] for i in rest["items"]] == [spec.study_uid] and rest["cursor"] is None
    bad = client.http.get("/film/my/studies?cursor=not-a-cursor", headers=mine)
    assert bad.status_code == 422 and body(bad)["error"]["code"] == "INVALID_CURSOR"
    too_many = client.http.get("/film/my/studies?limit=500", headers=mine)
    assert too_many.status_code == 400 and body(too_many)["error"]["code"] == "VALIDATION_FAILED"


def test_another_person_sees_nothing_and_cannot_open_the_study(client: Client, two_studies: list[Any]) -> None:
    spec, _ = two_studies
    stranger = bearer("310104198506154327", subject="p-other")
    assert body(client.http.get("/film/my/studies", headers=stranger))["items"] == []
    refused = client.http.post(f"/film/my/studies/{spec.study_uid}/view", headers=stranger)
    assert refused.status_code == 404 and body(refused)["error"]["code"] == "STUDY_NOT_FOUND"
    unknown = client.http.post("/film/my/studies/1.2.3.4/view", headers=bearer(spec.patient.id_card))
    assert unknown.status_code == 404 and body(unknown)["error"]["code"] == "STUDY_NOT_FOUND"
    junk = client.http.post("/film/my/studies/not-a-uid/view", headers=bearer(spec.patient.id_card))
    assert junk.status_code == 404 and body(junk)["error"]["code"] == "STUDY_NOT_FOUND"


def test_refusals_without_a_real_name_or_a_patient_token(client: Client, two_studies: list[Any]) -> None:
    no_ref = client.http.get("/film/my/studies", headers=bearer(None))
    assert no_ref.status_code == 403 and body(no_ref)["error"]["code"] == "REAL_NAME_REQUIRED"
    anonymous = client.http.get("/film/my/studies")
    assert anonymous.status_code == 401
    staff = token_issuer().issue("d1", "staff", ["doctor"], hospital="test-hospital")
    as_staff = client.http.get("/film/my/studies", headers={"Authorization": f"Bearer {staff}"})
    assert as_staff.status_code in (401, 403)
