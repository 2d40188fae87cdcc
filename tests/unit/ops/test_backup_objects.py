"""``bianjie ops backup-objects``: every object of every bucket into a dated folder, with a manifest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from bianjie_dev.ops.errors import OpsError
from bianjie_dev.ops.objects import backup_objects, safe_relative, verify_copy
from moto import mock_aws

REGION = "cn-north-1"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name=REGION, aws_access_key_id="t", aws_secret_access_key="t")
        for bucket in ("films", "rx-docs"):
            client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        client.put_object(Bucket="films", Key="1.2.840/series/0001.dcm", Body=b"\x00" * 2048)
        client.put_object(Bucket="films", Key="thumb.png", Body=b"png")
        client.put_object(Bucket="rx-docs", Key="处方/2026/rx-1.pdf", Body=b"%PDF")
        yield client


def test_every_bucket_is_copied_into_a_dated_folder(s3: Any, tmp_path: Path) -> None:
    report = backup_objects(s3, tmp_path, day="2026-12-04")
    folder = tmp_path / "2026-12-04"
    assert report["folder"] == str(folder)
    assert (report["buckets"], report["objects"], report["objects_written"]) == (2, 3, 3)
    assert (folder / "films" / "1.2.840" / "series" / "0001.dcm").read_bytes() == b"\x00" * 2048
    assert (folder / "rx-docs" / "处方" / "2026" / "rx-1.pdf").read_bytes() == b"%PDF"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["buckets"]["films"]["thumb.png"]["size"] == 3
    assert verify_copy(folder)


def test_a_second_run_writes_only_what_changed(s3: Any, tmp_path: Path) -> None:
    backup_objects(s3, tmp_path, day="2026-12-04")
    s3.put_object(Bucket="films", Key="thumb.png", Body=b"png2")
    again = backup_objects(s3, tmp_path, day="2026-12-04")
    assert (again["objects_written"], again["objects_unchanged"]) == (1, 2)
    assert verify_copy(tmp_path / "2026-12-04")


def test_a_damaged_copy_fails_verification(s3: Any, tmp_path: Path) -> None:
    backup_objects(s3, tmp_path, ["films"], day="2026-12-04")
    (tmp_path / "2026-12-04" / "films" / "thumb.png").write_bytes(b"gnp")
    assert not verify_copy(tmp_path / "2026-12-04")


def test_an_unknown_bucket_is_refused(s3: Any, tmp_path: Path) -> None:
    with pytest.raises(OpsError) as refused:
        backup_objects(s3, tmp_path, ["no-such-bucket"], day="2026-12-04")
    assert refused.value.code == "BUCKET_NOT_FOUND"


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a/../../b", "", "a/./b"])
def test_keys_that_would_leave_the_folder_are_refused(key: str) -> None:
    with pytest.raises(OpsError) as refused:
        safe_relative(key)
    assert refused.value.code == "OBJECT_KEY_UNSAFE"
