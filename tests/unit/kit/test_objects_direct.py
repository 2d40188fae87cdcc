"""``S3ObjectStore(direct=True)`` against moto's server (the local stack's S3): bodies over presigned HTTP,
seen by boto3 exactly as if boto3 had written them."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from bianjie.kit.objects import ObjectNotFound, ObjectStoreError, PutObject, S3ObjectStore
from bianjie_dev.runtime.child import free_port
from moto.server import ThreadedMotoServer

BUCKET = "film-derived-test"


@pytest.fixture(scope="module")
def s3() -> Iterator[Any]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        client = boto3.client(
            "s3",
            region_name="cn-north-1",
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=boto3.session.Config(s3={"addressing_style": "path"}),
        )
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "cn-north-1"})
        yield client
    finally:
        server.stop()


def test_put_and_get_round_trip_with_headers(s3: Any) -> None:
    objects = S3ObjectStore(s3, direct=True)
    body = gzip.compress(b"\x01\x02" * 5000, mtime=0)
    objects.put_many(
        BUCKET,
        [
            PutObject("studies/1/frames/1", body, "application/octet-stream", "gzip", "max-age=60"),
            PutObject("studies/1/lossy/1", b"\xff\xd8jpeg", "image/jpeg"),
        ],
    )
    head = s3.head_object(Bucket=BUCKET, Key="studies/1/frames/1")
    assert head["ContentType"] == "application/octet-stream" and head["ContentEncoding"] == "gzip"
    assert head["CacheControl"] == "max-age=60"
    got = objects.fetch(BUCKET, "studies/1/frames/1")
    assert got.body == body  # stored bytes, not inflated on the way
    assert got.etag == head["ETag"].strip('"')
    assert objects.get(BUCKET, "studies/1/frames/1") == body
    assert S3ObjectStore(s3).fetch(BUCKET, "studies/1/lossy/1").body == b"\xff\xd8jpeg"  # boto3 reads it alike
    assert S3ObjectStore(s3).fetch(BUCKET, "studies/1/frames/1") == got


def test_errors_raise(s3: Any) -> None:
    objects = S3ObjectStore(s3, direct=True)
    with pytest.raises(ObjectNotFound):  # as the boto3 path and the memory store raise
        objects.get(BUCKET, "no/such/key")
    with pytest.raises(ObjectStoreError) as caught:
        objects.put("no-such-bucket-x", "k", b"x", content_type="text/plain")
    assert caught.value.status == 404
