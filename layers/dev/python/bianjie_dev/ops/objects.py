"""The daily copy of object storage (对象存储每日备份): every object of the named buckets (or of every
bucket the credentials list), from any S3 API (Ceph RGW in the hospital, the emulator here), into
``<dest>/<YYYY-MM-DD>/<bucket>/<key>``, with a ``manifest.json`` of each object's size and SHA-256.

An object already in that day's folder with the same size and digest is not written again, so a run
interrupted half-way can be started again. Keys that would escape the folder (``..``, a leading ``/``)
are refused, not written; empty "folder" markers (keys ending in ``/``) are skipped.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bianjie.kit.timefmt import BEIJING

from bianjie_dev.ops.errors import OpsError


def safe_relative(key: str) -> Path:
    parts = [part for part in key.split("/") if part]
    if not parts or key.startswith("/") or any(part in ("..", ".") for part in key.split("/")):
        raise OpsError("OBJECT_KEY_UNSAFE", f"对象键不能作为文件路径：{key!r}")
    return Path(*parts)


def backup_objects(s3: Any, dest: Path, buckets: list[str] | None = None, *, day: str | None = None) -> dict[str, Any]:
    started = time.monotonic()
    day = day or datetime.now(UTC).astimezone(BEIJING).date().isoformat()
    names = buckets or [b["Name"] for b in s3.list_buckets().get("Buckets", [])]
    folder = dest / day
    folder.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, Any] = {"day": day, "buckets": {}}
    total_objects = total_bytes = skipped = 0
    for bucket in names:
        entries: dict[str, Any] = {}
        paginator = s3.get_paginator("list_objects_v2")
        try:
            pages = list(paginator.paginate(Bucket=bucket))
        except s3.exceptions.NoSuchBucket:
            raise OpsError("BUCKET_NOT_FOUND", f"存储桶不存在：{bucket}") from None
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/") and obj.get("Size", 0) == 0:
                    continue  # a "folder" marker: the folder is made by its objects
                path = folder / bucket / safe_relative(key)
                body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                digest = hashlib.sha256(body).hexdigest()
                if (
                    path.is_file()
                    and path.stat().st_size == len(body)
                    and hashlib.sha256(path.read_bytes()).hexdigest() == digest
                ):
                    skipped += 1
                    entries[key] = {"size": len(body), "sha256": digest}
                    continue
                path.parent.mkdir(parents=True, exist_ok=True)
                partial = path.with_name(path.name + ".partial")
                partial.write_bytes(body)
                partial.replace(path)
                entries[key] = {"size": len(body), "sha256": digest}
                total_objects += 1
                total_bytes += len(body)
        manifest["buckets"][bucket] = entries
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1, sort_keys=True))
    return {
        "folder": str(folder),
        "buckets": len(names),
        "objects": sum(len(v) for v in manifest["buckets"].values()),
        "objects_written": total_objects,
        "objects_unchanged": skipped,
        "bytes_written": total_bytes,
        "objects_s": round(time.monotonic() - started, 2),
    }


def verify_copy(folder: Path) -> bool:
    """Every object of a day's manifest is there with its digest."""
    manifest = json.loads((folder / "manifest.json").read_text())
    for bucket, entries in manifest["buckets"].items():
        for key, meta in entries.items():
            path = folder / bucket / safe_relative(key)
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != meta["sha256"]:
                return False
    return True
