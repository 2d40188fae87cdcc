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


def test_the_gateway_as_wsgi_answers_as_the_asgi_one_does() -> None:
    """``Gateway.wsgi`` (``bianjie serve --server granian``): the same routing, events and error shape as
    the ASGI path, the function called in the server's thread."""
    import asyncio
    import io

    from bianjie.runtime.gateway import Gateway
    from bianjie.runtime.invoke import Function
    from bianjie.runtime.template import load_template

    from tests.conftest import ROOT

    template = load_template(ROOT / "template.yaml")
    health = next(f for f in template.functions if f.logical_id == "HealthFunction")
    gateway = Gateway([Function(health, "cn-north-1", "HealthFunction")], stage="onprem")

    def wsgi(method: str, path: str, body: bytes = b"", **extra: str) -> tuple[str, dict[str, str], bytes]:
        got: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            got.update(status=status, headers=dict(headers))

        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "QUERY_STRING": "",
            "REMOTE_ADDR": "10.1.2.3",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            **extra,
        }
        out = b"".join(gateway.wsgi(environ, start_response))
        return got["status"], got["headers"], out

    status, headers, out = wsgi("GET", "/health")
    assert status == "200 OK" and json.loads(out)["status"] == "ok"
    assert headers["X-Request-Id"]
    status, _, out = wsgi("GET", "/nowhere")
    assert status.startswith("404") and json.loads(out)["error"]["code"] == "ROUTE_NOT_FOUND"
    status, headers, out = wsgi("POST", "/health")
    assert status.startswith("405") and json.loads(out)["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert headers["Allow"] == "GET"
    status, _, out = wsgi("POST", "/health", CONTENT_LENGTH=str(11 * 1024 * 1024))
    assert status.startswith("413") and json.loads(out)["error"]["code"] == "PAYLOAD_TOO_LARGE"

    # the ASGI path gives the same answer for the same request
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "GET", "path": "/health", "headers": [], "client": ("10.1.2.3", 1)}
    asyncio.run(gateway(scope, receive, send))
    assert sent[0]["status"] == 200 and json.loads(sent[1]["body"]) == json.loads(wsgi("GET", "/health")[2])
