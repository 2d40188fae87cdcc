"""Ingest through the real handler: S3 notification -> queue -> FilmIngestFunction -> derived bucket + catalog."""

from __future__ import annotations

import gzip
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from bianjie.film import layout
from bianjie.kit import deps
from bianjie_dev.film import testdata

from tests.functional.film.conftest import FilmStack


def catalog() -> Any:
    from bianjie.film import wiring

    return wiring.film_catalog()


def test_generated_study_is_derived_and_cataloged(film: FilmStack, small_study: tuple[Any, list[Path]]) -> None:
    spec, paths = small_study
    film.put_files("test-hospital", paths)
    answers = film.drain()
    assert all(a["batchItemFailures"] == [] for a in answers)
    study = catalog().study(spec.study_uid)
    assert study["hospital"] == "test-hospital"
    assert study["modalities"] == ["CT", "MR", "US"]
    assert study["series_count"] == 3 and study["instance_count"] == 6 + 3 + 1
    # identity is stored encrypted, with blind indexes for lookup
    assert "张" not in str(study) and spec.patient.mrn not in str(study) and spec.patient.id_card not in str(study)
    assert deps.field_cipher().decrypt(study["patient_name"], f"film/patient_name/{spec.study_uid}") == "张三"
    ref = deps.blind_index().digest(spec.patient.id_card, "id_number")
    assert [r["study_uid"] for r in catalog().studies_of_patient(ref)] == [spec.study_uid]

    series = {s["modality"]: s for s in catalog().series(spec.study_uid)}
    ct = series["CT"]
    assert ct["frame_count"] == 6 and ct["render"]["window"] == [40.0, 400.0]
    assert ct["render"]["slope"] == 1.0 and ct["render"]["intercept"] == -1024.0
    assert series["US"]["frame_count"] == 4 and series["US"]["render"]["photometric"] == "RGB"

    # frames are the exact stored pixels, in slice order (head first)
    originals = {str(d.SOPInstanceUID): d for d in map(pydicom.dcmread, paths)}
    order = [originals[sop].ImagePositionPatient[2] for sop, _ in ct["frames"]]
    assert order == sorted(order, reverse=True)
    sop, n = ct["frames"][2]
    obj = film.s3.get_object(Bucket=film.derived_bucket, Key=layout.frame(spec.study_uid, ct["series_uid"], sop, n))
    assert obj["ContentEncoding"] == "gzip" and "transfer-syntax=1.2.840.10008.1.2.1" in obj["ContentType"]
    raw = np.frombuffer(gzip.decompress(obj["Body"].read()), dtype="<u2").reshape(512, 512)
    assert np.array_equal(raw, originals[sop].pixel_array)

    # DICOMweb JSON: series metadata without the patient module, QIDO study/series rows
    metadata = film.get_json(layout.series_metadata(spec.study_uid, ct["series_uid"]))
    assert len(metadata) == 6
    assert "00100010" not in metadata[0] and "00100020" not in metadata[0] and "00101002" not in metadata[0]
    assert metadata[0]["00280030"]["Value"] and metadata[0]["00281053"]["Value"] == [1]
    assert metadata[0]["00083002"]["Value"] == ["1.2.840.10008.1.2.1"]
    qido = film.get_json(layout.study_index(spec.study_uid))
    assert qido[0]["00080061"]["Value"] == ["CT", "MR", "US"] and qido[0]["00201208"]["Value"] == [10]
    assert len(film.get_json(layout.series_index(spec.study_uid))) == 3
    thumb = film.s3.get_object(Bucket=film.derived_bucket, Key=layout.thumbnail(spec.study_uid, ct["series_uid"]))
    assert thumb["ContentType"] == "image/jpeg" and thumb["Body"].read()[:2] == b"\xff\xd8"


