"""Reports (检查报告): Encapsulated PDF and SR objects in the ingest bucket are attached to their study,
announced as ``film.report_published`` and carried by the manifest; image ingest is unaffected."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest
from bianjie.film import layout
from bianjie.kit import aws, deps
from bianjie.kit.events import parse_envelope
from bianjie_dev.film import testdata
from chalice.test import Client

from tests.functional.conftest import DemoPartner
from tests.functional.film.conftest import FilmStack, signer

PDF_CLASS = "1.2.840.10008.5.1.4.1.1.104.1"


def catalog() -> Any:
    from bianjie.film import wiring

    return wiring.film_catalog()


@pytest.fixture
def events(film: FilmStack) -> Any:
    sqs, sns = aws.client("sqs"), aws.client("sns")
    url = sqs.create_queue(QueueName="film-events-test")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(
        TopicArn=os.environ["DOMAIN_EVENTS_TOPIC"],
        Protocol="sqs",
        Endpoint=arn,
        Attributes={"RawMessageDelivery": "true"},
    )

    def read() -> list[Any]:
        out = []
        while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for m in batch:
                out.append(parse_envelope(m["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
        return out

    return read


def study_files(tmp: Path, *, report: str) -> tuple[testdata.StudySpec, list[Path], Path]:
    spec = testdata.StudySpec(hospital="test-hospital")
    images = testdata.write_study(tmp / "images", spec, ct_slices=3, mr_slices=0, us_frames=0)
    [report_path] = testdata.write_reports(tmp / "report", spec, pdf=report == "pdf", sr=report == "sr")
    return spec, images, report_path


def manifest(film: FilmStack, partner: DemoPartner, study_uid: str) -> dict[str, Any]:
    with Client(film.app) as client:
        raw = json.dumps({"study_uid": study_uid}).encode()
        minted = client.http.post("/film/links", body=raw, headers=signer(partner)("POST", "/film/links", raw))
        assert minted.status_code == 201, minted.body
        key = json.loads(minted.body)["key"]
        answer = client.http.get(f"/film/v/{key}/manifest")
        assert answer.status_code == 200, answer.body
        return json.loads(answer.body)


def test_pdf_report_is_attached_published_and_in_the_manifest(
    film: FilmStack, partner: DemoPartner, events: Any, tmp_path: Path
) -> None:
    spec, images, report_path = study_files(tmp_path, report="pdf")
    film.put_files("test-hospital", [*images, report_path])
    answers = film.drain()
    assert all(a["batchItemFailures"] == [] for a in answers)
    assert film.dead_letters() == []

    study = catalog().study(spec.study_uid)
    report = study["report"]
    assert study["has_report"] is True and report["kind"] == "pdf" and report["title"] == "胸部CT诊断报告"
    assert report["reported_at"] == "2026-03-14 10:15" and report["at"]
    # the report is not an image series: only the CT is
    assert study["modalities"] == ["CT"] and study["series_count"] == 1 and study["instance_count"] == 3
    assert [s["modality"] for s in catalog().series(spec.study_uid)] == ["CT"]

    sop = str(testdata.read(report_path).SOPInstanceUID)
    stored = film.s3.get_object(Bucket=film.derived_bucket, Key=layout.report(spec.study_uid, sop, "pdf"))
    pdf = testdata.read(report_path).EncapsulatedDocument
    assert stored["ContentType"] == "application/pdf"
    body = stored["Body"].read()
    assert body.startswith(b"%PDF-") and body.rstrip(b"\n").endswith(b"%%EOF") and pdf.startswith(body)

    [event] = [e for e in events() if e.type == "film.report_published"]
    assert event.source == "bianjie.film" and event.subject == spec.study_uid
    # ids only; no visit id unless the hospital says which attribute carries it
    assert event.data == {
        "study_uid": spec.study_uid,
        "report_id": sop,
        "report_kind": "pdf",
        "hospital": "test-hospital",
        "accession_number": spec.accession,
    }

    m = manifest(film, partner, spec.study_uid)
    assert m["studies"][0]["has_report"] is True
    r = m["study"]["report"]
    assert r["kind"] == "pdf" and r["title"] == "胸部CT诊断报告" and r["content_type"] == "application/pdf"
    assert f"/studies/{spec.study_uid}/reports/{sop}.pdf?" in r["url"] and "X-Amz-Signature=" in r["url"]
    assert [s["modality"] for s in m["study"]["series"]] == ["CT"]


def test_sr_report_before_its_images_renders_text_and_carries_the_visit_id(
    film: FilmStack, partner: DemoPartner, events: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deps.partner_registry().set_setting("test-hospital", "film", "report_visit_id_from", "accession_number")
    spec, images, report_path = study_files(tmp_path, report="sr")
    caplog.set_level(logging.DEBUG)
    film.put_files("test-hospital", [report_path])  # the report first: it creates the study row
    assert all(a["batchItemFailures"] == [] for a in film.drain())
    study = catalog().study(spec.study_uid)
    assert study["has_report"] is True and study["report"]["kind"] == "sr" and study["series_count"] == 0
    assert deps.field_cipher().decrypt(study["patient_name"], f"film/patient_name/{spec.study_uid}") == "张三"

    film.put_files("test-hospital", images)
    assert all(a["batchItemFailures"] == [] for a in film.drain())
    study = catalog().study(spec.study_uid)
    assert study["report"]["kind"] == "sr" and study["series_count"] == 1 and study["modalities"] == ["CT"]

    sop = str(testdata.read(report_path).SOPInstanceUID)
    rendered = film.get_json(layout.report(spec.study_uid, sop, "json"))
    assert rendered["kind"] == "sr" and rendered["title"] == "影像诊断报告"
    assert rendered["content"] == [
        {"name": "检查所见", "value": None, "children": [{"name": "所见", "value": testdata.REPORT_FINDINGS}]},
        {"name": "诊断意见", "value": testdata.REPORT_IMPRESSION},
        {"name": "报告医生", "value": "李医生"},
    ]
    # the report text is patient data: it is in no log line and not in the catalog
    for text in (testdata.REPORT_FINDINGS, testdata.REPORT_IMPRESSION):
        assert text not in caplog.text and text not in json.dumps(study, ensure_ascii=False)

    [event] = [e for e in events() if e.type == "film.report_published"]
    assert event.data["visit_id"] == spec.accession and event.data["report_kind"] == "sr"

    r = manifest(film, partner, spec.study_uid)["study"]["report"]
    assert r["kind"] == "sr" and r["title"] == "影像诊断报告" and r["reported_at"] == "2026-03-14 10:15"
    assert f"/reports/{sop}.json?" in r["url"]


def test_redelivered_report_changes_nothing(film: FilmStack, events: Any, tmp_path: Path) -> None:
    spec, images, report_path = study_files(tmp_path, report="sr")
    film.put_files("test-hospital", [*images, report_path])
    film.drain()
    before = catalog().study(spec.study_uid)
    assert len([e for e in events() if e.type == "film.report_published"]) == 1

    film.put_files("test-hospital", [report_path])  # same bytes, same ETag: a second notification
    answers = film.drain()
    assert answers and all(a["batchItemFailures"] == [] for a in answers)
    after = catalog().study(spec.study_uid)
    assert after["report"] == before["report"] and after["agg_version"] == before["agg_version"]
    assert [s["modality"] for s in catalog().series(spec.study_uid)] == ["CT"]
    assert events() == [] and film.dead_letters() == []


def test_a_pdf_object_without_a_document_is_poison(film: FilmStack, tmp_path: Path) -> None:
    spec = testdata.StudySpec(hospital="test-hospital")
    ds = testdata.pdf_report(spec)
    del ds.EncapsulatedDocument
    del ds.EncapsulatedDocumentLength
    path = tmp_path / "empty.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert str(ds.SOPClassUID) == PDF_CLASS
    film.put("test-hospital/bad/empty.dcm", path.read_bytes())
    assert all(a["batchItemFailures"] == [] for a in film.drain())
    [dead] = film.dead_letters()
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "EMPTY_REPORT"
    assert catalog().study(spec.study_uid) is None
