"""IMDF 1.0 archives (Apple's Indoor Mapping Data Format): read, validate, write.

An archive is a zip (or a mapping of file name to bytes) holding ``manifest.json`` and one GeoJSON
FeatureCollection per feature type (``venue.geojson``, ``building.geojson``, ...). ``read_archive``
parses and validates it whole: every problem found is collected and the archive is refused with the
list (``ArchiveRefused``), so nothing is half-imported. A valid archive becomes an ``Archive``: the
manifest and, per file, the features exactly as they came (the JSON objects, in order), which is what
``write_archive`` writes back, so export after import gives the same features.

Checked: sizes (compressed, uncompressed, per file, feature count); JSON and GeoJSON shape; ids unique
across the archive; one venue; the geometry type each feature type takes and geometry validity (rings
closed, polygons valid, coordinates longitude/latitude; shapely, imported lazily: only the import
function carries it); every reference (``level_id``, ``building_ids``, ``unit_id``, ``unit_ids``,
``anchor_id``, ``address_id``, relationship ``origin``/``intermediary``/``destination``) names an
existing feature of the right type; levels of a building have distinct ordinals and an indoor level
names its buildings; units and openings lie within their level; vertical relationships join features
on different levels. Category vocabularies are not enforced (hospitals extend them).
"""

from __future__ import annotations

import io
import itertools
import json
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bianjie.kit.errors import AppError

FEATURE_FILES = (
    "venue",
    "address",
    "building",
    "footprint",
    "level",
    "unit",
    "opening",
    "amenity",
    "anchor",
    "occupant",
    "kiosk",
    "relationship",
    "fixture",
    "section",
    "geofence",
    "detail",
)
REQUIRED_FILES = ("venue", "building", "level", "unit")
GEOMETRY: dict[str, tuple[str, ...] | None] = {
    "venue": ("Polygon", "MultiPolygon"),
    "address": None,
    "building": None,
    "footprint": ("Polygon", "MultiPolygon"),
    "level": ("Polygon", "MultiPolygon"),
    "unit": ("Polygon", "MultiPolygon"),
    "opening": ("LineString",),
    "amenity": ("Point",),
    "anchor": ("Point",),
    "occupant": None,
    "kiosk": ("Polygon", "MultiPolygon"),
    "relationship": None,
    "fixture": ("Polygon", "MultiPolygon"),
    "section": ("Polygon", "MultiPolygon"),
    "geofence": ("Polygon", "MultiPolygon"),
    "detail": ("LineString", "MultiLineString"),
}
# property -> feature type it must name (single id; list of ids)
REFERENCES: dict[str, dict[str, str]] = {
    "venue": {"address_id": "address"},
    "building": {"address_id": "address"},
    "footprint": {"building_ids": "building"},
    "level": {"building_ids": "building", "address_id": "address"},
    "unit": {"level_id": "level"},
    "opening": {"level_id": "level"},
    "amenity": {"unit_ids": "unit", "address_id": "address"},
    "anchor": {"unit_id": "unit", "address_id": "address"},
    "occupant": {"anchor_id": "anchor"},
    "kiosk": {"anchor_id": "anchor", "level_id": "level"},
    "fixture": {"level_id": "level", "anchor_id": "anchor"},
    "section": {"level_id": "level", "address_id": "address"},
    "geofence": {"building_ids": "building", "level_ids": "level"},
    "detail": {"level_id": "level"},
}
REQUIRED_REFERENCES = {("unit", "level_id"), ("opening", "level_id"), ("anchor", "unit_id"), ("occupant", "anchor_id")}
VERTICAL = ("elevator", "escalator", "stairs", "ramp", "movingwalkway")
RELATIONSHIP_CATEGORIES = (*VERTICAL, "traversal")

MAX_ZIP_BYTES = 4 * 1024 * 1024
MAX_UNZIPPED_BYTES = 48 * 1024 * 1024
MAX_FEATURES = 50_000
MAX_PROBLEMS = 200


class ArchiveRefused(AppError):
    """The archive is refused whole; ``details`` lists every problem found (file, feature id, problem)."""

    status, code = 422, "ARCHIVE_INVALID"


