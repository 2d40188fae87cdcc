"""DICOMweb's pure rules: PS3.4 matching, query keys, Accept negotiation, multipart in and out, STOW-RS
per-part outcomes with an in-memory object store."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bianjie.film import dicomweb as dw
from bianjie.kit.actor import Actor
from bianjie.kit.errors import AppError
from bianjie.kit.objects import MemoryObjectStore


def test_matching_rules() -> None:
    assert dw.matches("StudyInstanceUID", "1.2,1.3", "1.3")
    assert dw.matches("StudyInstanceUID", "1.2\\1.3", "1.2") and not dw.matches("StudyInstanceUID", "1.2", "1.22")
    assert dw.matches("StudyDate", "20260101-20261231", "20260314")
    assert dw.matches("StudyDate", "-20260314", "20260314") and not dw.matches("StudyDate", "20260315-", "20260314")
    assert dw.matches("PatientName", "zhang*", "Zhang San") and dw.matches("PatientName", "ZHANG^SAN", "Zhang San")
    assert dw.matches("AccessionNumber", "ACC?001", "ACC0001") and not dw.matches("AccessionNumber", "ACC", "ACC0001")
    assert dw.matches("ModalitiesInStudy", "MR", ["CT", "MR"]) and not dw.matches("ModalitiesInStudy", "US", ["CT"])
    assert not dw.matches("AccessionNumber", "x", None)


def test_query_keys_by_keyword_or_tag_and_unsupported_ones() -> None:
    q = dw.parse_query(
        {"00100020": "MRN1", "Modality": "CT", "limit": "5000", "offset": "3", "Foo": "1"}, dw.STUDY_KEYS
    )
    assert q.filters == {"PatientID": "MRN1"} and q.limit == dw.MAX_LIMIT and q.offset == 3
    assert q.unsupported == ["Modality", "Foo"] and "Modality, Foo" in (q.warning() or "")
    with pytest.raises(AppError) as refused:
        dw.parse_query({"limit": "ten"}, dw.STUDY_KEYS)
    assert refused.value.code == "INVALID_PARAMETER"


def test_accept_negotiation() -> None:
    assert dw.accepts(None, "application/octet-stream")
    assert dw.accepts(
        'multipart/related; type="application/octet-stream"; transfer-syntax=*', "application/octet-stream"
    )
    assert dw.accepts('multipart/related; type="*/*"', "application/octet-stream")
    assert dw.accepts("*/*", "image/jpeg") and dw.accepts("image/*", "image/jpeg")
    assert not dw.accepts('multipart/related; type="image/jp2"', "application/octet-stream")
    assert not dw.accepts("application/dicom+xml", "application/dicom+json", "application/json")


def test_multipart_round_trip() -> None:
    content_type, body = dw.multipart([b"one\r\n--x", b""], "application/dicom")
    assert content_type.startswith('multipart/related; type="application/dicom"; boundary=')
    assert dw.split_multipart(content_type, body) == [("application/dicom", b"one\r\n--x"), ("application/dicom", b"")]
    with pytest.raises(AppError) as refused:
        dw.split_multipart("application/json", b"{}")
    assert refused.value.code == "UNSUPPORTED_MEDIA_TYPE"
    with pytest.raises(AppError) as refused:
        dw.split_multipart("multipart/related; boundary=zz", b"no parts here")
    assert refused.value.code == "MULTIPART_INVALID"


def test_a_part_without_header_lines_keeps_its_first_bytes() -> None:
    """RFC 2046: a part may have no header lines (the blank line follows the boundary line at once); its
    type is then the body's ``type=``. Found by the STOW-RS fuzzer: its first CRLF was kept as data, so
    an intact DICOM part (preamble, then "DICM" at 128) was refused as not understood."""
    body = b"--zz\r\n\r\n\x00\x00DICM\r\n--zz\r\nContent-Type: text/plain\r\n\r\nhi\r\n--zz--\r\n"
    parts = dw.split_multipart('multipart/related; type="application/dicom"; boundary=zz', body)
    assert parts == [("application/dicom", b"\x00\x00DICM"), ("text/plain", b"hi")]


class Audit:
    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def record(self, **fields: Any) -> None:
        self.records.append(fields)


def inspect(data: bytes) -> dw.PartFacts:
    if not data.startswith(b"\x00" * 128 + b"DICM"):
        raise dw.PartRefused(dw.FAIL_CANNOT_UNDERSTAND, "not DICOM")
    uids = json.loads(data[132:])
    return dw.PartFacts(uids.get("class"), uids.get("sop"), uids.get("study"), uids.get("series"))


def part(**uids: str) -> bytes:
    return b"\x00" * 128 + b"DICM" + json.dumps(uids).encode()


class Broken(MemoryObjectStore):
    def put(self, bucket: str, key: str, body: bytes, **kwargs: Any) -> None:
        if b'"sop": "9"' in body:
            raise OSError("disk full")
        super().put(bucket, key, body, **kwargs)


def test_stow_outcome_per_part() -> None:
    objects = Broken()
    audit = Audit()
    stow = dw.Stow(objects=objects, ingest_bucket="in", inspect=inspect, audit=audit)
    scope = dw.Scope(Actor.partner("h1"), ("h1",))
    good = part(**{"class": "1.2", "sop": "1", "study": "5", "series": "6"})
    content_type, body = dw.multipart(
        [
            good,
            b"junk",
            part(**{"class": "1.2", "sop": "2"}),
            part(**{"class": "1.2", "sop": "9", "study": "5", "series": "6"}),
        ],
        "application/dicom",
    )
    answer = stow.store(scope, content_type=content_type, body=body, base_url="https://x/film/dicomweb")
    assert answer.status == 202
    failed = [(f["00081155"].get("Value"), f["00081197"]["Value"]) for f in answer.dataset["00081198"]["Value"]]
    assert failed == [(None, [0xC000]), (["2"], [0xA900]), (["9"], [0xA700])]
    assert [s["00081190"]["Value"] for s in answer.dataset["00081199"]["Value"]] == [
        ["https://x/film/dicomweb/studies/5/series/6/instances/1"]
    ]
    assert objects.get("in", "h1/stow/5/6/1.dcm") == good
    assert audit.records[0]["details"] == {"stored": 1, "failed": 3, "studies": ["5"]}
    # the URL's study: an instance of another study does not match
    other = stow.store(scope, content_type=content_type, body=body, base_url="b", study="7")
    assert other.status == 409


def test_stow_hospital_and_access() -> None:
    stow = dw.Stow(
        objects=MemoryObjectStore(), ingest_bucket="in", inspect=inspect, audit=Audit(), access=lambda h, m: h != "h2"
    )
    everywhere = dw.Scope(Actor.partner("yilian"), ("*",))
    content_type, body = dw.multipart(
        [part(**{"class": "1", "sop": "1", "study": "5", "series": "6"})], "application/dicom"
    )
    for hospital, expected in ((None, "HOSPITAL_REQUIRED"), ("h2", "ACCESS_METHOD_DISABLED")):
        with pytest.raises(AppError) as refused:
            stow.store(everywhere, content_type=content_type, body=body, base_url="b", hospital=hospital)
        assert refused.value.code == expected
    assert stow.store(everywhere, content_type=content_type, body=body, base_url="b", hospital="h1").status == 200
    with pytest.raises(AppError) as refused:
        stow.store(
            dw.Scope(Actor.partner("h1"), ("h1",)), content_type=content_type, body=body, base_url="b", hospital="h3"
        )
    assert refused.value.code == "HOSPITAL_NOT_ALLOWED"
