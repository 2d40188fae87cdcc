"""Wayfinding on the real local stack (``make run``'s code path, per-function roles enforced): the demo
campus is imported and published by the demo seed; searching "B超" finds the ultrasound room; an
accessible route from the main entrance takes an elevator with Chinese steps; disabling a POI removes it
from search; the partner's overlays reach the operations view."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from bianjie_dev.runtime.child import StackProcess


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(tmp_path_factory.mktemp("wayfinding-stack"), seed=["wayfinding"])
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def demo(stack: StackProcess) -> dict[str, Any]:
    return dict(json.loads((stack.state_dir / "wayfinding" / "demo.json").read_text()))


def call(
    stack: StackProcess, method: str, path: str, body: Any = None, token: str | None = None, **query: str
) -> tuple[int, Any]:
    url = stack.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    raw = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=raw, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_demo_campus_is_published_and_searchable(stack: StackProcess, demo: dict[str, Any]) -> None:
    status, venues = call(stack, "GET", "/wayfinding/venues", hospital="demo-hospital")
    assert status == 200
    assert [(v["venue_id"], v["published_version"]) for v in venues["venues"]] == [(demo["venue_id"], 1)]
    status, found = call(stack, "GET", "/wayfinding/search", venue=demo["venue_id"], q="B超")
    assert status == 200 and found["hits"][0]["poi"]["name"] == "超声科（B超室）"


def test_accessible_route_from_the_main_entrance(stack: StackProcess, demo: dict[str, Any]) -> None:
    _, found = call(stack, "GET", "/wayfinding/search", venue=demo["venue_id"], q="chaosheng")
    target = found["hits"][0]["poi"]["id"]
    status, route = call(
        stack,
        "GET",
        "/wayfinding/route",
        venue=demo["venue_id"],
        profile="accessible",
        to=target,
        **{"from": demo["main_entrance"]},
    )
    assert status == 200, route
    texts = [s["text"] for s in route["steps"]]
    assert "乘东侧电梯到2楼" in texts and texts[-1] == "到达超声科（B超室）"
    assert "elevator" in [c["category"] for c in route["level_changes"]]
    assert not {"stairs", "escalator"} & {c["category"] for c in route["level_changes"]}
    status, drawn = call(stack, "GET", f"/wayfinding/venues/{demo['venue_id']}/map")
    assert status == 200 and {p["level_id"] for p in route["path"]} <= {lv["id"] for lv in drawn["map"]["levels"]}


def test_disabling_a_poi_removes_it_from_search(stack: StackProcess, demo: dict[str, Any]) -> None:
    venue, token = demo["venue_id"], demo["admin_token"]
    _, found = call(stack, "GET", "/wayfinding/search", venue=venue, q="心电图")
    poi = found["hits"][0]["poi"]
    assert poi["name"] == "心电图室"
    status, _ = call(stack, "PATCH", f"/wayfinding/venues/{venue}/pois/{poi['id']}", {"enabled": False}, token)
    assert status == 200
    _, again = call(stack, "GET", "/wayfinding/search", venue=venue, q="心电图")
    assert poi["id"] not in [h["poi"]["id"] for h in again["hits"]]
    status, refused = call(
        stack, "GET", "/wayfinding/route", venue=venue, to=poi["id"], **{"from": demo["main_entrance"]}
    )
    assert status == 422 and refused["error"]["code"] == "POI_DISABLED"
    call(stack, "PATCH", f"/wayfinding/venues/{venue}/pois/{poi['id']}", {"enabled": True}, token)
    _, back = call(stack, "GET", "/wayfinding/search", venue=venue, q="心电图")
    assert back["hits"][0]["poi"]["id"] == poi["id"]


def test_overlays_and_operations_view(stack: StackProcess, demo: dict[str, Any]) -> None:
    status, view = call(stack, "GET", f"/wayfinding/venues/{demo['venue_id']}/operations", token=demo["admin_token"])
    assert status == 200, view
    assert [a["status"] for a in view["alerts"]] == ["broken"]
    rooms = {r["name"]: r for b in view["buildings"] for lv in b["levels"] for r in lv["rooms"]}
    assert rooms["心内科"]["overlays"][0]["value"] == 14
    status, _refused = call(stack, "GET", f"/wayfinding/venues/{demo['venue_id']}/operations")
    assert status == 401


def test_export_url_serves_the_archive(stack: StackProcess, demo: dict[str, Any]) -> None:
    import io
    import zipfile

    status, export = call(
        stack, "GET", f"/wayfinding/venues/{demo['venue_id']}/versions/1/archive", token=demo["admin_token"]
    )
    assert status == 200
    with urllib.request.urlopen(export["url"], timeout=30) as r:
        names = zipfile.ZipFile(io.BytesIO(r.read())).namelist()
    assert "manifest.json" in names and "venue.geojson" in names and "relationship.geojson" in names
