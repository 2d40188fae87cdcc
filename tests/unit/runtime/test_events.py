"""The runtime's events have the shapes AWS delivers (compared with the fixtures in events/)."""

from __future__ import annotations

import json
from typing import Any

from bianjie.kit.s3events import object_refs
from bianjie.runtime.apigw import Route, build_event, response_parts

from tests.conftest import EVENTS


def load(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def test_gateway_event_has_the_keys_api_gateway_sends() -> None:
    aws = load("apigw-rest-health.json")
    ours = build_event(
        method="GET",
        path="/health",
        raw_query="",
        headers=[("Host", "x")],
        body=b"",
        source_ip="10.0.0.1",
        route=Route.compile("GET", "/health", "F"),
        path_params={},
    )
    assert set(ours) == set(aws)
    assert set(aws["requestContext"]) <= set(ours["requestContext"])
    assert ours["requestContext"]["identity"]["sourceIp"] == "10.0.0.1"


def test_binary_bodies_are_base64_and_text_is_not() -> None:
    route = Route.compile("POST", "/x", "F")
    text = build_event(
        method="POST",
        path="/x",
        raw_query="a=1&a=2&b=",
        headers=[("Content-Type", "application/json")],
        body='{"名":"值"}'.encode(),
        source_ip="1",
        route=route,
        path_params={},
    )
    assert text["body"] == '{"名":"值"}' and not text["isBase64Encoded"]
    assert text["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": [""]}
    assert text["queryStringParameters"] == {"a": "2", "b": ""}
    binary = build_event(
        method="POST",
        path="/x",
        raw_query="",
        headers=[("Content-Type", "application/dicom")],
        body=b"\x00\xff",
        source_ip="1",
        route=route,
        path_params={},
    )
    assert binary["isBase64Encoded"] and binary["body"] == "AP8="


def test_route_matching_and_specificity() -> None:
    var = Route.compile("GET", "/film/links/{key}", "A")
    literal = Route.compile("GET", "/film/links/new", "B")
    assert var.match("/film/links/abc") == {"key": "abc"}
    assert var.match("/film/links/a/b") is None
    assert literal.specificity > var.specificity
    greedy = Route.compile("GET", "/files/{path+}", "C")
    assert greedy.match("/files/a/b.dcm") == {"path": "a/b.dcm"}


def test_response_parts_merges_headers_and_decodes_base64() -> None:
    status, headers, body = response_parts(
        {
            "statusCode": 201,
            "headers": {"A": "1", "B": "2"},
            "multiValueHeaders": {"B": ["3", "4"]},
            "body": "aGk=",
            "isBase64Encoded": True,
        }
    )
    assert status == 201 and body == b"hi"
    assert ("A", "1") in headers and [v for k, v in headers if k == "B"] == ["3", "4"]


def test_s3_notification_keys_are_decoded() -> None:
    body = load("sqs-s3-object-created.json")["Records"][0]["body"]
    (ref,) = object_refs(body)
    assert ref.key == "incoming/study 1/img+1.dcm" and ref.bucket == "bianjie-filmingestbucket"
    assert object_refs({"Service": "Amazon S3", "Event": "s3:TestEvent"}) == []


def test_platform_handler_takes_the_aws_event_directly() -> None:
    """What Lambda does: call app.app(event, context) with API Gateway's event."""
    from bianjie.runtime.invoke import load_module

    from tests.conftest import ROOT

    app = load_module(ROOT / "functions" / "platform" / "app.py").app
    result = app(load("apigw-rest-health.json"), None)
    assert result["statusCode"] == 200 and json.loads(result["body"])["status"] == "ok"


def test_the_gateway_picks_the_resource_before_the_method() -> None:
    from bianjie.runtime.gateway import Gateway

    gateway = Gateway([])
    gateway.routes = sorted(
        [
            Route.compile("GET", "/identity/launch/{hospital}", "Launch"),
            Route.compile("POST", "/identity/launch/redeem", "Redeem"),
        ],
        key=lambda r: r.specificity,
        reverse=True,
    )
    route, _, _ = gateway.match("POST", "/identity/launch/redeem")
    assert route is not None and route.function_id == "Redeem"
    route, params, _ = gateway.match("GET", "/identity/launch/rj")
    assert route is not None and (route.function_id, params) == ("Launch", {"hospital": "rj"})
    # API Gateway chooses the literal resource first: its Allow lists only that resource's methods
    route, _, allowed = gateway.match("OPTIONS", "/identity/launch/redeem")
    assert route is None and allowed == ["POST"]
