"""What the HTTP edge refuses before a view runs, and what it turns into 4xx instead of 500: control
characters in path and query parameters (NUL breaks every store's driver) and paging cursors a listing
did not hand out. Events are built as API Gateway delivers them (decoded path parameters)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bianjie.kit.documents import KeyCond
from bianjie.kit.documents.memory import MemoryDocumentStore
from bianjie.kit.documents.port import TableSpec
from bianjie.kit.web import ServiceApp
from bianjie.runtime.apigw import Route, build_event

SPEC = TableSpec("things", "pk", "sk", {"pk": "S", "sk": "N"}, (), None)
store = MemoryDocumentStore(SPEC)
for i in range(3):
    store.put("things", {"pk": "p", "sk": i})

app = ServiceApp("edges")
reached: list[str] = []


@app.route("/edges/things/{thing_id}")
def get_thing(thing_id: str) -> dict[str, Any]:
    reached.append(thing_id)
    if "\x00" in thing_id:
        raise ValueError("strings must not contain NUL characters")  # what a store driver raises
    return {"thing_id": thing_id}


@app.route("/edges/things")
def list_things() -> dict[str, Any]:
    cursor = (app.current_request.query_params or {}).get("cursor")
    page = store.query("things", KeyCond.of("pk", "p"), limit=2, cursor=cursor)
    return {"items": page.items, "cursor": page.cursor}


def call(resource: str, path: str, params: dict[str, str], query: str = "") -> tuple[int, dict[str, Any]]:
    event = build_event(
        method="GET",
        path=path,
        raw_query=query,
        headers=[("Host", "x")],
        body=b"",
        source_ip="10.0.0.1",
        route=Route.compile("GET", resource, "F"),
        path_params=params,
    )
    answer = app(event, None)
    return answer["statusCode"], json.loads(answer["body"])


@pytest.mark.parametrize("value", ["\x00", "a\x00b", "line\nbreak", "tab\there", "del\x7f"])
def test_a_control_character_in_a_path_parameter_is_a_400_before_the_view_runs(value: str) -> None:
    reached.clear()
    status, body = call("/edges/things/{thing_id}", "/edges/things/x", {"thing_id": value})
    assert status == 400
    assert body["error"]["code"] == "INVALID_PARAMETER"
    assert "thing_id" in body["error"]["message"]
    assert reached == []


def test_a_control_character_in_a_query_parameter_is_a_400() -> None:
    status, body = call("/edges/things", "/edges/things", {}, "cursor=%00")
    assert (status, body["error"]["code"]) == (400, "INVALID_PARAMETER")


def test_ordinary_values_pass() -> None:
    status, body = call("/edges/things/{thing_id}", "/edges/things/中文-1", {"thing_id": "中文-1"})
    assert (status, body) == (200, {"thing_id": "中文-1"})


def test_a_cursor_the_listing_did_not_hand_out_is_a_422_not_a_500() -> None:
    status, first = call("/edges/things", "/edges/things", {})
    assert status == 200 and first["cursor"]
    status, second = call("/edges/things", "/edges/things", {}, f"cursor={first['cursor']}")
    assert (status, [i["sk"] for i in second["items"]]) == (200, [2])
    for bad in ("abc", "W10", "WyJ4Il0"):  # not JSON; []; ["x"] (a string where the key is a number)
        status, body = call("/edges/things", "/edges/things", {}, f"cursor={bad}")
        assert (status, body["error"]["code"]) == (422, "INVALID_CURSOR"), bad


@app.route("/edges/echo", methods=["POST"])
def echo() -> dict[str, Any]:
    from pydantic import BaseModel

    class Body(BaseModel):
        items: list[dict[str, str]]

    return app.body(Body).model_dump()


def post(body: bytes) -> tuple[int, dict[str, Any]]:
    event = build_event(
        method="POST",
        path="/edges/echo",
        raw_query="",
        headers=[("Host", "x"), ("Content-Type", "application/json")],
        body=body,
        source_ip="10.0.0.1",
        route=Route.compile("POST", "/edges/echo", "F"),
        path_params={},
    )
    answer = app(event, None)
    return answer["statusCode"], json.loads(answer["body"])


@pytest.mark.parametrize("body", [b'{"items": [{"med_code": "A\\u0000"}]}', b'{"items": [{"\\u0000": "x"}]}'])
def test_a_nul_anywhere_in_a_body_is_a_400(body: bytes) -> None:
    status, answer = post(body)
    assert (status, answer["error"]["code"]) == (400, "INVALID_CHARACTER")


def test_an_escaped_backslash_before_u0000_is_ordinary_text() -> None:
    status, answer = post(b'{"items": [{"note": "\\\\u0000"}]}')
    assert (status, answer) == (200, {"items": [{"note": "\\u0000"}]})
