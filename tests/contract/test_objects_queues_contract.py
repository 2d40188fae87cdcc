"""The objects and queues ports: the S3/SQS adapters (on moto) and the in-memory fakes behave alike."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from bianjie.kit.objects import MemoryObjectStore, ObjectNotFound, S3ObjectStore
from bianjie.kit.queues import MemoryQueues, Message, SqsQueues, json_message
from bianjie_dev.runtime.child import free_port
from moto import mock_aws
from moto.server import ThreadedMotoServer

REGION = "cn-north-1"


@pytest.fixture(params=["memory", "s3"])
def store(request: pytest.FixtureRequest) -> Iterator[tuple[Any, str]]:
    if request.param == "memory":
        yield MemoryObjectStore(), "bucket-b"
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
