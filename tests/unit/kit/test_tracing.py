"""Tracing interface: noop default, lazy X-Ray, pluggable backends, annotation hygiene."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from bianjie.kit import tracing
from bianjie.kit.config import reset_settings
from bianjie.kit.tracing import (
    NoopTracer,
    OtelTracer,
    XRayTracer,
    clean_annotation,
    register_tracer,
    set_tracer,
    tracer,
)


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    set_tracer(None)
    reset_settings()
    yield monkeypatch
    set_tracer(None)
    reset_settings()


def test_default_is_noop(fresh: pytest.MonkeyPatch) -> None:
    fresh.delenv("BIANJIE_TRACING", raising=False)
    t = tracer()
    assert isinstance(t, NoopTracer) and tracer() is t
    with t.span("anything", app_id="x") as span:
        span.annotate("k", 1)
    t.annotate("k", "v")


def test_importing_tracing_does_not_import_the_xray_sdk() -> None:
    code = "import sys, bianjie.kit.tracing as t; t.tracer();print('aws_xray_sdk' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"BIANJIE_TRACING": "off", "PATH": ""},
    )
    assert out.stdout.strip() == "False"


class FakeSubsegment:
    def __init__(self, name: str) -> None:
        self.name = name
        self.annotations: dict[str, Any] = {}
        self.exceptions: list[BaseException] = []

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value

    def add_exception(self, exc: BaseException, stack: Any) -> None:
        self.exceptions.append(exc)


class FakeRecorder:
    def __init__(self) -> None:
        self.stack: list[FakeSubsegment] = []
        self.done: list[FakeSubsegment] = []

    def begin_subsegment(self, name: str) -> FakeSubsegment:
        sub = FakeSubsegment(name)
        self.stack.append(sub)
        return sub

    def end_subsegment(self) -> None:
        self.done.append(self.stack.pop())

    def current_subsegment(self) -> FakeSubsegment | None:
        return self.stack[-1] if self.stack else None


def test_xray_spans_and_annotations() -> None:
    rec = FakeRecorder()
    t = XRayTracer(recorder=rec)
    with t.span("film.issue_link", app_id="his-1", patient_name="王小明", count=3) as span:
        span.annotate("study-uid", "1.2.3")
        t.annotate("phone", "13800138000")  # dropped: sensitive key
        t.annotate("note", "for 13800138000")  # value masked
        with t.span("inner"):
            pass
    outer = rec.done[-1]
    assert outer.name == "film.issue_link"
    assert outer.annotations == {"app_id": "his-1", "count": 3, "study_uid": "1.2.3", "note": "for [redacted]"}
    assert [s.name for s in rec.done] == ["inner", "film.issue_link"]
    t.annotate("outside", 1)  # no current subsegment: ignored, not an error


def test_xray_records_exceptions() -> None:
    rec = FakeRecorder()
    t = XRayTracer(recorder=rec)
    with pytest.raises(ValueError), t.span("failing"):
        raise ValueError("x")
    assert isinstance(rec.done[0].exceptions[0], ValueError)


def test_xray_with_the_real_sdk_outside_lambda(fresh: pytest.MonkeyPatch) -> None:
    """No segment exists outside Lambda: spans must be harmless (context_missing=LOG_ERROR)."""
    # patch_modules=() so botocore is not instrumented for the rest of the test session
    fresh.setitem(tracing._FACTORIES, "xray", lambda: XRayTracer(patch_modules=()))
    fresh.setenv("BIANJIE_TRACING", "xray")
    t = tracer()
    assert isinstance(t, XRayTracer)
    with t.span("local") as span:
        span.annotate("k", "v")
    t.annotate("k", "v")


def test_pluggable_backend(fresh: pytest.MonkeyPatch) -> None:
    class Custom(NoopTracer):
        name = "custom"

    register_tracer("custom", Custom)
    try:
        fresh.setenv("BIANJIE_TRACING", "custom")
        assert isinstance(tracer(), Custom)
    finally:
        tracing._FACTORIES.pop("custom", None)


def test_unknown_backend_falls_back_to_noop(fresh: pytest.MonkeyPatch) -> None:
    fresh.setenv("BIANJIE_TRACING", "zipkin-someday")
    assert isinstance(tracer(), NoopTracer)


def test_clean_annotation() -> None:
    assert clean_annotation("token", "x") is None
    assert clean_annotation("a.b-c", True) == ("a_b_c", True)
    assert clean_annotation("obj", {"a": 1}) == ("obj", "{'a': 1}")
    _key, value = clean_annotation("long", "x" * 1000)  # type: ignore[misc]
    assert len(value) == 250


def test_otel_spans_annotations_and_exceptions() -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import StatusCode

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exported))
    t = OtelTracer(provider)
    with t.span("film.issue_link", app_id="his-1", patient_name="张三", count=3) as span:
        span.annotate("id_number", "310101199001011234")  # sensitive key: dropped
        span.annotate("note", "call 13800138000")  # phone-shaped text: masked
        with t.span("inner"):
            t.annotate("step", "inner-step")  # annotates the current (inner) span
    with pytest.raises(ValueError), t.span("boom"):
        raise ValueError("bad")
    spans = {s.name: s for s in exported.get_finished_spans()}
    outer = spans["film.issue_link"]
    assert dict(outer.attributes) == {"app_id": "his-1", "count": 3, "note": "call [redacted]"}
    assert spans["inner"].parent.span_id == outer.context.span_id
    assert dict(spans["inner"].attributes) == {"step": "inner-step"}
    assert spans["boom"].status.status_code == StatusCode.ERROR
    assert [e.name for e in spans["boom"].events] == ["exception"]


def test_otel_without_a_configured_provider_is_harmless(fresh: pytest.MonkeyPatch) -> None:
    fresh.setenv("BIANJIE_TRACING", "otel")
    t = tracer()
    assert isinstance(t, OtelTracer)
    with t.span("local") as span:
        span.annotate("k", "v")
    t.annotate("k", "v")
