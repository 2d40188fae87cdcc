"""The link API and the patient side of a link, through chalice.test.Client and moto."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from bianjie.kit import deps
from bianjie.kit.crypto import sm2_generate_key
from chalice.test import Client

from tests.functional.conftest import DemoPartner
from tests.functional.film.conftest import FilmStack, signer


@pytest.fixture
def ingested(film: FilmStack, small_study: tuple[Any, list[Path]]) -> Any:
    spec, paths = small_study
    film.put_files("test-hospital", paths)
    film.drain()
    return spec


@pytest.fixture
def client(film: FilmStack) -> Client:
    with Client(film.app) as c:
        yield c


def mint(client: Client, partner: DemoPartner, body: dict[str, Any]) -> Any:
    raw = json.dumps(body).encode()
    return client.http.post("/film/links", body=raw, headers=signer(partner)("POST", "/film/links", raw))


def code(response: Any) -> str:
    return json.loads(response.body)["error"]["code"]


def key_of(answer: Any) -> str:
    return json.loads(answer.body)["key"]


def links() -> Any:
    from bianjie.film import wiring

    return wiring.film_links()


def test_mint_for_a_study_and_view_its_manifest(client: Client, partner: DemoPartner, ingested: Any) -> None:
    response = mint(client, partner, {"study_uid": ingested.study_uid, "expires_in": 3600})
    assert response.status_code == 201, response.body
    answer = json.loads(response.body)
    assert answer["scope"] == "study" and answer["studies"] == 1
    assert re.fullmatch(r"[A-Za-z0-9_-]{48}", answer["key"])
    assert answer["url"].endswith(f"/film/v/{answer['key']}")
    # only a hash of the key is stored
    item = json.dumps(
        deps.documents().get(links().table, {"pk": f"link#{links()._check_key(answer['key'])}", "sk": "link"})
    )
    assert answer["key"] not in item

    manifest = client.http.get(f"/film/v/{answer['key']}/manifest", headers={"User-Agent": "pytest-phone"})
    assert manifest.status_code == 200, manifest.body
    m = json.loads(manifest.body)
    assert m["patient"] == {"name": "张*", "sex": "M"}
    assert [s["study_uid"] for s in m["studies"]] == [ingested.study_uid]
    series = m["study"]["series"]
    assert [s["modality"] for s in series] == ["CT", "MR", "US"]
    ct = series[0]
    assert ct["frame_count"] == len(ct["frames"]) == len(ct["lossy"]) == len(ct["instances"]) == 6
    assert "X-Amz-Signature=" in ct["frames"][0] and "X-Amz-Expires=600" in ct["frames"][0]
    assert ct["render"]["rows"] == 512 and ct["render"]["window"] == [40.0, 400.0]

    # every use is logged (one audit record): app, hospital, study, time, address and agent
    import time

    log = deps.audit_log("film")
    uses = [
        r
        for r in log.records(log.chain_for(time.time()))
        if r.action in {"film.link.page", "film.link.manifest", "film.link.share"}
    ]
    assert [(u.action, u.details["app_id"], u.details["hospitals"], u.details["study_uids"]) for u in uses] == [
        ("film.link.manifest", "test-hospital", ["test-hospital"], [ingested.study_uid])
    ]
    assert uses[0].details["user_agent"] == "pytest-phone" and uses[0].ts and uses[0].actor.startswith("patient:link-")


def test_manifest_urls_name_the_frames_in_slice_order(
    client: Client, partner: DemoPartner, ingested: Any, film: FilmStack
) -> None:
    key = key_of(mint(client, partner, {"study_uid": ingested.study_uid}))
    ct = json.loads(client.http.get(f"/film/v/{key}/manifest").body)["study"]["series"][0]
    for url, (sop, n) in zip(ct["frames"], ct["instances"], strict=True):
        assert film.derived_bucket in url and f"/instances/{sop}/frames/{n}?" in url


def test_mint_for_a_patient_across_studies(client: Client, partner: DemoPartner, ingested: Any) -> None:
    response = mint(client, partner, {"patient_id": ingested.patient.id_card, "id_type": "id_card"})
    assert response.status_code == 201, response.body
    assert json.loads(response.body)["scope"] == "patient"
    by_mrn = mint(client, partner, {"patient_id": ingested.patient.mrn, "id_type": "mrn", "hospital": "test-hospital"})
    assert by_mrn.status_code == 201, by_mrn.body
    assert (
        code(mint(client, partner, {"patient_id": "310101190001010000", "id_type": "id_card"})) == "PATIENT_NOT_FOUND"
    )


def test_mint_refusals(client: Client, partner: DemoPartner, ingested: Any) -> None:
    assert code(mint(client, partner, {"study_uid": "1.2.3.4"})) == "STUDY_NOT_FOUND"
    assert (
        code(mint(client, partner, {"study_uid": "1.2.3", "patient_id": "x", "id_type": "mrn"})) == "VALIDATION_FAILED"
    )
    assert code(mint(client, partner, {"patient_id": "x", "id_type": "mrn"})) == "VALIDATION_FAILED"
    # another hospital's app cannot see this hospital's study
    key = sm2_generate_key()
    serial = deps.partner_registry().add("other-hospital", "别的医院", key.public_key.to_hex(), ["127.0.0.0/8"])
    other = DemoPartner("other-hospital", key, serial)
    assert code(mint(client, other, {"study_uid": ingested.study_uid})) == "STUDY_NOT_FOUND"
    # outside the allowlist
    deps.partner_registry().set_cidrs("test-hospital", ["10.0.0.0/8"])
    deps.partner_registry().invalidate()
    assert code(mint(client, partner, {"study_uid": ingested.study_uid})) == "IP_NOT_ALLOWED"


def test_every_link_rejection(client: Client, partner: DemoPartner, ingested: Any) -> None:
    key = key_of(mint(client, partner, {"study_uid": ingested.study_uid, "expires_in": 120}))
    assert client.http.get(f"/film/v/{key}/manifest").status_code == 200
    # tampered: one character changed
    tampered = key[:10] + ("A" if key[10] != "A" else "B") + key[11:]
    assert code(client.http.get(f"/film/v/{tampered}/manifest")) == "LINK_INVALID"
    assert code(client.http.get("/film/v/short/manifest")) == "LINK_INVALID"
    # unknown: well formed, never issued
    assert code(client.http.get(f"/film/v/{links()._new_key()}/manifest")) == "LINK_NOT_FOUND"
    # expired
    real_clock = links().clock
    links().clock = lambda: real_clock() + 121
    try:
        response = client.http.get(f"/film/v/{key}/manifest")
        assert response.status_code == 410 and code(response) == "LINK_EXPIRED"
        page = client.http.get(f"/film/v/{key}")
        assert page.status_code == 410 and "链接已过期" in page.body.decode()
    finally:
        links().clock = real_clock
    # revoked, by its own app only
    key2 = key_of(mint(client, partner, {"study_uid": ingested.study_uid}))
    other_key = sm2_generate_key()
    serial = deps.partner_registry().add("other-app", "别的应用", other_key.public_key.to_hex(), ["127.0.0.0/8"])
    other = DemoPartner("other-app", other_key, serial)
    path = f"/film/links/{key2}"
    assert code(client.http.delete(path, headers=signer(other)("DELETE", path))) == "LINK_NOT_YOURS"
    response = client.http.delete(path, headers=signer(partner)("DELETE", path))
    assert response.status_code == 200, response.body
    assert code(client.http.get(f"/film/v/{key2}/manifest")) == "LINK_REVOKED"
    assert client.http.get(f"/film/v/{key2}").status_code == 410


def test_shared_link_is_shorter_and_dies_with_its_parent(client: Client, partner: DemoPartner, ingested: Any) -> None:
    key = key_of(mint(client, partner, {"study_uid": ingested.study_uid}))
    response = client.http.post(
        f"/film/v/{key}/share", body=json.dumps({"expires_in": 3600}), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.body
    shared = json.loads(response.body)
    assert client.http.get(f"/film/v/{shared['key']}/manifest").status_code == 200
    path = f"/film/links/{key}"
    client.http.delete(path, headers=signer(partner)("DELETE", path))
    assert code(client.http.get(f"/film/v/{shared['key']}/manifest")) == "LINK_REVOKED"


def test_viewer_page_inlines_the_manifest(client: Client, partner: DemoPartner, ingested: Any) -> None:
    key = key_of(mint(client, partner, {"study_uid": ingested.study_uid}))
    page = client.http.get(f"/film/v/{key}")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html") and page.headers["Referrer-Policy"] == "no-referrer"
    html = page.body.decode()
    inline = re.search(r'<script id="manifest" type="application/json">(.*?)</script>', html, re.S)
    assert inline and json.loads(inline.group(1))["study"]["study_uid"] == ingested.study_uid


def test_the_page_runs_under_a_content_security_policy(client: Client, partner: DemoPartner, ingested: Any) -> None:
    key = json.loads(mint(client, partner, {"study_uid": ingested.study_uid}).body)["key"]
    page = client.http.get(f"/film/v/{key}")
    assert page.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", policy["script-src"]).group(1)  # type: ignore[union-attr]
    # the first-paint script, and only with this response's nonce
    assert f'<script nonce="{nonce}">'.encode() in page.body
    assert "'unsafe-inline'" not in policy["script-src"] and "'unsafe-eval'" not in policy["script-src"]
    # the page may fetch from its own origin and from the object store its presigned URLs name, nothing else
    frame = json.loads(client.http.get(f"/film/v/{key}/manifest").body)["study"]["series"][0]["frames"][0]
    store = "/".join(frame.split("/")[:3])
    assert policy["connect-src"].split() == ["'self'", store]
    assert policy["default-src"] == "'none'" and policy["frame-ancestors"] == "'none'"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert (
        client.http.get(f"/film/v/{key}").headers["Content-Security-Policy"] != page.headers["Content-Security-Policy"]
    )  # a fresh nonce per response
    refused = client.http.get(f"/film/v/{key[:-2]}xx")
    assert refused.status_code == 403 and "default-src 'none'" in refused.headers["Content-Security-Policy"]
