"""Objects port: put (one or many), get (with or without its ETag), head, delete, list, server-side
copy, and presigned GET/PUT URLs (one, or many GETs at once).

Adapters: ``S3ObjectStore`` (AWS S3, Ceph RGW, moto; endpoint from configuration) and
``MemoryObjectStore`` for unit tests. Bulk data never flows through a function: browsers and partners
move bytes with presigned URLs, functions handle the control path.

``S3ObjectStore(direct=True)`` moves object bodies (get, fetch, put, put_many) over plain HTTP with
presigned URLs (``bianjie.kit.presign.BulkPresigner``: one SHA-256 and one HMAC per request) through a
shared urllib3 pool instead of through boto3: boto3 spends ~2.3-2.6 ms of CPU per GET or PUT of a
frame-sized object (event hooks, endpoint rules, request objects, checksums), the direct path ~1 ms
(film's ingest makes three such calls per DICOM instance). Heads, copies, listings and deletes stay on
boto3. The direct path retries connection errors and 5xx answers (three times, short backoff) as
boto3's standard mode does; integrity rests on TLS in production, as boto3's UNSIGNED-PAYLOAD over
HTTPS does. It needs S3 over the network (Lambda, an endpoint such as the local stack's moto server or
Ceph): in-process moto only intercepts boto3.
"""

from __future__ import annotations

import builtins
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from bianjie.kit.config import carry_scope

URL_SECONDS = 300  # lifetime of the presigned URL of one direct request


class ObjectNotFound(LookupError):
    pass


class ObjectStoreError(RuntimeError):
    """S3 answered a direct request with an error status (other than a missing key on a read)."""

    def __init__(self, method: str, key: str, status: int, body: bytes) -> None:
        super().__init__(f"S3 {method} {key}: HTTP {status} {body[:200]!r}")
        self.status = status


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None
    content_type: str | None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredObject:
    """An object's body with its ETag (a reader that must notice a changed object compares it)."""

    body: bytes
    etag: str


@dataclass(frozen=True)
class PutObject:
    """One object of ``put_many``."""

    key: str
    body: bytes
    content_type: str
    content_encoding: str | None = None
    cache_control: str | None = None


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
        content_encoding: str | None = None,
    ) -> None: ...
    def put_many(self, bucket: str, objects: Sequence[PutObject]) -> None:
        """Writes every object (in parallel where the adapter can); raises if any write failed."""
        ...

    def get(self, bucket: str, key: str) -> bytes:
        """The body as stored (a gzip Content-Encoding is not undone); ``ObjectNotFound`` if absent."""
        ...

    def fetch(self, bucket: str, key: str) -> StoredObject:
        """The body as stored with its ETag; ``ObjectNotFound`` if absent."""
        ...

    def head(self, bucket: str, key: str) -> ObjectInfo | None: ...
    def delete(self, bucket: str, key: str) -> None: ...
    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]: ...
    def copy(
        self,
        bucket: str,
        source_key: str,
        target_key: str,
        *,
        cache_control: str | None = None,
        content_type: str | None = None,
    ) -> None:
        """A server-side copy within the bucket. Given ``cache_control`` or ``content_type``, the copy's
        headers are replaced (both then describe the copy; an omitted one is left unset)."""
        ...

    def presigned_get(self, bucket: str, key: str, expires_in: int) -> str: ...
    def presigned_gets(self, bucket: str, keys: Sequence[str], expires_in: int) -> builtins.list[str]:
        """Presigned GET URLs for many keys of one bucket (one signing key, so cheap per URL)."""
        ...

    def presigned_put(self, bucket: str, key: str, expires_in: int, content_type: str | None = None) -> str: ...


