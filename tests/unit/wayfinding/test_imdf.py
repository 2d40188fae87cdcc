"""The IMDF importer: valid archives round-trip feature for feature; malformed ones are refused whole,
with every problem listed."""

from __future__ import annotations

import base64
import copy
import io
import json
import zipfile
from typing import Any

import pytest
from bianjie.wayfinding import api, imdf
from bianjie_dev.wayfinding.venues import demo_hospital, generated_campus, to_zip

from tests.unit.wayfinding.conftest import ADMIN, encoded, make_service


def problems_of(archive: dict[str, Any]) -> list[dict[str, str]]:
    with pytest.raises(imdf.ArchiveRefused) as refused:
        imdf.read_archive(imdf.unzip(to_zip(archive)))
    assert refused.value.code == "ARCHIVE_INVALID" and refused.value.status == 422
    return list(refused.value.details)


def feature(archive: dict[str, Any], file: str, index: int = 0) -> dict[str, Any]:
    return archive[file]["features"][index]


def test_export_after_import_gives_the_same_features() -> None:
    original = demo_hospital()
    archive = imdf.read_archive(imdf.unzip(to_zip(original)))
    again = imdf.read_archive(imdf.unzip(imdf.write_archive(archive)))
    assert again.manifest == original["manifest"]
    for name, collection in original.items():
        if name != "manifest":
            assert again.features(name) == collection["features"], name


def test_the_service_exports_what_it_imported() -> None:
    _db, objects, service = make_service()
    original = generated_campus(2, 4, seed="roundtrip")
    answer = service.import_archive(ADMIN, encoded(original))
    exported = service.export_archive(ADMIN, answer.venue_id, answer.version)
    body = objects.get("bucket", f"venues/{answer.venue_id}/v{answer.version}/archive.zip")
    assert exported.url.startswith("memory://")
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        for name, collection in original.items():
            filename = "manifest.json" if name == "manifest" else f"{name}.geojson"
            content = json.loads(zf.read(filename))
            assert (content if name == "manifest" else content["features"]) == (
                collection if name == "manifest" else collection["features"]
            )


def test_a_dangling_reference_is_refused_with_its_feature() -> None:
    archive = demo_hospital()
    unit = feature(archive, "unit", 3)
    unit["properties"]["level_id"] = "no-such-level"
    problems = problems_of(archive)
    assert {
        "file": "unit.geojson",
        "feature_id": unit["id"],
        "problem": "level_id 'no-such-level' is not a level of this archive",
    } in problems


def test_every_problem_is_listed_and_nothing_is_stored() -> None:
    db, objects, service = make_service()
    archive = demo_hospital()
    feature(archive, "occupant", 0)["properties"]["anchor_id"] = "missing-anchor"
    feature(archive, "opening", 0)["geometry"] = {"type": "Point", "coordinates": [121.5, 31.2]}
    feature(archive, "relationship", 0)["properties"]["destination"] = {"id": "ghost", "feature_type": "unit"}
    with pytest.raises(imdf.ArchiveRefused) as refused:
        service.import_archive(ADMIN, encoded(archive))
    text = json.dumps(refused.value.details, ensure_ascii=False)
    assert "missing-anchor" in text and "LineString" in text
    assert list(objects.list("bucket")) == []
    assert db.get("wayfinding", {"pk": f"VENUE#{archive['venue']['features'][0]['id']}", "sk": "META"}) is None


def test_the_relationship_problem_is_found_once_references_are_sound() -> None:
    archive = demo_hospital()
    rel = feature(archive, "relationship", 0)
    rel["properties"]["destination"] = {"id": "ghost", "feature_type": "unit"}
    assert any(p["feature_id"] == rel["id"] and "ghost" in p["problem"] for p in problems_of(archive))


def test_invalid_polygon_is_refused() -> None:
    archive = demo_hospital()
    unit = feature(archive, "unit", 5)
    ring = unit["geometry"]["coordinates"][0]
    ring[1], ring[2] = ring[2], ring[1]  # a bow tie
    problems = problems_of(archive)
    assert any(p["feature_id"] == unit["id"] and p["problem"].startswith("invalid geometry") for p in problems)


def test_unit_outside_its_level_is_refused() -> None:
    archive = demo_hospital()
    unit = feature(archive, "unit", 5)
    unit["geometry"]["coordinates"][0] = [[c[0] + 0.01, c[1]] for c in unit["geometry"]["coordinates"][0]]
    assert any(p["feature_id"] == unit["id"] and p["problem"] == "lies outside its level" for p in problems_of(archive))


