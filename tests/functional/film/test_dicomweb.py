"""DICOMweb for partners through chalice.test.Client and moto: scoping, media types, STOW-RS refusals.

(dicomweb-client itself runs against the local stack in tests/integration/film/test_dicomweb_client.py.)"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from bianjie.kit import deps
from bianjie.kit.crypto import sm2_generate_key
from chalice.test import Client

from tests.functional.conftest import DemoPartner, token_issuer
from tests.functional.film.conftest import FilmStack, signer

DW = "/film/dicomweb"


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


def get(client: Client, partner: DemoPartner, path: str, query: str = "", accept: str | None = None) -> Any:
    headers = signer(partner)("GET", path, b"", query)
    if accept:
        headers["Accept"] = accept
    return client.http.get(path + (f"?{query}" if query else ""), headers=headers)


def code(response: Any) -> str:
    return json.loads(response.body)["error"]["code"]


def value(item: dict[str, Any], tag: str) -> Any:
    return (item.get(tag, {}).get("Value") or [None])[0]


def other_partner(hospitals: list[str] | None = None, app_id: str = "other-hospital") -> DemoPartner:
    key = sm2_generate_key()
    registry = deps.partner_registry()
    serial = registry.add(app_id, "别的医院", key.public_key.to_hex(), ["127.0.0.0/8"])
    if hospitals is not None:
        registry.set_setting(app_id, "film", "hospitals", hospitals)
    return DemoPartner(app_id, key, serial)


def split(response: Any) -> tuple[str, list[bytes]]:
    content_type = response.headers["Content-Type"]
    boundary = content_type.split("boundary=")[1].encode()
    pieces = response.body.split(b"--" + boundary)[1:-1]
    return content_type, [p.partition(b"\r\n\r\n")[2][:-2] for p in pieces]


def test_search_studies_series_and_instances(client: Client, partner: DemoPartner, ingested: Any) -> None:
    response = get(client, partner, f"{DW}/studies")
    assert response.status_code == 200, response.body
    assert response.headers["Content-Type"] == "application/dicom+json"
    studies = json.loads(response.body)
    assert [value(s, "0020000D") for s in studies] == [ingested.study_uid]
    study = studies[0]
    assert value(study, "00100020") == ingested.patient.mrn  # the partner is the hospital: it sees its patient
    assert value(study, "00201206") == 3 and value(study, "00201208") == 6 + 3 + 1
    assert value(study, "00081190").endswith(f"{DW}/studies/{ingested.study_uid}")
    # standard query keys, by keyword and by tag
    assert len(json.loads(get(client, partner, f"{DW}/studies", f"PatientID={ingested.patient.mrn}").body)) == 1
    assert len(json.loads(get(client, partner, f"{DW}/studies", f"00100020={ingested.patient.mrn}").body)) == 1
    assert json.loads(get(client, partner, f"{DW}/studies", "PatientID=NOBODY").body) == []
    assert len(json.loads(get(client, partner, f"{DW}/studies", "ModalitiesInStudy=MR").body)) == 1
    assert json.loads(get(client, partner, f"{DW}/studies", "ModalitiesInStudy=XA").body) == []
    assert len(json.loads(get(client, partner, f"{DW}/studies", "StudyDate=19000101-29991231").body)) == 1
    assert json.loads(get(client, partner, f"{DW}/studies", "StudyDate=-19000101").body) == []
    # an unsupported key is ignored with a Warning, as PS3.18 says
    warned = get(client, partner, f"{DW}/studies", "ReferringPhysicianName=X")
    assert warned.status_code == 200 and "ReferringPhysicianName" in warned.headers["Warning"]

    series = json.loads(get(client, partner, f"{DW}/studies/{ingested.study_uid}/series").body)
    assert sorted(value(s, "00080060") for s in series) == ["CT", "MR", "US"]
    ct = next(s for s in series if value(s, "00080060") == "CT")
    se = value(ct, "0020000E")
    assert len(json.loads(get(client, partner, f"{DW}/series", "Modality=CT").body)) == 1
    instances = json.loads(get(client, partner, f"{DW}/studies/{ingested.study_uid}/series/{se}/instances").body)
    assert [value(i, "00200013") for i in instances] == [1, 2, 3, 4, 5, 6]
    assert len(json.loads(get(client, partner, f"{DW}/instances", "limit=4").body)) == 4
    assert len(json.loads(get(client, partner, f"{DW}/studies/{ingested.study_uid}/instances").body)) == 10

    # every search is audited under the partner
    import time

    log = deps.audit_log("film")
    actions = [r.action for r in log.records(log.chain_for(time.time()))]
    assert actions.count("film.dicomweb.search") >= 10


def test_metadata_frames_rendered_and_instance(
    client: Client, partner: DemoPartner, film: FilmStack, ingested: Any
) -> None:
    st = ingested.study_uid
    series = json.loads(get(client, partner, f"{DW}/studies/{st}/series", "Modality=CT").body)
    se = value(series[0], "0020000E")
    meta = json.loads(get(client, partner, f"{DW}/studies/{st}/series/{se}/metadata").body)
    assert len(meta) == 6
    first = meta[0]
    sop = value(first, "00080018")
    assert value(first, "00100020") == ingested.patient.mrn and value(first, "00083002") == "1.2.840.10008.1.2.1"
    assert len(json.loads(get(client, partner, f"{DW}/studies/{st}/metadata").body)) == 10
    one = json.loads(get(client, partner, f"{DW}/studies/{st}/series/{se}/instances/{sop}/metadata").body)
    assert [value(m, "00080018") for m in one] == [sop]

    frames = get(
        client,
        partner,
        f"{DW}/studies/{st}/series/{se}/instances/{sop}/frames/1",
        accept='multipart/related; type="application/octet-stream"; transfer-syntax=*',
    )
    assert frames.status_code == 200, frames.body
    content_type, parts = split(frames)
    assert content_type.startswith('multipart/related; type="application/octet-stream"')
    stored = film.s3.get_object(Bucket=film.derived_bucket, Key=f"studies/{st}/series/{se}/instances/{sop}/frames/1")[
        "Body"
    ].read()
    assert parts == [gzip.decompress(stored)]
    rows, columns = value(first, "00280010"), value(first, "00280011")
    assert len(parts[0]) == rows * columns * 2

    assert get(client, partner, f"{DW}/studies/{st}/series/{se}/instances/{sop}/frames/2").status_code == 404
    bad = get(client, partner, f"{DW}/studies/{st}/series/{se}/instances/{sop}/frames/x")
    assert bad.status_code == 404 and code(bad) == "FRAME_NOT_FOUND"
    jpeg_only = get(client, partner, f"{DW}/studies/{st}/series/{se}/instances/{sop}/frames/1", accept="image/jp2")
    assert jpeg_only.status_code == 406 and code(jpeg_only) == "NOT_ACCEPTABLE"

    rendered = get(client, partner, f"{DW}/studies/{st}/series/{se}/instances/{sop}/rendered", accept="image/jpeg")
    assert rendered.status_code == 200 and rendered.body[:2] == b"\xff\xd8"

    instance = get(
        client,
        partner,
        f"{DW}/studies/{st}/series/{se}/instances/{sop}",
        accept='multipart/related; type="application/dicom"',
    )
    assert instance.status_code == 200, instance.body
    _, [dicom] = split(instance)
    assert dicom[128:132] == b"DICM"


def test_scoped_to_the_partners_hospitals(client: Client, partner: DemoPartner, ingested: Any) -> None:
    st = ingested.study_uid
    stranger = other_partner()
    assert json.loads(get(client, stranger, f"{DW}/studies").body) == []
    assert json.loads(get(client, stranger, f"{DW}/studies", f"StudyInstanceUID={st}").body) == []
    assert json.loads(get(client, stranger, f"{DW}/series").body) == []
    for path in (f"{DW}/studies/{st}/series", f"{DW}/studies/{st}/metadata", f"{DW}/studies/{st}/instances"):
        refused = get(client, stranger, path)
        assert refused.status_code == 404 and code(refused) == "STUDY_NOT_FOUND", path
    # the 医联 platform sees every hospital
    platform = other_partner(["*"], app_id="test-yilian")
    assert [value(s, "0020000D") for s in json.loads(get(client, platform, f"{DW}/studies").body)] == [st]
    # unsigned: the platform's signature refusal
    unsigned = client.http.get(f"{DW}/studies")
    assert unsigned.status_code == 401 and code(unsigned) == "SIGNATURE_MISSING"


def test_staff_token_scoped_to_its_hospital(client: Client, ingested: Any) -> None:
    issuer = token_issuer()
    # a hospital's staff hold a film role where the film registry grants it (bianjie.film.admin)
    centre = issuer.issue("centre", "staff", ["film-admin"], hospital="platform")
    for hospital in ("test-hospital", "other-hospital"):
        granted = client.http.put(
            f"/film/admin/hospitals/{hospital}/staff/op1"
            if hospital == "test-hospital"
            else f"/film/admin/hospitals/{hospital}/staff/op2",
            body=json.dumps({"roles": ["film-operator"]}).encode(),
            headers={"Authorization": f"Bearer {centre}", "Content-Type": "application/json"},
        )
        assert granted.status_code == 200, granted.body
    ungranted = issuer.issue("op3", "staff", ["film-operator"], hospital="test-hospital")
    assert json.loads(client.http.get(f"{DW}/studies", headers={"Authorization": f"Bearer {ungranted}"}).body) == []
    # the centre's operators read every hospital
    everywhere = issuer.issue("centre-op", "staff", ["film-operator"], hospital="platform")
    assert (
        len(json.loads(client.http.get(f"{DW}/studies", headers={"Authorization": f"Bearer {everywhere}"}).body)) == 1
    )
    own = issuer.issue("op1", "staff", ["film-operator"], hospital="test-hospital")
    elsewhere = issuer.issue("op2", "staff", ["film-operator"], hospital="other-hospital")
    doctor = issuer.issue("dr", "staff", ["doctor"], hospital="test-hospital")
    hit = client.http.get(f"{DW}/studies", headers={"Authorization": f"Bearer {own}"})
    assert hit.status_code == 200 and len(json.loads(hit.body)) == 1
    miss = client.http.get(f"{DW}/studies", headers={"Authorization": f"Bearer {elsewhere}"})
    assert miss.status_code == 200 and json.loads(miss.body) == []
    refused = client.http.get(f"{DW}/studies", headers={"Authorization": f"Bearer {doctor}"})
    assert refused.status_code == 403


def stow_body(parts: list[tuple[str, bytes]], boundary: str = "b0undary") -> tuple[str, bytes]:
    chunks = []
    for part_type, data in parts:
        chunks.append(f"--{boundary}\r\nContent-Type: {part_type}\r\n\r\n".encode() + data + b"\r\n")
    body = b"".join(chunks) + f"--{boundary}--\r\n".encode()
    return f'multipart/related; type="application/dicom"; boundary={boundary}', body


def stow(client: Client, partner: DemoPartner, parts: list[tuple[str, bytes]], query: str = "") -> Any:
    content_type, body = stow_body(parts)
    headers = signer(partner)("POST", f"{DW}/studies", body, query)
    headers["Content-Type"] = content_type
    headers["Accept"] = "application/dicom+json"
    return client.http.post(f"{DW}/studies" + (f"?{query}" if query else ""), body=body, headers=headers)


def no_uids_dicom() -> bytes:
    import io

    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    ds.PatientID = "X"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def test_stow_stores_good_parts_and_refuses_the_rest(
    client: Client, partner: DemoPartner, film: FilmStack, small_study: tuple[Any, list[Path]]
) -> None:
    spec, paths = small_study
    good = [p.read_bytes() for p in paths[:3]]
    answer = stow(
        client,
        partner,
        [
            ("application/dicom", good[0]),
            ("application/dicom", b"this is not DICOM at all"),
            ("text/plain", b"hello"),
            ("application/dicom", no_uids_dicom()),
            ("application/dicom", good[1]),
            ("application/dicom", good[2]),
            ("application/dicom", paths[3].read_bytes()[132:]),  # no preamble: accepted, stored as Part 10
        ],
    )
    assert answer.status_code == 202, answer.body
    assert answer.headers["Content-Type"] == "application/dicom+json"
    dataset = json.loads(answer.body)
    reasons = [value(f, "00081197") for f in dataset["00081198"]["Value"]]
    assert reasons == [0xC000, 0xC000, 0xA900]
    stored = dataset["00081199"]["Value"]
    assert len(stored) == 4 and all(value(s, "00081190").startswith("http") for s in stored)
    keys = sorted(o["Key"] for o in film.s3.list_objects_v2(Bucket=film.ingest_bucket)["Contents"])
    assert len(keys) == 4 and all(k.startswith(f"test-hospital/stow/{spec.study_uid}/") for k in keys)
    # the same pipeline as the S3 drop: the stored parts are searchable after ingest
    film.drain()
    studies = json.loads(get(client, partner, f"{DW}/studies").body)
    assert [value(s, "0020000D") for s in studies] == [spec.study_uid]
    assert value(studies[0], "00201208") == 4

    # nothing usable at all: 409 with every part's reason
    refused = stow(client, partner, [("application/dicom", b"")])
    assert refused.status_code == 409 and value(json.loads(refused.body)["00081198"]["Value"][0], "00081197") == 0xC000


def test_stow_refusals_before_parts(client: Client, partner: DemoPartner, small_study: Any) -> None:
    _, paths = small_study
    platform = other_partner(["*"], app_id="test-yilian")
    part = [("application/dicom", paths[0].read_bytes())]
    needs = stow(client, platform, part)
    assert needs.status_code == 400 and code(needs) == "HOSPITAL_REQUIRED"
    assert stow(client, platform, part, "hospital=test-hospital").status_code == 200
    mine = stow(client, partner, part, "hospital=other-hospital")
    assert mine.status_code == 403 and code(mine) == "HOSPITAL_NOT_ALLOWED"
    raw = b'{"not": "multipart"}'
    headers = signer(partner)("POST", f"{DW}/studies", raw)
    wrong = client.http.post(f"{DW}/studies", body=raw, headers=headers)
    assert wrong.status_code == 415
