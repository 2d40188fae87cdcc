"""Tracing behind one small interface: ``tracer().span(name, **annotations)`` and ``tracer().annotate``.

Implementations are chosen by ``BIANJIE_TRACING``:
- ``off`` (default): ``NoopTracer``, costs nothing.
- ``xray``: ``XRayTracer`` over aws-xray-sdk. The SDK is imported only when this tracer is built,
  because importing it costs ~440 ms of cold start.
- ``otel``: ``OtelTracer`` over the OpenTelemetry API (aws-xray-sdk reaches end of support in February
  2027; AWS's own path onward is OpenTelemetry). Spans go to whatever TracerProvider the process has:
  on Lambda the ADOT layer (``AWS_LAMBDA_EXEC_WRAPPER=/opt/otel-instrument``) sets one up that exports to
  X-Ray or any OTLP collector; on premises the OpenTelemetry SDK configured by ``OTEL_*`` variables.
  With no provider the API's no-op tracer is used, so the setting is always safe.
Other backends: ``register_tracer(name, factory)``; no calling code changes.

Annotations are searchable in the tracing backend, so keys that name sensitive values (the logging
deny-list) are dropped and values are reduced to str/int/float/bool.

Usage::

    with tracer().span("film.issue_link", app_id=partner.app_id):
        ...
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, Protocol

from bianjie.kit.logging import get_logger, is_sensitive_key, mask_text

_log = get_logger(__name__)
_KEY_RE = re.compile(r"[^A-Za-z0-9_]")


class Span(Protocol):
    def annotate(self, key: str, value: Any) -> None: ...


class Tracer(Protocol):
    name: str

    def span(self, name: str, **annotations: Any) -> contextlib.AbstractContextManager[Span]: ...

    def annotate(self, key: str, value: Any) -> None: ...


def clean_annotation(key: str, value: Any) -> tuple[str, str | int | float | bool] | None:
    """(key, value) fit for a tracing backend, or None when it must not be recorded."""
    if is_sensitive_key(key):
        return None
    key = _KEY_RE.sub("_", key)[:100]  # X-Ray: alphanumerics and underscore only
    if isinstance(value, bool | int | float):
        return key, value
    return key, mask_text(str(value))[:250]


class _NoopSpan:
    def annotate(self, key: str, value: Any) -> None:
        return None


class NoopTracer:
    name = "off"
    _span = _NoopSpan()

    @contextlib.contextmanager
    def span(self, name: str, **annotations: Any) -> Iterator[Span]:
        yield self._span

    def annotate(self, key: str, value: Any) -> None:
        return None


class _XRaySpan:
    def __init__(self, subsegment: Any) -> None:
        self._sub = subsegment

    def annotate(self, key: str, value: Any) -> None:
        cleaned = clean_annotation(key, value)
        if cleaned is not None and self._sub is not None:
            self._sub.put_annotation(*cleaned)


class XRayTracer:
    """X-Ray through aws-xray-sdk (Lambda creates the segment; we add subsegments).

    ``patch_modules``: libraries whose calls become subsegments; botocore covers DynamoDB, S3, SQS
    and KMS calls. Outside Lambda (local stack) a missing segment is logged, never raised.
    """

    name = "xray"

    def __init__(self, patch_modules: tuple[str, ...] = ("botocore",), recorder: Any = None) -> None:
        if recorder is None:
            from aws_xray_sdk.core import patch, xray_recorder

            xray_recorder.configure(context_missing="LOG_ERROR")
            if patch_modules:
                patch(patch_modules)
            recorder = xray_recorder
        self._recorder = recorder

    @contextlib.contextmanager
    def span(self, name: str, **annotations: Any) -> Iterator[Span]:
        sub = self._recorder.begin_subsegment(name[:200])
        span = _XRaySpan(sub)
        try:
            for key, value in annotations.items():
                span.annotate(key, value)
            yield span
        except BaseException as exc:
            if sub is not None:
                sub.add_exception(exc, _stack())
            raise
        finally:
            if sub is not None:
                self._recorder.end_subsegment()

    def annotate(self, key: str, value: Any) -> None:
        # Lambda's own segment is a read-only facade, so annotations go on the current subsegment.
        sub = self._recorder.current_subsegment()
        if sub is not None:
            _XRaySpan(sub).annotate(key, value)


class _OtelSpan:
    def __init__(self, span: Any) -> None:
        self._span = span

    def annotate(self, key: str, value: Any) -> None:
        cleaned = clean_annotation(key, value)
        if cleaned is not None:
            self._span.set_attribute(*cleaned)


class OtelTracer:
    """OpenTelemetry spans; exceptions are recorded on the span and mark it as an error."""

    name = "otel"

    def __init__(self, provider: Any = None) -> None:
        from opentelemetry import trace

        self._trace = trace
        self._tracer = (provider or trace.get_tracer_provider()).get_tracer("bianjie")

    @contextlib.contextmanager
    def span(self, name: str, **annotations: Any) -> Iterator[Span]:
        with self._tracer.start_as_current_span(name[:200]) as current:
            span = _OtelSpan(current)
            for key, value in annotations.items():
                span.annotate(key, value)
            yield span

    def annotate(self, key: str, value: Any) -> None:
        _OtelSpan(self._trace.get_current_span()).annotate(key, value)


def _stack() -> Any:
    import traceback

    return traceback.extract_stack(limit=10)


_FACTORIES: dict[str, Callable[[], Tracer]] = {"off": NoopTracer, "xray": XRayTracer, "otel": OtelTracer}
_current: Tracer | None = None
_lock = threading.Lock()


def register_tracer(name: str, factory: Callable[[], Tracer]) -> None:
    """Make ``BIANJIE_TRACING=<name>`` build ``factory()`` (e.g. an OpenTelemetry tracer)."""
    _FACTORIES[name] = factory


def tracer() -> Tracer:
    """The process-wide tracer, built on first use from ``BIANJIE_TRACING``."""
    global _current
    if _current is None:
        with _lock:
            if _current is None:
                from bianjie.kit.config import settings

                kind = settings().tracing
                factory = _FACTORIES.get(kind)
                if factory is None:
                    _log.warning("unknown tracing backend; tracing off", tracing=kind)
                    factory = NoopTracer
                _current = factory()
    return _current


def set_tracer(value: Tracer | None) -> None:
    """Replace the process tracer (tests); None makes the next ``tracer()`` re-read the settings."""
    global _current
    _current = value
