"""Wayfinding through its Chalice app and moto, each route as the function serving it (its own
environment): import, publish, map, route, search, POI management, exports, overlays, operations."""

from __future__ import annotations

import base64
import json
from typing import Any
from urllib.parse import urlencode

import pytest
from bianjie.kit.signing import sign_request
from bianjie_dev.wayfinding.venues import demo_hospital, to_zip
from chalice.test import Client

from tests.functional.conftest import DemoPartner, app_of, token_issuer


def admin(hospital: str = "test-hospital", roles: tuple[str, ...] = ("nav-admin",)) -> dict[str, str]:
    token = token_issuer().issue("N001", "staff", roles=list(roles), hospital=hospital)
    return {"Authorization": "Bearer " + token, "Content-Type": "application/json"}


@pytest.fixture
def client(aws_stack: Any) -> Client:
    with Client(app_of("wayfinding")) as c:
        yield c


def named(archive: dict[str, Any], file: str, name: str) -> str:
    return next(
        f["id"] for f in archive[file]["features"] if (f["properties"].get("name") or {}).get("zh-Hans") == name
    )


@pytest.fixture
def published(client: Client) -> tuple[str, dict[str, Any]]:
    archive = demo_hospital()
    body = json.dumps({"archive_base64": base64.b64encode(to_zip(archive)).decode()})
    imported = client.http.post("/wayfinding/imports", body=body, headers=admin())
    assert imported.status_code == 201, imported.body
    venue = imported.json_body["venue_id"]
    done = client.http.post(f"/wayfinding/venues/{venue}/versions/1/publish", headers=admin())
    assert done.status_code == 200, done.body
    assert done.json_body["pois"] > 30
    return venue, archive


def get(client: Client, path: str, headers: dict[str, str] | None = None, **query: str) -> Any:
    return client.http.get(path + ("?" + urlencode(query) if query else ""), headers=headers or {})


def test_import_publish_route_search(client: Client, published: tuple[str, dict[str, Any]]) -> None:
    venue, archive = published
    venues = get(client, "/wayfinding/venues", hospital="test-hospital")
    assert [v["venue_id"] for v in venues.json_body["venues"]] == [venue]
    drawn = get(client, f"/wayfinding/venues/{venue}/map")
    assert drawn.status_code == 200 and len(drawn.json_body["map"]["levels"]) == 11
    found = get(client, "/wayfinding/search", venue=venue, q="B超")
    hit = found.json_body["hits"][0]["poi"]
    assert hit["name"] == "超声科（B超室）" and hit["category"] == "medtech"
    route = get(
        client,
        "/wayfinding/route",
        venue=venue,
        **{"from": named(archive, "opening", "正门"), "to": hit["id"], "profile": "accessible"},
    )
    assert route.status_code == 200, route.body
    steps = [s["text"] for s in route.json_body["steps"]]
    assert "乘东侧电梯到2楼" in steps and steps[-1] == "到达超声科（B超室）"
    assert {c["category"] for c in route.json_body["level_changes"]} == {"traversal", "elevator"}
    nearest = get(client, "/wayfinding/route", venue=venue, **{"from": hit["id"], "to": "nearest:toilet"})
    assert nearest.json_body["destination"]["name"] == "卫生间"


def test_refusals_carry_codes_and_chinese_messages(client: Client, published: tuple[str, dict[str, Any]]) -> None:
    venue, archive = published
    unknown = get(
        client, "/wayfinding/route", venue=venue, **{"from": "nowhere", "to": named(archive, "occupant", "心内科")}
    )
    assert unknown.status_code == 404 and unknown.json_body["error"]["code"] == "UNKNOWN_ENDPOINT"
    assert "找不到" in unknown.json_body["error"]["message"]
    bad_profile = get(client, "/wayfinding/route", venue=venue, **{"from": "a", "to": "b", "profile": "teleport"})
    assert bad_profile.status_code == 400
    no_venue = get(client, "/wayfinding/search", venue="nope", q="x")
    assert no_venue.status_code == 404 and no_venue.json_body["error"]["code"] == "VENUE_NOT_FOUND"
    anonymous = client.http.post("/wayfinding/imports", body="{}", headers={"Content-Type": "application/json"})
    assert anonymous.status_code == 401
    wrong_role = client.http.get(f"/wayfinding/venues/{venue}/pois", headers=admin(roles=("nurse",)))
    assert wrong_role.status_code == 403
    other = client.http.get(f"/wayfinding/venues/{venue}/pois", headers=admin(hospital="other-hospital"))
    assert other.status_code == 403 and other.json_body["error"]["code"] == "VENUE_OF_OTHER_HOSPITAL"
    broken = demo_hospital()
    broken["unit"]["features"][0]["properties"]["level_id"] = "ghost"
    refused = client.http.post(
        "/wayfinding/imports",
        body=json.dumps({"archive_base64": base64.b64encode(to_zip(broken)).decode()}),
        headers=admin(),
    )
    assert refused.status_code == 422 and refused.json_body["error"]["code"] == "ARCHIVE_INVALID"
    assert refused.json_body["error"]["details"][0]["feature_id"] == broken["unit"]["features"][0]["id"]
    version = client.http.post(f"/wayfinding/venues/{venue}/versions/x1/publish", headers=admin())
    assert version.status_code == 404 and version.json_body["error"]["code"] == "VERSION_NOT_FOUND"


