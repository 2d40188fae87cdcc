"""template.yaml loading: short-form tags, Globals merging, events, and intrinsic resolution."""

from __future__ import annotations

from pathlib import Path

import pytest
from bianjie.runtime.template import (
    ApiEvent,
    ResolutionError,
    Resolver,
    S3Event,
    ScheduleEvent,
    SqsEvent,
    load_template,
)

from tests.conftest import FIXTURES, ROOT


def test_fixture_template_functions_and_events() -> None:
    t = load_template(FIXTURES / "stack" / "template.yaml")
    names = {f.logical_id for f in t.functions}
    assert names == {
        "EchoFunction",
        "UploadsFunction",
        "DirectS3Function",
        "JobsFunction",
        "TickFunction",
        "EventsFunction",
    }
    echo = t.function("EchoFunction")
    assert echo.timeout == 5 and echo.runtime == "python3.11"  # from Globals
    assert ApiEvent("Echo", "/echo/{name}", "POST") in echo.events
    assert echo.environment["PROBE_TABLE"] == {"Ref": "ProbeTable"}
    uploads = t.function("UploadsFunction").events[0]
    assert isinstance(uploads, SqsEvent)
    assert uploads.batch_size == 5 and uploads.report_batch_item_failures
    assert uploads.queue == {"Fn::GetAtt": ["UploadsQueue", "Arn"]}
    direct = t.function("DirectS3Function").events[0]
    assert isinstance(direct, S3Event) and direct.suffix == ".dcm" and direct.events == ("s3:ObjectCreated:*",)
    ticks = {e.name: e for e in t.function("TickFunction").events}
    assert isinstance(ticks["EveryMinute"], ScheduleEvent) and ticks["EveryMinute"].expression == "rate(1 minute)"
    assert ticks["WithInput"].input == '{"kind": "nightly"}'


def test_globals_merge_environment_and_override(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text(
        """
Globals:
  Function:
    Timeout: 9
    Environment: { Variables: { A: "1", B: "2" } }
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.app
      Timeout: 30
      Environment: { Variables: { B: "3" } }
""",
        encoding="utf-8",
    )
    fn = load_template(tmp_path / "template.yaml").function("F")
    assert fn.timeout == 30
    assert fn.environment == {"A": "1", "B": "3"}


def test_resolver_ref_getatt_sub_join() -> None:
    r = Resolver({"Table": "t-1", "AWS::Region": "cn-north-1", "Stage": "dev"}, {("Queue", "Arn"): "arn:q"})
    assert r.resolve({"Ref": "Table"}) == "t-1"
    assert r.resolve({"Fn::GetAtt": ["Queue", "Arn"]}) == "arn:q"
    assert (
        r.resolve({"Fn::Sub": "${Table}/${Queue.Arn}/${AWS::Region}/${!Literal}"}) == "t-1/arn:q/cn-north-1/${Literal}"
    )
    assert r.resolve({"Fn::Sub": ["${X}-${Stage}", {"X": {"Ref": "Table"}}]}) == "t-1-dev"
    assert r.resolve({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}) == "a-dev"
    assert r.resolve({"nested": [{"Ref": "Table"}]}) == {"nested": ["t-1"]}
    with pytest.raises(ResolutionError, match="Missing"):
        r.resolve({"Ref": "Missing"})
    with pytest.raises(ResolutionError, match=r"Queue\.Url"):
        r.resolve({"Fn::GetAtt": ["Queue", "Url"]})


def test_project_template_loads() -> None:
    t = load_template(ROOT / "template.yaml")
    assert t.function("HealthFunction").api_events() == [ApiEvent("Health", "/health", "GET")]