@dataclass
class Archive:
    manifest: dict[str, Any]
    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def features(self, name: str) -> list[dict[str, Any]]:
        return self.files.get(name, [])

    def by_id(self) -> dict[str, dict[str, Any]]:
        return {f["id"]: f for features in self.files.values() for f in features}

    def venue(self) -> dict[str, Any]:
        return self.files["venue"][0]

    def counts(self) -> dict[str, int]:
        return {name: len(features) for name, features in self.files.items()}

    def to_json(self) -> dict[str, Any]:
        return {"manifest": self.manifest, "files": self.files}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Archive:
        return cls(dict(data["manifest"]), {k: list(v) for k, v in data["files"].items()})


class _Problems:
    def __init__(self) -> None:
        self.items: list[dict[str, str]] = []

    def add(self, file: str, problem: str, feature_id: str | None = None) -> None:
        if len(self.items) < MAX_PROBLEMS:
            self.items.append({"file": file, "feature_id": feature_id or "", "problem": problem})

    def raise_if_any(self) -> None:
        if self.items:
            raise ArchiveRefused(
                f"IMDF 数据包有 {len(self.items)} 处问题，未导入任何内容；请按 details 修正后重新上传",
                details=self.items,
            )


def unzip(data: bytes) -> dict[str, bytes]:
    """The archive's files by name (folders inside the zip are ignored: ``x/venue.geojson`` is venue)."""
    problems = _Problems()
    if len(data) > MAX_ZIP_BYTES:
        problems.add("archive", f"the archive is {len(data)} bytes; at most {MAX_ZIP_BYTES} are accepted")
        problems.raise_if_any()
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
        infos = zf.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        problems.add("archive", "not a zip archive")
        problems.raise_if_any()
        raise AssertionError("unreachable") from None
    total = sum(info.file_size for info in infos)
    if total > MAX_UNZIPPED_BYTES:
        problems.add("archive", f"the archive unpacks to {total} bytes; at most {MAX_UNZIPPED_BYTES} are accepted")
        problems.raise_if_any()
    out: dict[str, bytes] = {}
    for info in infos:
        if info.is_dir():
            continue
        name = info.filename.rsplit("/", 1)[-1]
        if name.startswith(".") or not (name.endswith(".geojson") or name.endswith(".json")):
            continue
        try:
            out[name] = zf.read(info)
        except (zipfile.BadZipFile, ValueError, OSError, RuntimeError):
            problems.add(name, "cannot be read from the zip (corrupt or encrypted)")
    problems.raise_if_any()
    return out


def read_archive(files: Mapping[str, bytes]) -> Archive:
    """Parses and validates; raises ``ArchiveRefused`` with every problem, or returns the archive."""
    problems = _Problems()
    manifest: dict[str, Any] = {}
    raw_manifest = files.get("manifest.json")
    if raw_manifest is None:
        problems.add("manifest.json", "missing: an IMDF archive starts with manifest.json")
    else:
        try:
            manifest = json.loads(raw_manifest)
        except (ValueError, UnicodeDecodeError):
            problems.add("manifest.json", "not JSON")
        if manifest and not isinstance(manifest, dict):
            problems.add("manifest.json", "not a JSON object")
            manifest = {}
        if manifest and not str(manifest.get("version", "")).startswith("1."):
            problems.add("manifest.json", f"version {manifest.get('version')!r} is not IMDF 1.x")
        if manifest and not manifest.get("language"):
            problems.add("manifest.json", "language is required (e.g. zh-Hans)")
    unknown = sorted(n for n in files if n != "manifest.json" and n.removesuffix(".geojson") not in FEATURE_FILES)
    for name in unknown:
        problems.add(name, "not an IMDF 1.0 file name")
    archive = Archive(manifest)
    misshapen: dict[str, str] = {}  # ids of features refused for their shape, still valid as references
    count = 0
    for name in FEATURE_FILES:
        raw = files.get(f"{name}.geojson")
        if raw is None:
            if name in REQUIRED_FILES:
                problems.add(f"{name}.geojson", "missing")
            continue
        try:
            collection = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            problems.add(f"{name}.geojson", "not JSON")
            continue
        if not isinstance(collection, dict) or collection.get("type") != "FeatureCollection":
            problems.add(f"{name}.geojson", "not a GeoJSON FeatureCollection")
            continue
        features = collection.get("features")
        if not isinstance(features, list):
            problems.add(f"{name}.geojson", "features is not a list")
            continue
        count += len(features)
        good = []
        for i, feature in enumerate(features):
            if _feature_shape(name, i, feature, problems):
                good.append(feature)
            elif isinstance(feature, dict) and isinstance(feature.get("id"), str):
                misshapen[feature["id"]] = name
        archive.files[name] = good
    if count > MAX_FEATURES:
        problems.add("archive", f"{count} features; at most {MAX_FEATURES} are accepted")
        problems.raise_if_any()
    _check_ids_and_references(archive, problems, misshapen)
    problems.raise_if_any()
    _check_geometry(archive, problems)
    _check_levels(archive, problems)
    _check_relationships(archive, problems)
    problems.raise_if_any()
    return archive


