"""Routes on the demo hospital: profiles, the skybridge, the plaza, employees-only rooms, refusals."""

from __future__ import annotations

import pytest
from bianjie.kit.errors import AppError
from bianjie.wayfinding import api

from tests.unit.wayfinding.conftest import ADMIN, Rig

ULTRASOUND = "超声科（B超室）"


def categories(answer: api.RouteAnswer) -> list[str]:
    return [c.category for c in answer.level_changes]


def texts(answer: api.RouteAnswer) -> list[str]:
    return [s.text for s in answer.steps]


def test_accessible_route_from_the_main_entrance_takes_an_elevator_with_chinese_steps(rig: Rig) -> None:
    answer = rig.route(rig.feature("opening", "正门"), rig.feature("occupant", ULTRASOUND), "accessible")
    assert "elevator" in categories(answer)
    assert not {"stairs", "escalator"} & set(categories(answer))
    assert "乘东侧电梯到2楼" in texts(answer)
    assert texts(answer)[-1] == f"到达{ULTRASOUND}"
    assert any(t.startswith("进入医技楼") for t in texts(answer))
    assert all(s.text for s in answer.steps) and [s.index for s in answer.steps] == list(range(len(answer.steps)))
    assert answer.eta_s > answer.length_m / 1.2
    # the path starts at the gate on the outdoor level and ends on 医技楼 2F
    assert answer.path[0].level_id == answer.origin.level_id
    assert answer.path[-1].level_id == answer.destination.level_id


def test_stairs_first_takes_the_stairs_and_elevator_first_the_elevator(rig: Rig) -> None:
    gate, target = rig.feature("opening", "正门"), rig.feature("occupant", "心内科")
    stairs = rig.route(gate, target, "stairs_first")
    assert "elevator" not in categories(stairs)
    assert {"stairs", "escalator"} & set(categories(stairs))
    lift = rig.route(gate, target, "elevator_first")
    assert categories(lift).count("elevator") == 1 and "stairs" not in categories(lift)
    assert sum(s.kind == "elevator" for s in lift.steps) == 1  # one step per ride


def test_skybridge_step_and_traversal_level_change(rig: Rig) -> None:
    # 门诊楼 3F (眼科) to 医技楼 3F (磁共振): across the 3F skybridge, no level change by connector
    answer = rig.route(rig.feature("occupant", "眼科"), rig.feature("occupant", "磁共振室（MRI）"), "accessible")
    assert categories(answer) == ["traversal"]
    assert answer.level_changes[0].relationship_id is not None
    assert "经3F连廊前往医技楼" in texts(answer)
    assert len(answer.path) == 2  # 门诊楼 3F then 医技楼 3F


def test_multi_floor_stairs_are_one_step(rig: Rig) -> None:
    answer = rig.route(rig.feature("occupant", "中药房"), rig.feature("occupant", "皮肤科"), "stairs_first")
    stair_steps = [s for s in answer.steps if s.kind == "stairs"]
    assert len(stair_steps) == 1 and stair_steps[0].text == "走西侧楼梯上到5楼"
    assert categories(answer).count("stairs") == 5  # B1 -> 5F: five flights, each a level change


def test_employees_only_units_are_never_passed_through(rig: Rig) -> None:
    closed = {u["id"] for u in rig.archive["unit"]["features"] if u["properties"]["restriction"] == "employeesonly"}
    for target in ("检验科（抽血）", "放射科（CT/DR）", "心电图室"):
        for profile in ("elevator_first", "stairs_first", "accessible"):
            answer = rig.route(rig.feature("opening", "正门"), rig.feature("occupant", target), profile)
            assert not closed & set(answer.units)


def test_nearest_toilet_is_by_walking_distance(rig: Rig) -> None:
    answer = rig.route(rig.feature("occupant", "磁共振室（MRI）"), "nearest:toilet", "accessible")
    assert answer.destination.name == "卫生间"
    # 医技楼 3F has no toilet: the nearest is across the bridge on 门诊楼 3F, not straight down in 医技楼 1F
    lengths = []
    for toilet in [a for a in rig.archive["amenity"]["features"] if a["properties"]["category"] == "restroom"]:
        other = rig.route(rig.feature("occupant", "磁共振室（MRI）"), toilet["id"], "accessible")
        lengths.append(other.length_m + other.vertical_s * 0.8)
    assert answer.length_m + answer.vertical_s * 0.8 == pytest.approx(min(lengths), abs=0.2)


