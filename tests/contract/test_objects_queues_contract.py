"""The objects and queues ports: the S3/SQS adapters (on moto) and the in-memory fakes behave alike."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from bianjie.kit.objects import MemoryObjectStore, ObjectNotFound, PutObject, S3ObjectStore
from bianjie.kit.queues import MemoryQueues, Message, SqsQueues, json_message
from bianjie_dev.runtime.child import free_port
from moto import mock_aws
from moto.server import ThreadedMotoServer

REGION = "cn-north-1"


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """moto's server, for the adapter's direct path (bodies over presigned HTTP, which in-process moto
    cannot intercept)."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(params=["memory", "s3", "s3-direct"])
def store(request: pytest.FixtureRequest) -> Iterator[tuple[Any, str]]:
    if request.param == "memory":
        yield MemoryObjectStore(), "bucket-b"
        return
    if request.param == "s3-direct":
        endpoint = request.getfixturevalue("s3_server")
        s3 = boto3.client(
            "s3",
            region_name=REGION,
            endpoint_url=endpoint,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            config=boto3.session.Config(s3={"addressing_style": "path"}),
        )
        bucket = f"bucket-{request.node.name.split('[')[0][-40:].replace('_', '-')}"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield S3ObjectStore(s3, direct=True), bucket
        return
    with mock_aws():
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="bucket-b", CreateBucketConfiguration={"LocationConstraint": REGION})
        yield S3ObjectStore(s3), "bucket-b"


def test_put_get_head_list_delete(store: tuple[Any, str]) -> None:
    objects, bucket = store
    objects.put(bucket, "a/1.json", b'{"x":1}', content_type="application/json", metadata={"study": "s1"})
    objects.put(bucket, "a/2.bin", b"\x00\x01")
    objects.put(bucket, "b/3.bin", b"3")
    assert objects.get(bucket, "a/1.json") == b'{"x":1}'
    info = objects.head(bucket, "a/1.json")
    assert info is not None and info.size == 7 and info.content_type == "application/json"
    assert info.metadata == {"study": "s1"}
    assert objects.head(bucket, "missing") is None
    assert [i.key for i in objects.list(bucket, "a/")] == ["a/1.json", "a/2.bin"]
    objects.delete(bucket, "a/1.json")
    with pytest.raises(ObjectNotFound):
        objects.get(bucket, "a/1.json")


def test_fetch_gives_the_body_with_its_etag(store: tuple[Any, str]) -> None:
    objects, bucket = store
    objects.put(bucket, "f/1", b"first", content_type="text/plain")
    first = objects.fetch(bucket, "f/1")
    assert first.body == b"first" and first.etag == objects.head(bucket, "f/1").etag
    objects.put(bucket, "f/1", b"second", content_type="text/plain")
    assert objects.fetch(bucket, "f/1").etag != first.etag  # a changed object is noticed
    with pytest.raises(ObjectNotFound):
        objects.fetch(bucket, "f/missing")


def test_put_many_writes_every_object_with_its_headers(store: tuple[Any, str]) -> None:
    objects, bucket = store
    objects.put_many(
        bucket,
        [
            PutObject("m/frame", b"\x1f\x8bzip", "application/octet-stream", "gzip", "max-age=60"),
            PutObject("m/index", b"[]", "application/dicom+json"),
        ],
    )
    assert objects.get(bucket, "m/frame") == b"\x1f\x8bzip"  # as stored: a gzip encoding is not undone
    assert objects.head(bucket, "m/index").content_type == "application/dicom+json"
    assert [i.key for i in objects.list(bucket, "m/")] == ["m/frame", "m/index"]


def test_copy_keeps_or_replaces_the_headers(store: tuple[Any, str]) -> None:
    objects, bucket = store
    objects.put(bucket, "c/src", b"jpeg", content_type="image/jpeg", cache_control="immutable")
    objects.copy(bucket, "c/src", "c/same")
    assert objects.get(bucket, "c/same") == b"jpeg"
    assert objects.head(bucket, "c/same").content_type == "image/jpeg"
    objects.copy(bucket, "c/src", "c/short", cache_control="max-age=60", content_type="image/jpeg")
    assert objects.get(bucket, "c/short") == b"jpeg"
    assert objects.head(bucket, "c/short").content_type == "image/jpeg"
    with pytest.raises(Exception):  # noqa: B017 - S3 and memory refuse a missing source each their way
        objects.copy(bucket, "c/missing", "c/none")
    assert objects.head(bucket, "c/none") is None


def test_presigned_gets_one_url_per_key(store: tuple[Any, str]) -> None:
    objects, bucket = store
    keys = ["s/1", "s/影像 2", "s/3"]
    urls = objects.presigned_gets(bucket, keys, 300)
    assert len(urls) == 3 and len(set(urls)) == 3
    assert all("s/" in url for url in urls)


def test_presigned_urls_name_bucket_key_and_expiry(store: tuple[Any, str]) -> None:
    objects, bucket = store
    url = objects.presigned_get(bucket, "dir/影像 1.dcm", 300)
    assert "dir/" in url and ("Expires=" in url or "X-Amz-Expires=300" in url or "expires=" in url)
    assert objects.presigned_put(bucket, "up/x", 60, "application/dicom")


def test_presigned_get_and_put_work_over_http() -> None:
    """Against moto's server, as a browser would use them."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        s3 = boto3.client(
            "s3",
            region_name=REGION,
            endpoint_url=f"http://127.0.0.1:{port}",
            aws_access_key_id="x",
            aws_secret_access_key="x",
        )
        s3.create_bucket(Bucket="web", CreateBucketConfiguration={"LocationConstraint": REGION})
        objects = S3ObjectStore(s3)
        put = urllib.request.Request(
            objects.presigned_put("web", "k", 60),
            data=b"payload",
            method="PUT",
            headers={"Content-Type": "application/octet-stream"},
        )
        with urllib.request.urlopen(put, timeout=5) as r:
            assert r.status == 200
        with urllib.request.urlopen(objects.presigned_get("web", "k", 60), timeout=5) as r:
            assert r.read() == b"payload"
    finally:
        server.stop()


@pytest.fixture(params=["memory", "sqs"])
def queues(request: pytest.FixtureRequest) -> Iterator[tuple[Any, str, Any]]:
    if request.param == "memory":
        q = MemoryQueues()
        yield q, "q", lambda: [m.body for m in q.sent.get("q", [])]
        return
    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        url = sqs.create_queue(QueueName="q")["QueueUrl"]

        def bodies() -> list[str]:
            out: list[str] = []
            while True:
                got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
                if not got:
                    return sorted(out, key=lambda b: int(b) if b.isdigit() else -1)
                out += [m["Body"] for m in got]

        yield SqsQueues(sqs), url, bodies


def test_send_and_batch_over_ten(queues: tuple[Any, str, Any]) -> None:
    q, url, bodies = queues
    assert q.send(url, json_message({"a": 1}))
    ids = q.send_batch(url, [Message(str(i), attributes={"type": "t"}) for i in range(23)])
    assert len(ids) == 23 and all(ids)
    assert bodies() == ['{"a":1}', *[str(i) for i in range(23)]]
