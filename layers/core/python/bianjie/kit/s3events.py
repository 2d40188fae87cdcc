"""S3 event notifications as they reach a function (directly, or as SQS message bodies).

S3 URL-encodes object keys in notifications (form encoding: a space arrives as ``+``); every consumer
must decode them, so it happens here once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    size: int | None
    etag: str | None
    event_name: str
    sequencer: str | None


def object_refs(notification: dict[str, Any] | str) -> list[ObjectRef]:
    """The objects an S3 notification names; the ``s3:TestEvent`` S3 sends on subscription yields none."""
    body = json.loads(notification) if isinstance(notification, str) else notification
    refs = []
    for record in body.get("Records") or []:
        s3 = record.get("s3") or {}
        obj = s3.get("object") or {}
        refs.append(
            ObjectRef(
                bucket=s3.get("bucket", {}).get("name", ""),
                key=unquote_plus(obj.get("key", "")),
                size=obj.get("size"),
                etag=obj.get("eTag"),
                event_name=record.get("eventName", ""),
                sequencer=obj.get("sequencer"),
            )
        )
    return refs
