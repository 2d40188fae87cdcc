"""What the film domain needs from the world. Adapters live in ``bianjie.film.adapters``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class StoredObject:
    body: bytes
    etag: str


@dataclass(frozen=True)
class PutObject:
    key: str
    body: bytes
    content_type: str
    content_encoding: str | None = None
    cache_control: str | None = None


class ObjectStore(Protocol):
    def get(self, bucket: str, key: str) -> StoredObject: ...

    def put(self, bucket: str, obj: PutObject) -> None: ...

    def put_many(self, bucket: str, objects: Sequence[PutObject]) -> None:
        """Writes every object (in parallel where the adapter can); raises if any write failed."""
        ...

    def copy(self, bucket: str, source_key: str, target_key: str, cache_control: str | None = None) -> None: ...

    def list_keys(self, bucket: str, prefix: str) -> list[str]: ...


class Presigner(Protocol):
    def presign_get(self, bucket: str, keys: Sequence[str], expires_in: int) -> list[str]:
        """Presigned GET URLs for many keys of one bucket (one signing key, so cheap per URL)."""
        ...


class Queue(Protocol):
    """One queue (``bianjie.kit.queues.QueueSender``): a string body as is, anything else as JSON."""

    def send(self, payload: Any, delay_seconds: int = 0, attributes: dict[str, str] | None = None) -> str: ...
