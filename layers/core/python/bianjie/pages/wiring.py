"""Builds what the pages functions use from their environment."""

from __future__ import annotations

from bianjie.kit import deps
from bianjie.kit.config import env, require_env
from bianjie.kit.objects import ObjectStore


@deps.singleton
def pages_objects() -> ObjectStore:
    store: ObjectStore = deps.objects()
    return store


def pages_bucket() -> str:
    return require_env("PAGES_WEB_BUCKET")


def stage() -> str:
    return env("BIANJIE_STAGE", "local") or "local"
