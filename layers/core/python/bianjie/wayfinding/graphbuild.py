"""The routing graph, derived once at publish from a validated IMDF archive (docs/wayfinding.md, "Routing").

Nodes are openings (their midpoints) and one centre node per vertical-connector unit (elevator, stairs,
escalator, ramp, moving walkway: the units a vertical relationship joins). Within each unit every pair
of its nodes is joined by a walking edge: a straight line when it stays inside the unit, otherwise
through the unit's representative point. Which units an opening joins comes from the geometry (units of
its level within half a metre of it) plus traversal relationships (a door between levels of one ordinal:
a building entrance from the outdoor level, a skybridge's far door). Vertical relationships add level
changes between their connector nodes: an elevator joins every pair of its stops (one ride), stairs,
escalators and ramps join consecutive features (directed relationships one way only). Units restricted
to employees get no edges, so no route passes through them.

Coordinates are projected to metres on a local plane around the venue (equirectangular; under 0.1% error
across a campus). shapely is used here only: ``bianjie.wayfinding.routing`` reads the result with the
standard library.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from bianjie.wayfinding.imdf import VERTICAL, Archive, label

WALK, ELEVATOR, STAIRS, ESCALATOR, RAMP, STEPS, MOVINGWALKWAY = range(7)
KIND_OF_CATEGORY = {
    "elevator": ELEVATOR,
    "stairs": STAIRS,
    "escalator": ESCALATOR,
    "ramp": RAMP,
    "movingwalkway": MOVINGWALKWAY,
}
CLOSED_RESTRICTIONS = ("employeesonly", "restricted")
GRAPH_FORMAT = 1
# seconds: waiting for and riding an elevator; a flight of stairs; an escalator; per ordinal
ELEVATOR_WAIT_S, ELEVATOR_PER_LEVEL_S, STAIRS_PER_LEVEL_S, ESCALATOR_PER_LEVEL_S = 30.0, 4.0, 15.0, 18.0
CONNECTOR_CATEGORIES = ("elevator", "stairs", "escalator", "ramp", "movingwalkway")


class Projection:
    def __init__(self, lon0: float, lat0: float) -> None:
        self.lon0, self.lat0 = lon0, lat0
        self.kx = 111_320.0 * math.cos(math.radians(lat0))
        self.ky = 110_540.0

    def xy(self, lon: float, lat: float) -> tuple[float, float]:
        return ((lon - self.lon0) * self.kx, (lat - self.lat0) * self.ky)

    def lonlat(self, x: float, y: float) -> tuple[float, float]:
        return (self.lon0 + x / self.kx, self.lat0 + y / self.ky)


def _project(geometry: dict[str, Any], proj: Projection) -> Any:
    import shapely
    from shapely.geometry import shape

    return shapely.transform(shape(geometry), lambda c: (c - [proj.lon0, proj.lat0]) * [proj.kx, proj.ky])


def floor_label(short: str, name: str) -> str:
    """How a step names a floor: 3F -> 3楼, B1 -> 地下1层, otherwise the level's short name."""
    s = short.strip().upper()
    if s.endswith("F") and s[:-1].isdigit():
        return f"{int(s[:-1])}楼"
    if s.startswith("B") and s[1:].isdigit():
        return f"地下{int(s[1:])}层"
    return short or name


