"""The viewer bundle (built from web/film into web/film/dist): published to FilmWebBucket under
``viewer/``, served same-origin with the page by FilmViewerAssetFunction (Cornerstone's decode worker
must come from the page's origin; a browser refuses a cross-origin Worker script).
"""

from __future__ import annotations

import re
from pathlib import Path

from bianjie.kit.errors import NotFound
from bianjie.kit.objects import ObjectStore, PutObject

PREFIX = "viewer/"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".map": "application/json",
}
ENTRY = "viewer.js"  # fixed name (the page refers to it); everything else is content-hashed


def content_type(name: str) -> str:
    return TYPES.get(Path(name).suffix, "application/octet-stream")


def cache_control(name: str) -> str:
    return "public, max-age=300" if name == ENTRY else "public, max-age=31536000, immutable"


def publish(objects: ObjectStore, bucket: str, dist: Path) -> int:
    files = [p for p in sorted(dist.iterdir()) if p.is_file() and NAME_RE.fullmatch(p.name)]
    objects.put_many(
        bucket,
        [PutObject(PREFIX + p.name, p.read_bytes(), content_type(p.name), None, cache_control(p.name)) for p in files],
    )
    return len(files)


def fetch(objects: ObjectStore, bucket: str, name: str) -> bytes:
    if not NAME_RE.fullmatch(name):
        raise NotFound("no such viewer file", code="ASSET_NOT_FOUND")
    try:
        return objects.get(bucket, PREFIX + name)
    except Exception as exc:
        raise NotFound("no such viewer file", code="ASSET_NOT_FOUND") from exc
