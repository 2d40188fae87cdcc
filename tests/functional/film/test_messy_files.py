"""Real-world files are messy (issue 16): a file pydicom reads despite a fault is accepted as Orthanc
would accept it, with the fault recorded on its study; the CLI reports a bad file and goes on."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest
from bianjie.film import wiring
from bianjie_dev.film import testdata
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian

from tests.functional.film.conftest import FilmStack


def mismatched(ds: Any) -> bytes:
    """The file meta says explicit VR little endian; the data set is written implicit VR."""
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    fp = DicomBytesIO()
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, ds.file_meta, enforce_standard=True)
    fp.is_implicit_VR = True
    fp.is_little_endian = True
    write_dataset(fp, ds)
    return bytes(fp.getvalue())


def saved(ds: Any) -> bytes:
    fp = DicomBytesIO()
    ds.save_as(fp, enforce_file_format=True)
    return bytes(fp.getvalue())


def test_files_read_with_faults_are_accepted_and_recorded(film: FilmStack) -> None:
    spec = testdata.StudySpec(hospital="test-hospital")
    slices = list(testdata.ct_series(spec, 3))
    film.put("test-hospital/messy/syntax.dcm", mismatched(slices[0]))
    long_uid = "1.2.826.0.1.3680043.10.1447." + "1234567890" * 5  # 78 characters
    slices[1].SOPInstanceUID = long_uid
    slices[1].file_meta.MediaStorageSOPInstanceUID = long_uid
    film.put("test-hospital/messy/long.dcm", saved(slices[1]))
    film.put("test-hospital/messy/clean.dcm", saved(slices[2]))
    film.drain()
    assert film.dead_letters() == []

    catalog = wiring.film_catalog()
    study = catalog.study(spec.study_uid)
    assert study is not None and study["instance_count"] == 3
    found = {p["sop_uid"]: [x["code"] for x in p["problems"]] for p in catalog.problems(spec.study_uid)}
    assert found == {slices[0].SOPInstanceUID: ["TRANSFER_SYNTAX_MISMATCH"], long_uid: ["UID_TOO_LONG"]}
    # the messages name attributes, never values
    texts = json.dumps([p["problems"] for p in catalog.problems(spec.study_uid)])
    assert spec.patient.mrn not in texts and "Zhang" not in texts


def ingest_args(film: FilmStack, paths: list[Path]) -> argparse.Namespace:
    return argparse.Namespace(
        paths=[str(p) for p in paths],
        hospital="test-hospital",
        batch="cli",
        parallel=2,
        bucket=film.ingest_bucket,
        aws_endpoint=None,
        region=None,
        table=None,
    )


def test_cli_reports_empty_and_unreadable_files_and_goes_on(
    film: FilmStack, small_study: tuple[Any, list[Path]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bianjie_dev.film.cli import cmd_ingest

    _, paths = small_study
    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in paths[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "notes.txt").write_text("not an image")
    assert cmd_ingest(ingest_args(film, [folder])) == 0
    out = capsys.readouterr()
    answer = json.loads(out.out)
    assert answer["files"] == 2
    assert sorted((Path(s["path"]).name, s["reason"].split(" (")[0]) for s in answer["skipped"]) == [
        ("empty.dcm", "empty file"),
        ("notes.txt", "not a DICOM file"),
    ]
    assert "skipped" in out.err and "Traceback" not in out.err
    keys = sorted(o["Key"] for o in film.s3.list_objects_v2(Bucket=film.ingest_bucket)["Contents"])
    assert keys == sorted(f"test-hospital/cli/{p.name}" for p in paths[:2])
