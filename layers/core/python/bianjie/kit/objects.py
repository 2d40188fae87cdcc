"""Objects port: put, get, head, delete, list, and presigned GET/PUT URLs.

Adapters: ``S3ObjectStore`` (AWS S3, Ceph RGW, moto; endpoint from configuration) and
``MemoryObjectStore`` for unit tests. Bulk data never flows through a function: browsers and partners
move bytes with presigned URLs, functions handle the control path.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote


class ObjectNotFound(LookupError):
    pass


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None
    content_type: str | None
    metadata: dict[str, str] = field(default_factory=dict)


class ObjectStore(Protocol):
    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        cache_control: str | None = None,
    ) -> None: ...
    def get(self, bucket: str, key: str) -> bytes: ...
    def head(self, bucket: str, key: str) -> ObjectInfo | None: ...
    def delete(self, bucket: str, key: str) -> None: ...
    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def presigned_get(self, bucket: str, key: str, expires_in: int) -> str: ...
    def presigned_put(self, bucket: str, key: str, expires_in: int, content_type: str | None = None) -> str: ...


class S3ObjectStore:
    def __init__(self, s3_client: Any) -> None:
        self._s3 = s3_client

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        cache_control: str | None = None,
    ) -> None:
        args: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body}
        if content_type:
            args["ContentType"] = content_type
        if metadata:
            args["Metadata"] = metadata
        if cache_control:
            args["CacheControl"] = cache_control
        self._s3.put_object(**args)

    def get(self, bucket: str, key: str) -> bytes:
        try:
            return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except self._s3.exceptions.NoSuchKey as exc:
            raise ObjectNotFound(f"{bucket}/{key}") from exc

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            meta = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return ObjectInfo(
            key,
            int(meta["ContentLength"]),
            meta.get("ETag", "").strip('"') or None,
            meta.get("ContentType"),
            dict(meta.get("Metadata") or {}),
        )

    def delete(self, bucket: str, key: str) -> None:
        self._s3.delete_object(Bucket=bucket, Key=key)

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        paginator = self._s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield ObjectInfo(obj["Key"], int(obj["Size"]), obj.get("ETag", "").strip('"') or None, None)

    def presigned_get(self, bucket: str, key: str, expires_in: int) -> str:
        return str(
            self._s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in)
        )

    def presigned_put(self, bucket: str, key: str, expires_in: int, content_type: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if content_type:
            params["ContentType"] = content_type
        return str(self._s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in))


class MemoryObjectStore:
    """In-memory objects for unit tests; presigned URLs are ``memory://`` with an expiry, checkable by ``open``."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._objects: dict[tuple[str, str], tuple[bytes, ObjectInfo]] = {}
        self._lock = threading.Lock()
        self._clock = clock

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        cache_control: str | None = None,
    ) -> None:
        import hashlib

        info = ObjectInfo(
            key, len(body), hashlib.md5(body, usedforsecurity=False).hexdigest(), content_type, dict(metadata or {})
        )
        with self._lock:
            self._objects[(bucket, key)] = (bytes(body), info)

    def get(self, bucket: str, key: str) -> bytes:
        with self._lock:
            found = self._objects.get((bucket, key))
        if found is None:
            raise ObjectNotFound(f"{bucket}/{key}")
        return found[0]

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        with self._lock:
            found = self._objects.get((bucket, key))
        return found[1] if found else None

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self._objects.pop((bucket, key), None)

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            infos = sorted(
                (info for (b, k), (_, info) in self._objects.items() if b == bucket and k.startswith(prefix)),
                key=lambda i: i.key,
            )
        yield from infos

    def presigned_get(self, bucket: str, key: str, expires_in: int) -> str:
        return f"memory://{bucket}/{quote(key)}?expires={int(self._clock()) + expires_in}&method=GET"

    def presigned_put(self, bucket: str, key: str, expires_in: int, content_type: str | None = None) -> str:
        return f"memory://{bucket}/{quote(key)}?expires={int(self._clock()) + expires_in}&method=PUT"
