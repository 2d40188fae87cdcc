"""dicomweb-client (the reference Python DICOMweb client, unmodified) against the local stack: STOW-RS a
study, find it with QIDO-RS, read its metadata, frames, rendering and stored instance with WADO-RS; as a
signed partner and with a staff token."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pydicom
import pytest
import requests
from bianjie_dev.cli.tokens import issue_token, via_gateway
from bianjie_dev.film import testdata
from bianjie_dev.film.dicomweb import partner_key_file, signed_session
from bianjie_dev.runtime.child import StackProcess
from dicomweb_client.api import DICOMwebClient
from requests import HTTPError


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    proc = StackProcess(
        tmp_path_factory.mktemp("film-dicomweb"), env={"BIANJIE_FILM_DEMO_CT_SLICES": "4"}, seed=["film"]
    )
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[testdata.StudySpec, list[Any]]:
    spec = testdata.StudySpec(hospital="demo-hospital", accession="DW0001")
    paths = testdata.write_study(tmp_path_factory.mktemp("dw"), spec, ct_slices=5, mr_slices=2, us_frames=3)
    return spec, [pydicom.dcmread(p) for p in paths]


def partner_client(stack: StackProcess, app_id: str = "demo-hospital") -> DICOMwebClient:
    key, serial = partner_key_file(Path(stack.state_dir), app_id)
    return DICOMwebClient(url=f"{stack.url}/film/dicomweb", session=signed_session(key, app_id, serial))


def wait_for(client: DICOMwebClient, study_uid: str, instances: int) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 90
    found: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        found = client.search_for_studies(search_filters={"StudyInstanceUID": study_uid})
        if found and found[0]["00201208"]["Value"][0] == instances:
            return found
        time.sleep(0.5)
    raise AssertionError(f"study not searchable in time: {found}")


def test_store_search_and_retrieve_with_dicomweb_client(stack: StackProcess, study: Any) -> None:
    spec, datasets = study
    client = partner_client(stack)
    answer = client.store_instances(datasets=datasets)
    stored = answer.ReferencedSOPSequence
    assert len(stored) == len(datasets) and "FailedSOPSequence" not in answer
    assert answer.RetrieveURL.endswith(f"/film/dicomweb/studies/{spec.study_uid}")

    [found] = wait_for(client, spec.study_uid, len(datasets))
    assert found["00080050"]["Value"] == ["DW0001"]
    assert found["00100020"]["Value"] == [spec.patient.mrn]
    assert client.search_for_studies(search_filters={"AccessionNumber": "DW0001", "ModalitiesInStudy": "CT"})

    series = client.search_for_series(spec.study_uid)
    ct = next(s for s in series if s["00080060"]["Value"] == ["CT"])
    se = ct["0020000E"]["Value"][0]
    instances = client.search_for_instances(spec.study_uid, se)
    assert len(instances) == 5

    metadata = client.retrieve_series_metadata(spec.study_uid, se)
    assert len(metadata) == 5
    first = pydicom.Dataset.from_json(metadata[0])
    source = next(d for d in datasets if d.SOPInstanceUID == first.SOPInstanceUID)
    assert first.Rows == source.Rows and first.PatientID == spec.patient.mrn
    one = client.retrieve_instance_metadata(spec.study_uid, se, first.SOPInstanceUID)
    assert one["00080018"]["Value"] == [first.SOPInstanceUID]

    [frame] = client.retrieve_instance_frames(spec.study_uid, se, first.SOPInstanceUID, frame_numbers=[1])
    assert frame == source.pixel_array.astype("<i2").tobytes() or frame == source.PixelData

    rendered = client.retrieve_instance_rendered(spec.study_uid, se, first.SOPInstanceUID)
    assert rendered[:2] == b"\xff\xd8"
    original = client.retrieve_instance(spec.study_uid, se, first.SOPInstanceUID)
    assert original.SOPInstanceUID == first.SOPInstanceUID and original.PatientName == source.PatientName


def test_stow_refuses_bad_parts_and_keeps_good_ones(stack: StackProcess, study: Any) -> None:
    _, datasets = study
    client = partner_client(stack)
    no_study = pydicom.Dataset()  # DICOM, but no study or series: the data set does not match its class
    no_study.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    no_study.SOPInstanceUID = "1.2.826.0.1.3680043.10.1447.99.1"
    no_study.PatientID = "X"
    no_study.file_meta = pydicom.dataset.FileMetaDataset()
    no_study.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    no_study.file_meta.MediaStorageSOPClassUID = no_study.SOPClassUID
    no_study.file_meta.MediaStorageSOPInstanceUID = no_study.SOPInstanceUID
    answer = client.store_instances(datasets=[datasets[0], no_study])
    assert len(answer.ReferencedSOPSequence) == 1
    [failed] = answer.FailedSOPSequence
    assert failed.FailureReason == 0xA900 and failed.ReferencedSOPInstanceUID == no_study.SOPInstanceUID


def test_staff_token_and_scoping(stack: StackProcess, study: Any) -> None:
    spec, datasets = study
    wait_for(partner_client(stack), spec.study_uid, len(datasets))
    issuer = via_gateway(stack.url)
    centre = issue_token(issuer, "dw-centre", "staff", ["film-admin"], hospital="platform")
    granted = requests.put(
        f"{stack.url}/film/admin/hospitals/demo-hospital/staff/dw-op",
        json={"roles": ["film-operator"]},
        headers={"Authorization": f"Bearer {centre}"},
        timeout=30,
    )
    assert granted.status_code == 200, granted.text
    own = issue_token(issuer, "dw-op", "staff", ["film-operator"], hospital="demo-hospital")
    other = issue_token(issuer, "dw-op2", "staff", ["film-operator"], hospital="another-hospital")
    mine = DICOMwebClient(url=f"{stack.url}/film/dicomweb", headers={"Authorization": f"Bearer {own}"})
    assert mine.search_for_studies(search_filters={"StudyInstanceUID": spec.study_uid})
    theirs = DICOMwebClient(url=f"{stack.url}/film/dicomweb", headers={"Authorization": f"Bearer {other}"})
    assert theirs.search_for_studies(search_filters={"StudyInstanceUID": spec.study_uid}) == []
    with pytest.raises(HTTPError) as refused:
        theirs.retrieve_study_metadata(spec.study_uid)
    assert refused.value.response.status_code == 404