def test_point_endpoint(rig: Rig) -> None:
    gate = rig.route(rig.feature("opening", "正门"), rig.feature("occupant", "心内科"))
    lobby_level = gate.path[0].level_id
    lon, lat = gate.origin.at
    answer = rig.route(f"point:{lobby_level}:{lon + 0.00005},{lat}", rig.feature("occupant", "心内科"))
    assert answer.origin.level_id == lobby_level and answer.steps[-1].text == "到达心内科"


def test_refusals(rig: Rig) -> None:
    target = rig.feature("occupant", "心内科")
    with pytest.raises(AppError) as e:
        rig.route("no-such-place", target)
    assert (e.value.code, e.value.status) == ("UNKNOWN_ENDPOINT", 404)
    with pytest.raises(AppError) as e:
        rig.route("point:nolevel:1,2", target)
    assert e.value.code == "UNKNOWN_ENDPOINT"
    with pytest.raises(AppError) as e:
        rig.route("point:bad", target)
    assert (e.value.code, e.value.status) == ("ENDPOINT_MALFORMED", 422)
    with pytest.raises(AppError) as e:
        rig.route(target, "nearest:spaceport")
    assert e.value.code == "CATEGORY_UNKNOWN"
    rig.service.update_poi(ADMIN, rig.venue_id, target, api.PoiPatch(enabled=False))
    with pytest.raises(AppError) as e:
        rig.route(rig.feature("opening", "正门"), target)
    assert (e.value.code, e.value.status) == ("POI_DISABLED", 422)
    assert "已停用" in e.value.message


def test_no_step_free_route_is_said_so() -> None:
    from bianjie_dev.wayfinding.venues import generated_campus

    from tests.unit.wayfinding.conftest import encoded, make_service

    _, _, service = make_service()
    archive = generated_campus(1, 3, seed="nolift", missing_elevators=frozenset({(0, 1)}))
    a = service.import_archive(ADMIN, encoded(archive))
    service.publish(ADMIN, a.venue_id, a.version)
    level_1 = {f["id"] for f in archive["level"]["features"] if f["properties"]["ordinal"] == 1}
    units_1 = {u["id"] for u in archive["unit"]["features"] if u["properties"]["level_id"] in level_1}
    anchors = {a["id"] for a in archive["anchor"]["features"] if a["properties"]["unit_id"] in units_1}
    target = next(o["id"] for o in archive["occupant"]["features"] if o["properties"]["anchor_id"] in anchors)
    gate = next(
        o["id"] for o in archive["opening"]["features"] if (o["properties"]["name"] or {}).get("zh-Hans") == "正门"
    )
    query = {"venue": a.venue_id, "from": gate, "to": target}
    with pytest.raises(AppError) as e:
        service.route(api.RouteQuery.model_validate({**query, "profile": "accessible"}))
    assert (e.value.code, e.value.status) == ("NO_STEP_FREE_ROUTE", 422)
    assert "无障碍" in e.value.message
    stairs = service.route(api.RouteQuery.model_validate({**query, "profile": "elevator_first"}))
    assert "stairs" in [c.category for c in stairs.level_changes]  # only stairs reach it: taken


def test_unpublished_venue_is_refused() -> None:
    from bianjie_dev.wayfinding.venues import demo_hospital

    from tests.unit.wayfinding.conftest import encoded, make_service

    _, _, service = make_service()
    a = service.import_archive(ADMIN, encoded(demo_hospital()))
    with pytest.raises(AppError) as e:
        service.route(api.RouteQuery.model_validate({"venue": a.venue_id, "from": "x", "to": "y"}))
    assert (e.value.code, e.value.status) == ("VENUE_NOT_PUBLISHED", 409)