class S3ObjectStore:
    def __init__(self, s3_client: Any, *, direct: bool = False, workers: int = 8) -> None:
        from bianjie.kit.presign import BulkPresigner

        self._s3 = s3_client
        self.workers = workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._signer = BulkPresigner(s3_client)
        self._http: Any = None
        if direct:
            import urllib3

            self._http = urllib3.PoolManager(
                num_pools=4,
                maxsize=32,
                retries=urllib3.Retry(
                    total=3,
                    backoff_factor=0.05,
                    status_forcelist=(500, 502, 503, 504),
                    allowed_methods=frozenset({"GET", "PUT"}),
                    raise_on_status=False,
                ),
                timeout=urllib3.Timeout(connect=2, read=10),
            )

    @property
    def client(self) -> Any:
        return self._s3

    def _direct(self, method: str, bucket: str, key: str, **kwargs: Any) -> Any:
        url = self._signer.presign(bucket, [key], URL_SECONDS, method)[0]
        response = self._http.request(method, url, decode_content=False, **kwargs)
        if response.status != 200:
            if method == "GET" and response.status == 404 and b"NoSuchKey" in response.data:
                raise ObjectNotFound(f"{bucket}/{key}")
            raise ObjectStoreError(method, key, response.status, response.data)
        return response

    def _executor(self) -> ThreadPoolExecutor:
        # one pool for the process: ingest calls put_many from several threads, a pool per call costs
        # thread start-ups on every instance
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="objects-s3")
            return self._pool

    def put(
        self,
        bucket: str,
        key: str,
        body: bytes,
        *,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        cache_control: str | None = None,
        content_encoding: str | None = None,
    ) -> None:
        if self._http is not None and not metadata:
            headers = {}
            if content_type:
                headers["Content-Type"] = content_type
            if content_encoding:
                headers["Content-Encoding"] = content_encoding
            if cache_control:
                headers["Cache-Control"] = cache_control
            self._direct("PUT", bucket, key, body=body, headers=headers)
            return
        args: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body}
        if content_type:
            args["ContentType"] = content_type
        if metadata:
            args["Metadata"] = metadata
        if cache_control:
            args["CacheControl"] = cache_control
        if content_encoding:
            args["ContentEncoding"] = content_encoding
        self._s3.put_object(**args)

    def _put_one(self, bucket: str, obj: PutObject) -> None:
        self.put(
            bucket,
            obj.key,
            obj.body,
            content_type=obj.content_type,
            cache_control=obj.cache_control,
            content_encoding=obj.content_encoding,
        )

    def put_many(self, bucket: str, objects: Sequence[PutObject]) -> None:
        if len(objects) == 1:
            self._put_one(bucket, objects[0])
            return
        pool = self._executor()
        for future in [pool.submit(carry_scope(self._put_one), bucket, obj) for obj in objects]:
            future.result()

    def fetch(self, bucket: str, key: str) -> StoredObject:
        if self._http is not None:
            response = self._direct("GET", bucket, key)
            return StoredObject(response.data, str(response.headers.get("ETag", "")).strip('"'))
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key)
        except self._s3.exceptions.NoSuchKey as exc:
            raise ObjectNotFound(f"{bucket}/{key}") from exc
        return StoredObject(response["Body"].read(), str(response.get("ETag", "")).strip('"'))

    def get(self, bucket: str, key: str) -> bytes:
        return self.fetch(bucket, key).body

    def copy(
        self,
        bucket: str,
        source_key: str,
        target_key: str,
        *,
        cache_control: str | None = None,
        content_type: str | None = None,
    ) -> None:
        extra: dict[str, Any] = {}
        if cache_control or content_type:
            extra["MetadataDirective"] = "REPLACE"
            if cache_control:
                extra["CacheControl"] = cache_control
            if content_type:
                extra["ContentType"] = content_type
        self._s3.copy_object(Bucket=bucket, Key=target_key, CopySource={"Bucket": bucket, "Key": source_key}, **extra)

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

    def presigned_gets(self, bucket: str, keys: Sequence[str], expires_in: int) -> builtins.list[str]:
        return self._signer.presign_get(bucket, keys, expires_in)

    def presigned_put(self, bucket: str, key: str, expires_in: int, content_type: str | None = None) -> str:
        params: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if content_type:
            params["ContentType"] = content_type
        return str(self._s3.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in))


class MemoryObjectStore:
    """In-memory objects for unit tests; presigned URLs are ``memory://`` with an expiry, checkable by ``open``."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._objects: dict[tuple[str, str], tuple[bytes, ObjectInfo]] = {}
        # Cache-Control and Content-Encoding of each object, for tests to read (ObjectInfo carries neither)
        self.headers: dict[tuple[str, str], dict[str, str | None]] = {}
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
        content_encoding: str | None = None,
    ) -> None:
        import hashlib

        info = ObjectInfo(
            key, len(body), hashlib.md5(body, usedforsecurity=False).hexdigest(), content_type, dict(metadata or {})
        )
        with self._lock:
            self._objects[(bucket, key)] = (bytes(body), info)
            self.headers[(bucket, key)] = {"cache_control": cache_control, "content_encoding": content_encoding}

    def put_many(self, bucket: str, objects: Sequence[PutObject]) -> None:
        for obj in objects:
            self.put(
                bucket,
                obj.key,
                obj.body,
                content_type=obj.content_type,
                cache_control=obj.cache_control,
                content_encoding=obj.content_encoding,
            )

    def fetch(self, bucket: str, key: str) -> StoredObject:
        with self._lock:
            found = self._objects.get((bucket, key))
        if found is None:
            raise ObjectNotFound(f"{bucket}/{key}")
        return StoredObject(found[0], found[1].etag or "")

    def get(self, bucket: str, key: str) -> bytes:
        return self.fetch(bucket, key).body

    def copy(
        self,
        bucket: str,
        source_key: str,
        target_key: str,
        *,
        cache_control: str | None = None,
        content_type: str | None = None,
    ) -> None:
        with self._lock:
            found = self._objects.get((bucket, source_key))
            if found is None:
                raise ObjectNotFound(f"{bucket}/{source_key}")
            body, info = found
            headers = dict(self.headers.get((bucket, source_key)) or {})
            if cache_control or content_type:  # S3's MetadataDirective=REPLACE
                info = ObjectInfo(target_key, info.size, info.etag, content_type, {})
                headers = {"cache_control": cache_control, "content_encoding": None}
            else:
                info = ObjectInfo(target_key, info.size, info.etag, info.content_type, dict(info.metadata))
            self._objects[(bucket, target_key)] = (body, info)
            self.headers[(bucket, target_key)] = headers

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        with self._lock:
            found = self._objects.get((bucket, key))
        return found[1] if found else None

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self._objects.pop((bucket, key), None)
            self.headers.pop((bucket, key), None)

    def list(self, bucket: str, prefix: str = "") -> Iterator[ObjectInfo]:
        with self._lock:
            infos = sorted(
                (info for (b, k), (_, info) in self._objects.items() if b == bucket and k.startswith(prefix)),
                key=lambda i: i.key,
            )
        yield from infos

    def presigned_get(self, bucket: str, key: str, expires_in: int) -> str:
        return f"memory://{bucket}/{quote(key)}?expires={int(self._clock()) + expires_in}&method=GET"

    def presigned_gets(self, bucket: str, keys: Sequence[str], expires_in: int) -> builtins.list[str]:
        return [self.presigned_get(bucket, key, expires_in) for key in keys]

    def presigned_put(self, bucket: str, key: str, expires_in: int, content_type: str | None = None) -> str:
        return f"memory://{bucket}/{quote(key)}?expires={int(self._clock()) + expires_in}&method=PUT"