def _feature_shape(name: str, index: int, feature: Any, problems: _Problems) -> bool:
    file = f"{name}.geojson"
    if not isinstance(feature, dict):
        problems.add(file, f"feature {index} is not an object")
        return False
    fid = feature.get("id")
    if not isinstance(fid, str) or not fid or len(fid) > 64:
        problems.add(file, f"feature {index} has no string id (1-64 characters)")
        return False
    ok = True
    if feature.get("type") != "Feature":
        problems.add(file, 'type is not "Feature"', fid)
        ok = False
    if feature.get("feature_type") != name:
        problems.add(file, f"feature_type {feature.get('feature_type')!r} in {file}", fid)
        ok = False
    if not isinstance(feature.get("properties"), dict):
        problems.add(file, "properties is not an object", fid)
        ok = False
    geometry = feature.get("geometry")
    allowed = GEOMETRY[name]
    if allowed is None:
        if geometry is not None:
            problems.add(file, f"a {name} has no geometry (null)", fid)
            ok = False
    elif not isinstance(geometry, dict) or geometry.get("type") not in allowed:
        got = geometry.get("type") if isinstance(geometry, dict) else geometry
        problems.add(file, f"geometry must be {' or '.join(allowed)}, not {got!r}", fid)
        ok = False
    elif not _coordinates_ok(geometry):
        problems.add(file, "coordinates are not [longitude, latitude] numbers in range", fid)
        ok = False
    return ok


def _coordinates_ok(geometry: dict[str, Any]) -> bool:
    def walk(value: Any, depth: int) -> bool:
        if depth == 0:
            return (
                isinstance(value, list)
                and len(value) in (2, 3)
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
                and -180 <= value[0] <= 180
                and -90 <= value[1] <= 90
            )
        return isinstance(value, list) and len(value) > 0 and all(walk(v, depth - 1) for v in value)

    depth = {"Point": 0, "LineString": 1, "MultiLineString": 2, "Polygon": 2, "MultiPolygon": 3}[geometry["type"]]
    return walk(geometry.get("coordinates"), depth)


def _check_ids_and_references(archive: Archive, problems: _Problems, misshapen: dict[str, str]) -> None:
    types: dict[str, str] = dict(misshapen)
    for name, features in archive.files.items():
        for f in features:
            if f["id"] in types:
                problems.add(f"{name}.geojson", f"id also used by a {types[f['id']]}", f["id"])
            types[f["id"]] = name
    if len(archive.features("venue")) + sum(t == "venue" for t in misshapen.values()) != 1:
        problems.add("venue.geojson", f"exactly one venue per archive, found {len(archive.features('venue'))}")
    for name, refs in REFERENCES.items():
        for f in archive.features(name):
            props = f["properties"]
            for prop, target in refs.items():
                value = props.get(prop)
                if value is None:
                    if (name, prop) in REQUIRED_REFERENCES:
                        problems.add(f"{name}.geojson", f"{prop} is required", f["id"])
                    continue
                ids = value if isinstance(value, list) else [value]
                for ref in ids:
                    if not isinstance(ref, str) or types.get(ref) != target:
                        problems.add(f"{name}.geojson", f"{prop} {ref!r} is not a {target} of this archive", f["id"])


def _check_geometry(archive: Archive, problems: _Problems) -> None:
    from shapely.geometry import shape
    from shapely.validation import explain_validity

    levels = {}
    for f in archive.features("level"):
        geom = shape(f["geometry"])
        if not geom.is_valid:
            problems.add("level.geojson", f"invalid geometry: {explain_validity(geom)}", f["id"])
        levels[f["id"]] = geom.buffer(2e-5)  # ~2 m of tolerance
    for name in ("venue", "footprint", "unit", "kiosk", "fixture", "section", "geofence"):
        for f in archive.features(name):
            geom = shape(f["geometry"])
            if not geom.is_valid:
                problems.add(f"{name}.geojson", f"invalid geometry: {explain_validity(geom)}", f["id"])
                continue
            if geom.area <= 0:
                problems.add(f"{name}.geojson", "geometry has no area", f["id"])
            level = levels.get(f["properties"].get("level_id"))
            if level is not None and geom.is_valid and not level.contains(geom):
                problems.add(f"{name}.geojson", "lies outside its level", f["id"])
    for f in archive.features("opening"):
        geom = shape(f["geometry"])
        if geom.length <= 0:
            problems.add("opening.geojson", "opening has no length", f["id"])
        level = levels.get(f["properties"].get("level_id"))
        if level is not None and not level.contains(geom):
            problems.add("opening.geojson", "lies outside its level", f["id"])


