"""Search, POI management (enable/disable, tags, aliases, categories, CSV and GeoJSON), overlays and
the operations view."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from bianjie.kit.actor import Actor
from bianjie.kit.errors import AppError
from bianjie.wayfinding import api
from bianjie.wayfinding.search import normalize, pinyin_keys, score

from tests.unit.wayfinding.conftest import ADMIN, OTHER_ADMIN, Rig

PARTNER = Actor.partner("demo-hospital")


def test_search_by_alias_pinyin_initials_and_typo(rig: Rig) -> None:
    assert rig.search("B超")[0] == "超声科（B超室）"
    assert rig.search("chaosheng")[0] == "超声科（B超室）"
    assert rig.search("xnk")[0] == "心内科"
    assert rig.search("心内课")[0] == "心内科"  # one typo
    assert rig.search("xinneikr")[0] == "心内科"  # a typo in pinyin
    assert rig.search("药房")[:2] == ["中药房", "西药房"]
    assert rig.search("zzzzzz") == []


def test_search_by_category(rig: Rig) -> None:
    toilets = rig.search("", category="toilet", limit=50)
    assert toilets and set(toilets) == {"卫生间"}
    assert "自助挂号缴费机" in rig.search("", category="kiosk")


def test_disabling_a_poi_removes_it_from_search_and_enabling_brings_it_back(rig: Rig) -> None:
    poi = rig.feature("occupant", "超声科（B超室）")
    rig.service.update_poi(ADMIN, rig.venue_id, poi, api.PoiPatch(enabled=False))
    assert "超声科（B超室）" not in rig.search("B超")
    listed = {p.id: p for p in rig.service.list_pois(ADMIN, rig.venue_id).pois}
    assert listed[poi].enabled is False  # the admin list still shows it
    rig.service.update_poi(ADMIN, rig.venue_id, poi, api.PoiPatch(enabled=True))
    assert rig.search("B超")[0] == "超声科（B超室）"


def test_aliases_get_pinyin_and_tags_rename(rig: Rig) -> None:
    poi = rig.feature("occupant", "检验科（抽血）")
    updated = rig.service.update_poi(
        ADMIN, rig.venue_id, poi, api.PoiPatch(aliases=["采血处"], tags=["一楼", "检查"], category="medtech")
    )
    assert updated.group == "就医服务" and updated.category_name == "医技检查"
    assert rig.search("caixue")[0] == "检验科（抽血）"
    renamed = rig.service.rename_tag(
        ADMIN, rig.venue_id, api.TagRename.model_validate({"from": "检查", "to": "检验检查"})
    )
    assert renamed.renamed == 1
    listed = {p.id: p for p in rig.service.list_pois(ADMIN, rig.venue_id).pois}
    assert listed[poi].tags == ["一楼", "检验检查"]
    with pytest.raises(AppError) as e:
        rig.service.rename_tag(ADMIN, rig.venue_id, api.TagRename.model_validate({"from": "检查", "to": "x"}))
    assert e.value.code == "TAG_NOT_FOUND"


def test_managed_fields_survive_a_new_published_version(rig: Rig) -> None:
    from tests.unit.wayfinding.conftest import encoded

    poi = rig.feature("occupant", "眼科")
    rig.service.update_poi(ADMIN, rig.venue_id, poi, api.PoiPatch(enabled=False, aliases=["眼睛"]))
    second = rig.service.import_archive(ADMIN, encoded(rig.archive))
    rig.service.publish(ADMIN, rig.venue_id, second.version)
    listed = {p.id: p for p in rig.service.list_pois(ADMIN, rig.venue_id).pois}
    assert listed[poi].enabled is False and listed[poi].aliases == ["眼睛"]


def test_csv_and_geojson_export_import_round_trip(rig: Rig) -> None:
    poi = rig.feature("amenity", "便利店")
    rig.service.update_poi(ADMIN, rig.venue_id, poi, api.PoiPatch(tags=["便民"], aliases=["小卖部"]))
    csv_text = rig.service.export_pois_csv(ADMIN, rig.venue_id)
    assert csv_text.splitlines()[0].startswith("id,kind,name,category,enabled,tags,aliases")
    edited = csv_text.replace(
        f"{poi},amenity,便利店,shop,1,便民,小卖部", f"{poi},amenity,便利店,shop,0,便民|超市,小卖部"
    )
    assert edited != csv_text
    assert rig.service.import_pois(ADMIN, rig.venue_id, api.PoiImport(format="csv", content=edited)).updated > 0
    listed = {p.id: p for p in rig.service.list_pois(ADMIN, rig.venue_id).pois}
    assert listed[poi].enabled is False and listed[poi].tags == ["便民", "超市"]
    collection = rig.service.export_pois_geojson(ADMIN, rig.venue_id)
    feature = next(f for f in collection["features"] if f["id"] == poi)
    assert feature["geometry"]["type"] == "Point" and feature["properties"]["enabled"] is False
    feature["properties"]["enabled"] = True
    rig.service.import_pois(ADMIN, rig.venue_id, api.PoiImport(format="geojson", content=json.dumps(collection)))
    assert {p.id: p for p in rig.service.list_pois(ADMIN, rig.venue_id).pois}[poi].enabled is True


def test_a_bad_poi_import_changes_nothing(rig: Rig) -> None:
    poi = rig.feature("amenity", "便利店")
    content = f"id,enabled,tags,aliases,category\n{poi},0,,,shop\nnot-a-poi,1,,,shop\n{poi},maybe,,,shop\n"
    with pytest.raises(AppError) as e:
        rig.service.import_pois(ADMIN, rig.venue_id, api.PoiImport(format="csv", content=content))
    assert e.value.code == "POI_IMPORT_INVALID" and len(e.value.details) == 2
    assert {p.id: p for p in rig.service.list_pois(ADMIN, rig.venue_id).pois}[poi].enabled is True
    with pytest.raises(AppError) as e:
        rig.service.import_pois(ADMIN, rig.venue_id, api.PoiImport(format="geojson", content="{not json"))
    assert e.value.code == "POI_FILE_INVALID"


def test_other_hospitals_staff_cannot_manage(rig: Rig) -> None:
    for call in (
        lambda: rig.service.list_pois(OTHER_ADMIN, rig.venue_id),
        lambda: rig.service.publish(OTHER_ADMIN, rig.venue_id, 1),
        lambda: rig.service.export_archive(OTHER_ADMIN, rig.venue_id, 1),
        lambda: rig.service.update_poi(OTHER_ADMIN, rig.venue_id, "x", api.PoiPatch(enabled=False)),
    ):
        with pytest.raises(AppError) as e:
            call()
        assert (e.value.code, e.value.status) == ("VENUE_OF_OTHER_HOSPITAL", 403)


def test_overlays_feed_the_operations_view(rig: Rig) -> None:
    kiosk = rig.feature("amenity", "自助挂号缴费机")
    clinic = rig.feature("occupant", "心内科")
    at = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)

    def post(**kw: Any) -> api.OverlayAnswer:
        return rig.service.record_overlay(PARTNER, api.OverlayPost.model_validate({"venue_id": rig.venue_id, **kw}))

    assert post(target_id=kiosk, kind="device_status", status="broken", observed_at=at.isoformat()).accepted
    assert post(target_id=clinic, kind="queue_length", value=12, observed_at=at.isoformat()).accepted
    # an older reading does not overwrite a newer one
    assert not post(target_id=clinic, kind="queue_length", value=3, observed_at="2026-12-04T08:00:00+00:00").accepted
    view = rig.service.operations(ADMIN, rig.venue_id, api.OperationsQuery())
    assert [b.name for b in view.buildings] == ["室外", "门诊楼", "医技楼"] or {b.name for b in view.buildings} == {
        "室外",
        "门诊楼",
        "医技楼",
    }
    rooms = {r.name: r for b in view.buildings for lv in b.levels for r in lv.rooms}
    assert rooms["心内科"].overlays[0]["value"] == 12
    assert [a["status"] for a in view.alerts] == ["broken"]
    with pytest.raises(AppError) as e:
        rig.service.record_overlay(
            Actor.partner("other-hospital"),
            api.OverlayPost.model_validate(
                {
                    "venue_id": rig.venue_id,
                    "target_id": clinic,
                    "kind": "queue_length",
                    "value": 1,
                    "observed_at": at.isoformat(),
                }
            ),
        )
    assert e.value.code == "VENUE_OF_OTHER_HOSPITAL"


def test_venues_listing_and_map(rig: Rig) -> None:
    venues = rig.service.venues("demo-hospital").venues
    assert [(v.venue_id, v.published_version) for v in venues] == [(rig.venue_id, 1)]
    drawn = rig.service.map(rig.venue_id).map
    assert len(drawn["levels"]) == 11 and drawn["levels"][0]["floor"] == "地下1层"
    assert all(len(u["ring"]) >= 4 for lv in drawn["levels"] for u in lv["units"])


def test_scoring_rules() -> None:
    assert normalize("超声科（B超室）") == "超声科b超室"
    assert pinyin_keys("B超") == ["bchao", "bc"]
    assert score("xnk", ["xinneike", "xnk"]) == 100
    assert score("xinn", ["xinneike"]) > score("nei", ["xinneike"]) > 0
    assert score("abc", ["xyz"]) == 0