def test_poi_management_and_exports(client: Client, published: tuple[str, dict[str, Any]]) -> None:
    venue, archive = published
    poi = named(archive, "occupant", "超声科（B超室）")
    patch = client.http.patch(
        f"/wayfinding/venues/{venue}/pois/{poi}", body=json.dumps({"enabled": False, "tags": ["医技"]}), headers=admin()
    )
    assert patch.status_code == 200 and patch.json_body["enabled"] is False
    assert [h["poi"]["id"] for h in get(client, "/wayfinding/search", venue=venue, q="B超").json_body["hits"]] == []
    disabled = get(client, "/wayfinding/route", venue=venue, **{"from": named(archive, "opening", "正门"), "to": poi})
    assert disabled.status_code == 422 and disabled.json_body["error"]["code"] == "POI_DISABLED"
    renamed = client.http.post(
        f"/wayfinding/venues/{venue}/tags/rename", body=json.dumps({"from": "医技", "to": "医技检查"}), headers=admin()
    )
    assert renamed.json_body == {"renamed": 1}
    csv_answer = client.http.get(f"/wayfinding/venues/{venue}/pois.csv", headers=admin())
    assert csv_answer.headers["Content-Type"].startswith("text/csv")
    text = csv_answer.body.decode() if isinstance(csv_answer.body, bytes) else csv_answer.body
    assert f"{poi},occupant,超声科（B超室）,medtech,0,医技检查" in text
    geo = client.http.get(f"/wayfinding/venues/{venue}/pois.geojson", headers=admin())
    collection = json.loads(geo.body)
    assert collection["type"] == "FeatureCollection"
    edited = text.replace(f"{poi},occupant,超声科（B超室）,medtech,0", f"{poi},occupant,超声科（B超室）,medtech,1")
    back = client.http.post(
        f"/wayfinding/venues/{venue}/pois/import",
        body=json.dumps({"format": "csv", "content": edited}),
        headers=admin(),
    )
    assert back.status_code == 200, back.body
    assert get(client, "/wayfinding/search", venue=venue, q="B超").json_body["hits"][0]["poi"]["id"] == poi
    export = client.http.get(f"/wayfinding/venues/{venue}/versions/1/archive", headers=admin())
    assert export.status_code == 200 and "archive.zip" in export.json_body["url"]
    missing = client.http.get(f"/wayfinding/venues/{venue}/versions/9/archive", headers=admin())
    assert missing.status_code == 404 and missing.json_body["error"]["code"] == "VERSION_NOT_FOUND"


def test_overlays_from_a_signed_partner_reach_the_operations_view(
    client: Client, partner: DemoPartner, published: tuple[str, dict[str, Any]]
) -> None:
    venue, archive = published
    kiosk = named(archive, "amenity", "自助挂号缴费机")
    body = json.dumps(
        {
            "venue_id": venue,
            "target_id": kiosk,
            "kind": "device_status",
            "status": "broken",
            "observed_at": "2026-12-04T09:00:00+08:00",
        }
    ).encode()
    headers = sign_request(partner.key, "POST", "/wayfinding/overlays", "", body, partner.app_id, partner.serial)
    posted = client.http.post(
        "/wayfinding/overlays", body=body, headers={**headers, "Content-Type": "application/json"}
    )
    assert posted.status_code == 200 and posted.json_body["accepted"] is True, posted.body
    unsigned = client.http.post("/wayfinding/overlays", body=body, headers={"Content-Type": "application/json"})
    assert unsigned.status_code == 401
    view = client.http.get(f"/wayfinding/venues/{venue}/operations", headers=admin(roles=("nav-ops",)))
    assert view.status_code == 200, view.body
    assert [a["status"] for a in view.json_body["alerts"]] == ["broken"]