def test_duplicate_ordinal_in_a_building_is_refused() -> None:
    archive = demo_hospital()
    levels = [f for f in archive["level"]["features"] if f["properties"]["building_ids"]]
    levels[1]["properties"]["ordinal"] = levels[0]["properties"]["ordinal"]
    assert any("ordinal" in p["problem"] and "is also level" in p["problem"] for p in problems_of(archive))


def test_duplicate_ids_and_two_venues_are_refused() -> None:
    archive = demo_hospital()
    twin = copy.deepcopy(feature(archive, "venue"))
    archive["venue"]["features"].append(twin)
    problems = problems_of(archive)
    assert any("id also used" in p["problem"] for p in problems)
    assert any("exactly one venue" in p["problem"] for p in problems)


def test_vertical_relationship_on_one_level_is_refused() -> None:
    archive = demo_hospital()
    stairs = next(f for f in archive["relationship"]["features"] if f["properties"]["category"] == "stairs")
    stairs["properties"]["destination"] = stairs["properties"]["origin"]
    assert any(p["feature_id"] == stairs["id"] and "different levels" in p["problem"] for p in problems_of(archive))


@pytest.mark.parametrize(
    "files, problem",
    [
        ({"venue.geojson": b"{}"}, "manifest.json"),
        ({"manifest.json": b"[1]", "venue.geojson": b"{}"}, "not a JSON object"),
        ({"manifest.json": json.dumps({"version": "2.0", "language": "zh"}).encode()}, "not IMDF 1.x"),
        ({"manifest.json": b'{"version": "1.0.0", "language": "zh-Hans"}', "venue.geojson": b"not json"}, "not JSON"),
        (
            {"manifest.json": b'{"version": "1.0.0", "language": "zh-Hans"}', "venue.geojson": b'{"type": "Feature"}'},
            "FeatureCollection",
        ),
        (
            {"manifest.json": b'{"version": "1.0.0", "language": "zh-Hans"}', "rooms.geojson": b"{}"},
            "not an IMDF 1.0 file name",
        ),
    ],
)
def test_malformed_files(files: dict[str, bytes], problem: str) -> None:
    with pytest.raises(imdf.ArchiveRefused) as refused:
        imdf.read_archive(files)
    assert any(problem in p["problem"] or problem in p["file"] for p in refused.value.details)


def test_not_a_zip_and_too_large_are_refused() -> None:
    with pytest.raises(imdf.ArchiveRefused, match="问题") as refused:
        imdf.unzip(b"PK-not-really")
    assert refused.value.details[0]["problem"] == "not a zip archive"
    with pytest.raises(imdf.ArchiveRefused) as refused:
        imdf.unzip(b"0" * (imdf.MAX_ZIP_BYTES + 1))
    assert "at most" in refused.value.details[0]["problem"]


def test_a_zip_bomb_is_refused_before_it_is_read() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("unit.geojson", b" " * (imdf.MAX_UNZIPPED_BYTES + 1))
    with pytest.raises(imdf.ArchiveRefused) as refused:
        imdf.unzip(buffer.getvalue())
    assert "unpacks to" in refused.value.details[0]["problem"]


def test_bad_base64_is_a_validation_error() -> None:
    _, _, service = make_service()
    with pytest.raises(Exception) as refused:
        service.import_archive(ADMIN, api.ImportRequest(archive_base64="%%%%"))
    assert getattr(refused.value, "code", None) == "ARCHIVE_NOT_BASE64"


def test_another_hospital_cannot_import_over_a_venue() -> None:
    from tests.unit.wayfinding.conftest import OTHER_ADMIN

    _, _, service = make_service()
    archive = demo_hospital()
    service.import_archive(ADMIN, encoded(archive))
    with pytest.raises(Exception) as refused:
        service.import_archive(OTHER_ADMIN, encoded(archive))
    assert getattr(refused.value, "code", None) == "VENUE_OF_OTHER_HOSPITAL"


def test_versions_count_up() -> None:
    _, _, service = make_service()
    archive = demo_hospital()
    first = service.import_archive(ADMIN, encoded(archive))
    second = service.import_archive(ADMIN, api.ImportRequest(archive_base64=base64.b64encode(to_zip(archive)).decode()))
    assert (first.version, second.version) == (1, 2)