def build_graph(archive: Archive) -> dict[str, Any]:
    """The graph as a JSON-ready dict (stored as an object at publish; ``routing.Graph`` loads it)."""
    from shapely.geometry import LineString, Point

    venue = archive.venue()
    dp = venue["properties"].get("display_point") or {}
    if isinstance(dp, dict) and dp.get("type") == "Point":
        lon0, lat0 = dp["coordinates"][:2]
    else:
        c = _shape(venue["geometry"]).centroid
        lon0, lat0 = c.x, c.y
    proj = Projection(float(lon0), float(lat0))
    buildings = {b["id"]: label(b["properties"].get("name"), "") for b in archive.features("building")}
    levels: list[dict[str, Any]] = []
    level_index: dict[str, int] = {}
    for f in sorted(archive.features("level"), key=lambda f: (f["properties"]["ordinal"], f["id"])):
        p = f["properties"]
        building_ids = p.get("building_ids") or []
        name = label(p.get("name"), "")
        short = label(p.get("short_name"), name)
        level_index[f["id"]] = len(levels)
        levels.append(
            {
                "id": f["id"],
                "name": name,
                "short_name": short,
                "floor": floor_label(short, name),
                "ordinal": p["ordinal"],
                "outdoor": bool(p.get("outdoor")),
                "building_id": building_ids[0] if building_ids else None,
                "building_name": buildings.get(building_ids[0], "") if building_ids else "",
            }
        )
    vertical_units: set[str] = set()
    for rel in archive.features("relationship"):
        p = rel["properties"]
        if p.get("category") in VERTICAL:
            for ref in [p["origin"], *(p.get("intermediary") or []), p["destination"]]:
                if ref.get("feature_type") == "unit":
                    vertical_units.add(ref["id"])
    units: list[dict[str, Any]] = []
    unit_index: dict[str, int] = {}
    unit_shapes: list[Any] = []
    by_level: dict[int, list[int]] = {}
    for f in archive.features("unit"):
        p = f["properties"]
        geom = _project(f["geometry"], proj)
        rep = geom.representative_point()
        li = level_index[p["level_id"]]
        ui = len(units)
        unit_index[f["id"]] = ui
        exterior = (geom.geoms[0] if geom.geom_type == "MultiPolygon" else geom).exterior
        units.append(
            {
                "id": f["id"],
                "name": label(p.get("name"), ""),
                "category": p.get("category") or "unspecified",
                "level": li,
                "closed": p.get("restriction") in CLOSED_RESTRICTIONS,
                "rep": [round(rep.x, 2), round(rep.y, 2)],
                "ring": [[round(x, 2), round(y, 2)] for x, y in exterior.coords],
                "connector": f["id"] in vertical_units or p.get("category") in CONNECTOR_CATEGORIES,
            }
        )
        unit_shapes.append(geom)
        by_level.setdefault(li, []).append(ui)

    nodes: list[list[float]] = []
    members: dict[int, list[tuple[int, int]]] = {}  # unit -> [(node, rel index or -1)]
    opening_nodes: dict[str, int] = {}
    openings: list[dict[str, Any]] = []
    for f in archive.features("opening"):
        p = f["properties"]
        li = level_index[p["level_id"]]
        line = _project(f["geometry"], proj)
        mid = line.interpolate(0.5, normalized=True)
        node = len(nodes)
        nodes.append([round(mid.x, 2), round(mid.y, 2), li])
        opening_nodes[f["id"]] = node
        openings.append({"id": f["id"], "name": label(p.get("name"), ""), "node": node})
        for ui in by_level.get(li, []):
            if unit_shapes[ui].distance(line) < 0.5:
                members.setdefault(ui, []).append((node, -1))
    rels: list[dict[str, Any]] = []
    edges: list[list[Any]] = []
    centre: dict[int, int] = {}

    def centre_of(ui: int) -> int:
        if ui not in centre:
            centre[ui] = len(nodes)
            x, y = units[ui]["rep"]
            nodes.append([x, y, units[ui]["level"]])
            members.setdefault(ui, []).append((centre[ui], -1))
        return centre[ui]

    for ui, unit in enumerate(units):
        if unit["connector"]:
            centre_of(ui)
    for rel in archive.features("relationship"):
        p = rel["properties"]
        ri = len(rels)
        rels.append({"id": rel["id"], "category": p["category"]})
        refs = [p["origin"], *(p.get("intermediary") or []), p["destination"]]
        if p["category"] == "traversal":
            ends = [unit_index[r["id"]] for r in (p["origin"], p["destination"]) if r.get("feature_type") == "unit"]
            doors = [opening_nodes[r["id"]] for r in refs if r.get("feature_type") == "opening"]
            for ui in ends:
                have = {n for n, _ in members.get(ui, [])}
                for node in doors:
                    if node not in have:
                        members.setdefault(ui, []).append((node, ri))
            continue
        kind = KIND_OF_CATEGORY[p["category"]]
        stops: list[int] = []
        for r in refs:
            if r.get("feature_type") == "unit":
                if units[unit_index[r["id"]]]["closed"]:
                    stops = []
                    break
                stops.append(centre_of(unit_index[r["id"]]))
            elif r.get("feature_type") == "opening":
                stops.append(opening_nodes[r["id"]])
        pairs = (
            [(a, b) for i, a in enumerate(stops) for b in stops[i + 1 :]]
            if kind == ELEVATOR
            else list(itertools.pairwise(stops))
        )
        directed = p.get("direction") == "directed"
        for a, b in pairs:
            da = levels[int(nodes[a][2])]["ordinal"]
            db = levels[int(nodes[b][2])]["ordinal"]
            floors = max(1, abs(da - db))
            horizontal = math.dist(nodes[a][:2], nodes[b][:2])
            if kind == ELEVATOR:
                length, vertical = 0.0, ELEVATOR_WAIT_S + ELEVATOR_PER_LEVEL_S * floors
            elif kind == STAIRS:
                length, vertical = horizontal, STAIRS_PER_LEVEL_S * floors
            elif kind == ESCALATOR:
                length, vertical = horizontal, ESCALATOR_PER_LEVEL_S * floors
            else:
                length, vertical = max(horizontal, 1.0), 0.0
            edges.append([a, b, round(length, 2), vertical, kind, -1, ri, 1 if directed else 0])

    for ui, unit in enumerate(units):
        if unit["closed"]:
            continue
        kind = STEPS if unit["category"] == "steps" else WALK
        node_list = members.get(ui, [])
        geom = unit_shapes[ui].buffer(0.3)
        for i, (na, ra) in enumerate(node_list):
            for nb, rb in node_list[i + 1 :]:
                pa, pb = nodes[na][:2], nodes[nb][:2]
                via_rel = ra if ra >= 0 else rb
                if geom.contains(LineString([pa, pb])) or math.dist(pa, pb) < 0.01:
                    edges.append([na, nb, round(math.dist(pa, pb), 2), 0.0, kind, ui, via_rel, 0])
                else:
                    via = unit["rep"]
                    if not geom.contains(Point(via)):
                        continue
                    length = math.dist(pa, via) + math.dist(via, pb)
                    edges.append([na, nb, round(length, 2), 0.0, kind, ui, via_rel, 0, via])
    unit_nodes = [[n for n, _ in members.get(ui, [])] for ui in range(len(units))]
    traversals = [[ui, n, r] for ui, pairs in sorted(members.items()) for n, r in pairs if r >= 0]
    endpoints: dict[str, list[Any]] = {}
    anchors = {a["id"]: a for a in archive.features("anchor")}

    def put(fid: str, geometry: dict[str, Any], unit_ids: list[str]) -> None:
        known = [unit_index[u] for u in unit_ids if u in unit_index]
        if not known:
            return
        x, y = proj.xy(*geometry["coordinates"][:2])
        endpoints[fid] = [round(x, 2), round(y, 2), units[known[0]]["level"], known[0]]

    for anc in archive.features("anchor"):
        put(anc["id"], anc["geometry"], [anc["properties"]["unit_id"]])
    for o in archive.features("occupant"):
        anchor = anchors.get(o["properties"]["anchor_id"])
        if anchor:
            put(o["id"], anchor["geometry"], [anchor["properties"]["unit_id"]])
    for am in archive.features("amenity"):
        put(am["id"], am["geometry"], am["properties"].get("unit_ids") or [])
    for k in archive.features("kiosk"):
        anchor = anchors.get(k["properties"].get("anchor_id") or "")
        if anchor:
            put(k["id"], anchor["geometry"], [anchor["properties"]["unit_id"]])
    return {
        "format": GRAPH_FORMAT,
        "venue_id": venue["id"],
        "origin": [proj.lon0, proj.lat0],
        "levels": levels,
        "units": units,
        "nodes": nodes,
        "edges": edges,
        "unit_nodes": unit_nodes,
        "traversals": traversals,
        "rels": rels,
        "openings": openings,
        "endpoints": endpoints,
    }


def _shape(geometry: dict[str, Any]) -> Any:
    from shapely.geometry import shape

    return shape(geometry)
