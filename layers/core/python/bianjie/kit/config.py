"""Configuration from the environment, with the local stack's defaults.

A function reads its environment through ``env`` and friends, never ``os.environ`` directly. On Lambda
(and in an on-premises container) that is the process environment. The local stack runs many functions
in one process, so it gives each function a ``FunctionScope`` (its own variables, as template.yaml
declares them, plus what Lambda sets) and enters it around every invocation; a function then sees only
its own variables, and everything built from them (``settings()``, ``deps`` singletons, boto3 clients)
is cached in the scope, per function, not per process.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")
LOCAL_REGION = "cn-north-1"
LOCAL_AWS_PORT = 5000
LOCAL_GATEWAY_PORT = 3000


class FunctionScope:
    """One function's environment and the objects built from it.

    ``environ`` None means the process environment (Lambda, a container, the CLI, a test).
    """

    def __init__(self, name: str, environ: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.environ = dict(environ) if environ is not None else None
        self.cache: dict[str, Any] = {}
        self.lock = threading.RLock()
        _scopes.add(self)

    def get(self, name: str) -> str | None:
        source = os.environ if self.environ is None else self.environ
        return source.get(name)

    def clear(self) -> None:
        with self.lock:
            self.cache.clear()

    def __repr__(self) -> str:
        return f"FunctionScope({self.name!r})"


_scopes: weakref.WeakSet[FunctionScope] = weakref.WeakSet()
PROCESS = FunctionScope("process")
_current: ContextVar[FunctionScope | None] = ContextVar("bianjie_function_scope", default=None)


def current_scope() -> FunctionScope:
    return _current.get() or PROCESS


@contextmanager
def function_scope(scope: FunctionScope) -> Iterator[FunctionScope]:
    """Runs the block as ``scope``'s function (the runtime wraps every invocation in one)."""
    token = _current.set(scope)
    try:
        yield scope
    finally:
        _current.reset(token)


def carry_scope(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` to run on another thread (a pool) as the current function: a context variable does not
    follow a task into a ``ThreadPoolExecutor``, so without this the task would read the process's
    environment and build clients with no (or the process's) credentials."""
    scope = current_scope()

    def run(*args: Any, **kwargs: Any) -> T:
        with function_scope(scope):
            return fn(*args, **kwargs)

    return run


def _cached_in(scope: FunctionScope, key: str, build: Any) -> Any:
    cache = scope.cache
    if key in cache:
        return cache[key]
    with scope.lock:
        if key not in cache:
            cache[key] = build()
        return cache[key]


def scope_cached(key: str, build: Any) -> Any:
    """``build()`` once per function scope, under ``key``."""
    return _cached_in(current_scope(), key, build)


def process_cached(key: str, build: Any) -> Any:
    """``build()`` once per process, whichever function asks first: for what plays the outside world
    (an in-memory stand-in of an external system every function talks to), never for a function's own
    adapters, which are ``scope_cached``."""
    return _cached_in(PROCESS, key, build)


def clear_scopes() -> None:
    """Forget everything every scope built (tests change the environment between cases)."""
    for scope in list(_scopes):
        scope.clear()


def env(name: str, default: str | None = None) -> str | None:
    value = current_scope().get(name)
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


def _read_settings() -> Settings:
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


def settings() -> Settings:
    """The current function's settings, read once per function."""
    return scope_cached("settings", _read_settings)


def reset_settings() -> None:
    """Forget cached settings (tests change the environment)."""
    for scope in list(_scopes):
        with scope.lock:
            scope.cache.pop("settings", None)
