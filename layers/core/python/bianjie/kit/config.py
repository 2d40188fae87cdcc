"""Configuration from the environment, with the local stack's defaults.

Every setting is read once per process (functions are short-lived containers). Resource names
(tables, buckets, queues) reach a function as environment variables that template.yaml sets with
``!Ref``; the local stack resolves them to the physical names it provisioned.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

LOCAL_REGION = "cn-north-1"
LOCAL_AWS_PORT = 5000
LOCAL_GATEWAY_PORT = 3000


def env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def require_env(name: str) -> str:
    value = env(name)
    if value is None:
        raise RuntimeError(f"environment variable {name} is not set (template.yaml declares it)")
    return value


def env_flag(name: str, default: bool = False) -> bool:
    value = env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = env(name)
    return default if value is None else int(value)


@dataclass(frozen=True)
class Settings:
    region: str
    aws_endpoint_url: str | None
    stage: str
    tracing: str  # "off" | "xray" | "otel"
    log_level: str
    document_backend: str  # "dynamodb" | "postgres"
    postgres_dsn: str | None
    key_backend: str  # "kms" | "local"
    kms_key_id: str | None
    clock_skew_seconds: int
    blind_index_key_wrapped: str | None
    local_master_key_file: str | None


@lru_cache(maxsize=1)
def settings() -> Settings:
    return Settings(
        region=env("AWS_REGION", env("AWS_DEFAULT_REGION", LOCAL_REGION)) or LOCAL_REGION,
        aws_endpoint_url=env("BIANJIE_AWS_ENDPOINT_URL"),
        stage=env("BIANJIE_STAGE", "local") or "local",
        tracing=(env("BIANJIE_TRACING", "off") or "off").lower(),
        log_level=(env("BIANJIE_LOG_LEVEL", "INFO") or "INFO").upper(),
        document_backend=(env("BIANJIE_DOCUMENTS", "dynamodb") or "dynamodb").lower(),
        postgres_dsn=env("BIANJIE_POSTGRES_DSN"),
        key_backend=(env("BIANJIE_KEYS", "kms") or "kms").lower(),
        kms_key_id=env("BIANJIE_KMS_KEY_ID"),
        clock_skew_seconds=env_int("BIANJIE_CLOCK_SKEW_SECONDS", 300),
        blind_index_key_wrapped=env("BIANJIE_BLIND_INDEX_KEY"),
        local_master_key_file=env("BIANJIE_MASTER_KEY_FILE"),
    )


def reset_settings() -> None:
    """Forget cached settings (tests change the environment)."""
    settings.cache_clear()
