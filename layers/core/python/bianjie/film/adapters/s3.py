"""S3 (AWS, Ceph RGW, moto) and SQS adapters of the film ports."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bianjie.film.ports import PutObject, StoredObject


class S3Objects:
    def __init__(self, client: Any, workers: int = 8) -> None:
        self.client = client
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        # one pool for the process: ingest calls put_many from several threads, a pool per call costs
        # thread start-ups on every instance
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="film-s3")
            return self._pool

    def get(self, bucket: str, key: str) -> StoredObject:
        response = self.client.get_object(Bucket=bucket, Key=key)
        return StoredObject(response["Body"].read(), str(response.get("ETag", "")).strip('"'))

    def put(self, bucket: str, obj: PutObject) -> None:
        extra: dict[str, Any] = {"ContentType": obj.content_type}
        if obj.content_encoding:
            extra["ContentEncoding"] = obj.content_encoding
        if obj.cache_control:
            extra["CacheControl"] = obj.cache_control
        self.client.put_object(Bucket=bucket, Key=obj.key, Body=obj.body, **extra)

    def put_many(self, bucket: str, objects: Sequence[PutObject]) -> None:
        if len(objects) == 1:
            self.put(bucket, objects[0])
            return
        pool = self._executor()
        for future in [pool.submit(self.put, bucket, obj) for obj in objects]:
            future.result()

    def copy(self, bucket: str, source_key: str, target_key: str, cache_control: str | None = None) -> None:
        extra: dict[str, Any] = {}
        if cache_control:
            extra = {"CacheControl": cache_control, "MetadataDirective": "REPLACE", "ContentType": "image/jpeg"}
        self.client.copy_object(
            Bucket=bucket, Key=target_key, CopySource={"Bucket": bucket, "Key": source_key}, **extra
        )

    def list_keys(self, bucket: str, prefix: str) -> list[str]:
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys.extend(item["Key"] for item in page.get("Contents") or [])
        return keys


class SqsDeadLetters:
    """Sends a poison message to the DLQ at once, with the reason as message attributes."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def send(self, body: str, reason: str, message: str) -> None:
        self.client.send_message(
            QueueUrl=self.queue_url,
            MessageBody=body,
            MessageAttributes={
                "reason": {"DataType": "String", "StringValue": reason},
                "message": {"DataType": "String", "StringValue": message or reason},
            },
        )


class SqsQueue:
    def __init__(self, client: Any, queue_url: str) -> None:
        self.client = client
        self.queue_url = queue_url

    def send(self, body: str) -> None:
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=body)
