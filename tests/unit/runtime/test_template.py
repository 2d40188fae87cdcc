"""template.yaml loading: short-form tags, Globals merging, events, nested applications, Conditions, and
intrinsic resolution."""

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
        "GreetFunction",
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


def test_nested_application_joins_the_namespace_with_its_own_globals() -> None:
    t = load_template(FIXTURES / "stack" / "template.yaml")
    assert [s.name for s in t.stacks] == ["root", "GreetApp"]
    greet = t.function("GreetFunction")
    assert greet.stack == "GreetApp" and t.function("EchoFunction").stack is None
    assert greet.code_uri == (FIXTURES / "stack" / "functions" / "greet").resolve()
    assert greet.timeout == 7  # its own stack's Globals, not the root's 5
    assert "UPLOADS_BUCKET" not in greet.environment  # the root's Globals do not reach a nested stack
    # the nested stack's parameters are bound to what the root passes, in the root's terms
    assert greet.environment["PROBE_TABLE"] == {"Ref": "ProbeTable"}
    assert greet.environment["GREETING"] == {
        "Fn::Sub": ["${Greeting} from ${Stage}", {"Greeting": "ni hao", "Stage": {"Ref": "Stage"}}]
    }
    statement = greet.properties["Policies"][-1]["Statement"][0]
    assert statement["Resource"] == {"Fn::GetAtt": ["ProbeTable", "Arn"]}
    nested = t.stack("GreetApp")
    assert nested.parameters == {"Stage": "local", "Greeting": "ni hao"}  # what is known before deploying
    assert nested.bindings["ProbeTableArn"] == {"Fn::GetAtt": ["ProbeTable", "Arn"]}
    assert "GreetLocalQueue" in nested.resource_ids and "GreetLocalQueue" in t.resources


def test_nested_environment_resolves_against_one_deployment() -> None:
    t = load_template(FIXTURES / "stack" / "template.yaml")
    greet = t.function("GreetFunction")
    r = Resolver({"Stage": "local", "ProbeTable": "stack-ProbeTable", "GreetLocalQueue": "http://q"}, {})
    env = {k: r.resolve(v) for k, v in greet.environment.items()}
    assert env == {
        "PROBE_TABLE": "stack-ProbeTable",
        "GREETING": "ni hao from local",
        "GREET_QUEUE": "http://q",
        "GREET_MODE": "standin",
    }


def test_conditions_leave_out_resources_and_pick_branches_for_the_parameters() -> None:
    t = load_template(FIXTURES / "stack" / "template.yaml", {"Stage": "prod"})
    assert t.parameters["Stage"] == "prod" and t.parameter_defaults()["Stage"] == "prod"
    assert "GreetLocalQueue" not in t.resources
    greet = t.function("GreetFunction")
    assert "GREET_QUEUE" not in greet.environment
    assert greet.environment["GREET_MODE"] == "real"
    # the If-guarded policy is gone, the others stay in order
    assert [next(iter(p)) for p in greet.properties["Policies"]] == ["DynamoDBCrudPolicy", "Statement"]


def test_unknown_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="Stagee"):
        load_template(FIXTURES / "stack" / "template.yaml", {"Stagee": "prod"})


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_logical_ids_must_be_unique_across_stacks(tmp_path: Path) -> None:
    _write(tmp_path / "svc" / "template.yaml", "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n")
    root = _write(
        tmp_path / "template.yaml",
        "Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n"
        "  SvcApp:\n    Type: AWS::Serverless::Application\n    Properties: { Location: svc/template.yaml }\n",
    )
    with pytest.raises(ValueError, match="logical id Queue"):
        load_template(root)


def test_nested_parameters_must_be_passed_or_defaulted(tmp_path: Path) -> None:
    _write(tmp_path / "svc" / "template.yaml", "Parameters:\n  Table: { Type: String }\nResources: {}\n")
    app = "  SvcApp:\n    Type: AWS::Serverless::Application\n    Properties:\n      Location: svc/template.yaml\n"
    missing = _write(tmp_path / "missing.yaml", "Resources:\n" + app)
    with pytest.raises(ValueError, match="does not pass parameter Table"):
        load_template(missing)
    extra = _write(tmp_path / "extra.yaml", "Resources:\n" + app + "      Parameters: { Table: t, Other: o }\n")
    with pytest.raises(ValueError, match="Other"):
        load_template(extra)


def test_project_stacks_and_stage_only_resources() -> None:
    local = load_template(ROOT / "template.yaml")
    # the root, then one nested application per service folder with a template (in the root's order)
    names = [s.name for s in local.stacks]
    folders = {p.parent.name for p in (ROOT / "functions").glob("*/template.yaml")}
    assert names[0] == "root" and len(names) == len(set(names)) == len(folders) + 1
    assert {n.removesuffix("App").lower() for n in names[1:]} == folders
    assert names[1:5] == ["FilmApp", "RxApp", "PayApp", "GuideApp"]
    assert local.function("FilmIngestFunction").stack == "FilmApp"
    assert local.function("FilmIngestFunction").layers == [{"Ref": "ImagingLayer"}]
    standins = {"PayStandinTable", "PayStandinNotifyDLQ", "PayStandinNotifyQueue", "PayStandinNotifierFunction"}
    assert standins <= set(local.resources)
    prod = load_template(ROOT / "template.yaml", {"Stage": "prod"})
    assert not standins & set(prod.resources)
    assert "PayStandinNotifierFunction" not in {f.logical_id for f in prod.functions}
    for fn in prod.functions:
        assert not {"PAY_STANDIN_TABLE", "PAY_STANDIN_NOTIFY_QUEUE"} & set(fn.environment), fn.logical_id