def _check_levels(archive: Archive, problems: _Problems) -> None:
    seen: dict[tuple[str, int], str] = {}
    for f in archive.features("level"):
        props = f["properties"]
        ordinal = props.get("ordinal")
        if not isinstance(ordinal, int) or isinstance(ordinal, bool):
            problems.add("level.geojson", "ordinal must be an integer (0 = ground, -1 = first basement)", f["id"])
            continue
        buildings = props.get("building_ids") or []
        if not props.get("outdoor") and not buildings:
            problems.add("level.geojson", "an indoor level names its building_ids", f["id"])
        if not isinstance(props.get("name"), dict) or not props.get("name"):
            problems.add("level.geojson", 'name is a labels object ({"zh-Hans": "1楼"})', f["id"])
        for building in buildings:
            key = (building, ordinal)
            if key in seen:
                problems.add(
                    "level.geojson", f"ordinal {ordinal} of building {building} is also level {seen[key]}", f["id"]
                )
            seen[key] = f["id"]


def _check_relationships(archive: Archive, problems: _Problems) -> None:
    by_id = archive.by_id()

    def level_of(ref: dict[str, Any]) -> str | None:
        target = by_id.get(ref.get("id", ""))
        if target is None:
            return None
        if target["feature_type"] == "level":
            return str(target["id"])
        value = target["properties"].get("level_id")
        return str(value) if value else None

    for f in archive.features("relationship"):
        props = f["properties"]
        category = props.get("category")
        if category not in RELATIONSHIP_CATEGORIES:
            problems.add(
                "relationship.geojson",
                f"category {category!r} is not one of {', '.join(RELATIONSHIP_CATEGORIES)}",
                f["id"],
            )
            continue
        if props.get("direction") not in ("directed", "undirected"):
            problems.add("relationship.geojson", "direction is directed or undirected", f["id"])
        refs = [props.get("origin"), *(props.get("intermediary") or []), props.get("destination")]
        if props.get("origin") is None or props.get("destination") is None:
            problems.add("relationship.geojson", "origin and destination are required", f["id"])
            continue
        bad = False
        for ref in refs:
            if not isinstance(ref, dict) or ref.get("id") not in by_id:
                problems.add("relationship.geojson", f"joins {ref!r}, which is not a feature of this archive", f["id"])
                bad = True
            elif by_id[ref["id"]]["feature_type"] != ref.get("feature_type"):
                problems.add(
                    "relationship.geojson",
                    f"{ref['id']} is a {by_id[ref['id']]['feature_type']}, not a {ref.get('feature_type')}",
                    f["id"],
                )
                bad = True
            elif ref.get("feature_type") not in ("unit", "opening", "level", "amenity"):
                problems.add("relationship.geojson", f"cannot join a {ref.get('feature_type')}", f["id"])
                bad = True
        if bad:
            continue
        if category in VERTICAL:
            chain = [level_of(r) for r in refs]
            if any(a == b for a, b in itertools.pairwise(chain)):
                problems.add("relationship.geojson", f"a {category} joins features on different levels", f["id"])


def write_archive(archive: Archive) -> bytes:
    """The archive as an IMDF zip: ``manifest.json`` and each stored file as a FeatureCollection."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(archive.manifest, ensure_ascii=False))
        for name in FEATURE_FILES:
            if name in archive.files:
                collection = {"type": "FeatureCollection", "features": archive.files[name]}
                zf.writestr(f"{name}.geojson", json.dumps(collection, ensure_ascii=False))
    return buffer.getvalue()


def label(labels: Any, fallback: str = "") -> str:
    """An IMDF labels object ({"zh-Hans": "心内科", "en": ...}) as one string, Chinese first."""
    if isinstance(labels, dict):
        for lang in ("zh-Hans", "zh", "zh-CN", "zh-Hant"):
            if labels.get(lang):
                return str(labels[lang])
        for value in labels.values():
            if value:
                return str(value)
    return fallback
