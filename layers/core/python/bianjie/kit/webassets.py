"""Built browser pages (a Vite ``dist``) in a service's web bucket: HTML under ``html/``, content-hashed
scripts and styles under ``assets/``, published by the demo or the CLI and served by the service's page
and asset functions from the APIs' origin (the pages service's PagesWebBucket, the service bot's
AssistantWebBucket), so pages call the services with relative URLs and a ``connect-src 'self'`` policy.
"""

from __future__ import annotations

import re
from pathlib import Path

from bianjie.kit.errors import NotFound
from bianjie.kit.objects import ObjectNotFound, ObjectStore

HTML = "html/"
ASSETS = "assets/"
PAGE_RE = re.compile(r"[a-z][a-z0-9-]{0,39}")
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".map": "application/json",
}


def content_type(name: str) -> str:
    return TYPES.get(Path(name).suffix, "application/octet-stream")


def publish(objects: ObjectStore, bucket: str, dist: Path) -> int:
    """Uploads every page and asset; assets are content-hashed by Vite, so they are cached for a year."""
    count = 0
    for page in sorted(dist.glob("*.html")):
        if PAGE_RE.fullmatch(page.stem):
            objects.put(bucket, HTML + page.name, page.read_bytes(), content_type="text/html; charset=utf-8")
            count += 1
    assets = dist / "assets"
    for path in sorted(assets.iterdir()) if assets.is_dir() else []:
        if path.is_file() and NAME_RE.fullmatch(path.name):
            objects.put(
                bucket,
                ASSETS + path.name,
                path.read_bytes(),
                content_type=content_type(path.name),
                cache_control="public, max-age=31536000, immutable",
            )
            count += 1
    return count


def page_html(objects: ObjectStore, bucket: str, page: str) -> str:
    if not PAGE_RE.fullmatch(page):
        raise NotFound("no such page", code="PAGE_NOT_FOUND")
    try:
        return objects.get(bucket, f"{HTML}{page}.html").decode("utf-8")
    except ObjectNotFound as exc:
        raise NotFound("no such page", code="PAGE_NOT_FOUND") from exc


def asset(objects: ObjectStore, bucket: str, name: str) -> bytes:
    if not NAME_RE.fullmatch(name):
        raise NotFound("no such page file", code="ASSET_NOT_FOUND")
    try:
        return objects.get(bucket, ASSETS + name)
    except ObjectNotFound as exc:
        raise NotFound("no such page file", code="ASSET_NOT_FOUND") from exc
