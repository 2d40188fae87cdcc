"""What a file with faults gets recorded with (dicom.problems), and how ingest tells how an object came."""

from __future__ import annotations

import io

from bianjie.film import dicom
from bianjie.film.ingest import access_method
from bianjie_dev.film import testdata


def test_uid_faults_are_named_without_values() -> None:
    [ds] = list(testdata.ct_series(testdata.StudySpec(hospital="h"), 1))
    ds.SeriesInstanceUID = "1.2.840.abc"
    ds.SOPInstanceUID = "1." + "2" * 70
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    found = dicom.problems(dicom.parse(out.getvalue()), out.getvalue())
    assert [p["code"] for p in found] == ["UID_NOT_NUMERIC", "UID_TOO_LONG"]
    assert all("abc" not in p["message"] and "2222" not in p["message"] for p in found)


def test_a_clean_file_has_no_problems() -> None:
    [ds] = list(testdata.ct_series(testdata.StudySpec(hospital="h"), 1))
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    assert dicom.problems(dicom.parse(out.getvalue()), out.getvalue()) == []


def test_access_method_by_key() -> None:
    assert access_method("h1/stow/1/2/3.dcm") == "stow"
    assert access_method("h1/emergency-1.2.3/a.dcm") == "emergency"
    assert access_method("h1/20261204/a.dcm") == "s3_drop"
    assert access_method("h1/stow") == "s3_drop" and access_method("loose.dcm") == "s3_drop"