def test_same_object_twice_changes_nothing(film: FilmStack, small_study: tuple[Any, list[Path]]) -> None:
    spec, paths = small_study
    film.put_files("test-hospital", paths[:2])
    film.drain()
    before = film.s3.list_objects_v2(Bucket=film.derived_bucket)["Contents"]
    rows_before = catalog().instances(spec.study_uid, pydicom.dcmread(paths[0]).SeriesInstanceUID)
    # the same notification delivered again (S3 and SQS are at-least-once)
    body = film.s3.get_object(Bucket=film.ingest_bucket, Key=f"test-hospital/{paths[0].parent.name}/{paths[0].name}")
    from bianjie.film import wiring

    outcome = wiring.film_ingest().ingest_object(
        film.ingest_bucket, f"test-hospital/{paths[0].parent.name}/{paths[0].name}"
    )
    assert outcome.status == "duplicate" and body["ETag"]
    after = film.s3.list_objects_v2(Bucket=film.derived_bucket)["Contents"]
    assert [(o["Key"], o["LastModified"]) for o in after] == [(o["Key"], o["LastModified"]) for o in before]
    assert catalog().instances(spec.study_uid, pydicom.dcmread(paths[0]).SeriesInstanceUID) == rows_before


def test_poison_objects_go_to_the_dlq_with_a_reason_and_the_rest_ingests(
    film: FilmStack, small_study: tuple[Any, list[Path]]
) -> None:
    spec, paths = small_study
    film.put("test-hospital/notes.txt", "不是DICOM".encode())
    film.put("test-hospital/empty.dcm", b"")
    truncated = paths[0].read_bytes()[:400]
    film.put("test-hospital/truncated.dcm", truncated)
    film.put_files("test-hospital", paths[:1])
    answers = film.drain()
    assert all(a["batchItemFailures"] == [] for a in answers)  # poison is acknowledged, not retried
    reasons = sorted(m["MessageAttributes"]["reason"]["StringValue"] for m in film.dead_letters())
    assert reasons == ["EMPTY_OBJECT", "MISSING_UID", "NOT_DICOM"]  # cut inside the header: no UIDs left
    from datetime import UTC, datetime

    errors = catalog().errors(datetime.now(UTC).date().isoformat())
    assert {e["key"] for e in errors} == {
        "test-hospital/notes.txt",
        "test-hospital/empty.dcm",
        "test-hospital/truncated.dcm",
    }
    assert catalog().study(spec.study_uid)["instance_count"] == 1


def _with_uids(ds: pydicom.Dataset) -> pydicom.Dataset:
    from pydicom.uid import generate_uid

    for tag in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        if not ds.get(tag):
            setattr(ds, tag, generate_uid())
    return ds


@pytest.mark.parametrize("path", testdata.pydicom_test_files(), ids=lambda p: p.name)
def test_every_transfer_syntax_ingests_losslessly(film: FilmStack, path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = _with_uids(pydicom.dcmread(path))
        buf = io.BytesIO()
        ds.save_as(buf)
        expected = ds.pixel_array
    film.put(f"test-hospital/{path.name}", buf.getvalue())
    answers = film.drain()
    assert answers and all(a["batchItemFailures"] == [] for a in answers)
    assert film.dead_letters() == []
    series = catalog().series(str(ds.StudyInstanceUID))
    assert len(series) == 1
    s = series[0]
    frames = int(ds.get("NumberOfFrames") or 1)
    assert s["frame_count"] == frames
    sop, n = s["frames"][-1]
    body = film.s3.get_object(
        Bucket=film.derived_bucket, Key=layout.frame(str(ds.StudyInstanceUID), s["series_uid"], sop, n)
    )
    raw = gzip.decompress(body["Body"].read())
    render = s["render"]
    last = expected[-1] if frames > 1 else expected
    if render["samples"] == 1:
        dtype = np.dtype(f"<{'i' if render['signed'] else 'u'}{render['bits_allocated'] // 8}")
        assert np.array_equal(np.frombuffer(raw, dtype=dtype).reshape(last.shape), last)
    else:
        assert len(raw) == render["rows"] * render["columns"] * 3
