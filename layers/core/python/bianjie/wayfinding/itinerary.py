"""From a path of graph edges to what a person follows: per-level polylines, the units passed, the level
changes and Chinese turn-by-turn steps (语音播报 reads them: 直行20米后左转, 乘东侧电梯到3楼, 经3F连廊前往医技楼,
到达心内科). One step per elevator ride; consecutive flights of one stair are one step."""

from __future__ import annotations

import itertools
import math
from typing import Any

from bianjie.wayfinding.graphbuild import ELEVATOR, ESCALATOR, RAMP, STAIRS
from bianjie.wayfinding.routing import KIND_NAMES, SPEED, VERTICAL_KINDS, Endpoint, Graph

STRAIGHT_DEG = 25.0


def turn_word(angle: float) -> str:
    """Heading change in degrees (counter-clockwise positive, x east, y north) -> the Chinese turn."""
    a = abs(angle)
    if a < STRAIGHT_DEG:
        return ""
    if a > 150:
        return "掉头"
    side = "左" if angle > 0 else "右"
    return f"向{side}前方走" if a < 60 else f"{side}转"


def _heading(a: tuple[float, float], b: tuple[float, float]) -> float:
    return math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))


def _turn(h1: float, h2: float) -> float:
    return (h2 - h1 + 180.0) % 360.0 - 180.0


def legs_of(points: list[tuple[float, float]]) -> list[tuple[float, float, tuple[float, float]]]:
    """The polyline as straight legs: [(length, turn after it in degrees, start point)]."""
    pts = [points[0]]
    for p in points[1:]:
        if math.dist(p, pts[-1]) >= 0.5:
            pts.append(p)
    if len(pts) < 2:
        return []
    legs: list[list[Any]] = []
    for a, b in itertools.pairwise(pts):
        h = _heading(a, b)
        d = math.dist(a, b)
        if legs and abs(_turn(legs[-1][1], h)) < STRAIGHT_DEG:
            legs[-1][0] += d
            continue
        legs.append([d, h, a])
    out = []
    for i, (d, h, start) in enumerate(legs):
        turn = _turn(h, legs[i + 1][1]) if i + 1 < len(legs) else 0.0
        out.append((d, turn, start))
    return out


class Itinerary:
    def __init__(self, graph: Graph, profile: str, source: Endpoint, target: Endpoint, edges: list[Any]) -> None:
        self.g = graph
        self.profile = profile
        self.source, self.target = source, target
        self.edges = edges
        self.connector_of_node = graph.connector_of_node

    def point(self, node: int) -> tuple[float, float]:
        if node == -2:
            return (self.target.x, self.target.y)
        if node == -1:
            return (self.source.x, self.source.y)
        x, y = self.g.nodes[node][:2]
        return (x, y)

    def level_of(self, node: int) -> int:
        if node == -2:
            return self.target.level
        if node == -1:
            return self.source.level
        return int(self.g.nodes[node][2])

    def lonlat(self, p: tuple[float, float]) -> list[float]:
        lon, lat = self.g.proj.lonlat(*p)
        return [round(lon, 7), round(lat, 7)]

    def answer(self) -> dict[str, Any]:
        g = self.g
        path: list[dict[str, Any]] = []
        units: list[str] = []
        changes: list[dict[str, Any]] = []
        steps: list[dict[str, Any]] = []
        length = vertical = 0.0
        leg: list[tuple[float, float]] = [(self.source.x, self.source.y)]
        leg_level = self.source.level
        prefix = ""
        bridge: dict[str, Any] | None = None
        current_unit = self.source.unit
        last_rel = -1
        last_unit = self.source.unit

        def add_path(level: int, p: tuple[float, float]) -> None:
            level_id = g.levels[level]["id"]
            if not path or path[-1]["level_id"] != level_id:
                path.append({"level_id": level_id, "coordinates": []})
            coords = path[-1]["coordinates"]
            ll = self.lonlat(p)
            if not coords or coords[-1] != ll:
                coords.append(ll)

        def step(kind: str, text: str, distance: float, level: int, at: tuple[float, float]) -> None:
            steps.append(
                {
                    "index": len(steps),
                    "kind": kind,
                    "text": text,
                    "distance_m": round(distance, 1),
                    "level_id": g.levels[level]["id"],
                    "at": self.lonlat(at),
                }
            )

        def flush(ending: str = "") -> None:
            nonlocal leg, prefix
            pieces = legs_of(leg)
            for i, (d, turn, start) in enumerate(pieces):
                last = i == len(pieces) - 1
                metres = max(1, round(d))
                word = "" if last else turn_word(turn)
                text = f"{prefix}直行{metres}米" + (f"后{word}" if word else "") + (ending if last else "")
                prefix = ""
                step("walk", text, d, leg_level, start)
            if not pieces and ending.startswith("到") and prefix:
                step("walk", f"{prefix.rstrip('，')}", 0.0, leg_level, leg[-1])
                prefix = ""
            leg = [leg[-1]]

        add_path(self.source.level, (self.source.x, self.source.y))
        i = 0
        while i < len(self.edges):
            a, b, d, _vert, kind, unit, rel, via = self.edges[i]
            if kind in VERTICAL_KINDS and unit == -1:
                ui = self.connector_of_node.get(a, -1)
                name = g.units[ui]["name"] if ui >= 0 else KIND_NAMES[kind]
                flush(f"到{name}")
                start_level = self.level_of(a)
                j = i
                while (
                    j + 1 < len(self.edges)
                    and self.edges[j + 1][4] == kind
                    and self.edges[j + 1][5] == -1
                    and kind != ELEVATOR
                ):
                    j += 1
                for e in self.edges[i : j + 1]:
                    length += e[2]
                    vertical += e[3]
                    changes.append(
                        {
                            "from_level_id": g.levels[self.level_of(e[0])]["id"],
                            "to_level_id": g.levels[self.level_of(e[1])]["id"],
                            "relationship_id": g.rels[e[6]]["id"],
                            "category": g.rels[e[6]]["category"],
                        }
                    )
                end = self.edges[j][1]
                end_level = self.level_of(end)
                floor = g.levels[end_level]["floor"]
                up = g.levels[end_level]["ordinal"] > g.levels[start_level]["ordinal"]
                updown = "上" if up else "下"
                if kind == ELEVATOR:
                    text = f"乘{name}到{floor}"
                elif kind == STAIRS:
                    text = f"走{name}{updown}到{floor}"
                elif kind == ESCALATOR:
                    text = f"乘{name}{updown}到{floor}"
                elif kind == RAMP:
                    text = f"经{name or '坡道'}{updown}到{floor}"
                else:
                    text = f"经{name}到{floor}"
                step(KIND_NAMES[kind], text, sum(e[2] for e in self.edges[i : j + 1]), start_level, self.point(a))
                leg = [self.point(end)]
                leg_level = end_level
                add_path(end_level, self.point(end))
                i = j + 1
                continue
            # a walking edge inside ``unit``
            length += d
            if unit >= 0:
                u = g.units[unit]
                if not units or units[-1] != u["id"]:
                    units.append(u["id"])
                level = u["level"]
                if level != leg_level:
                    via_rel = (
                        rel
                        if rel >= 0
                        else last_rel
                        if last_rel >= 0
                        else g.traversal_of.get((last_unit, a), g.traversal_of.get((unit, a), -1))
                    )
                    changes.append(
                        {
                            "from_level_id": g.levels[leg_level]["id"],
                            "to_level_id": g.levels[level]["id"],
                            "relationship_id": g.rels[via_rel]["id"] if via_rel >= 0 else None,
                            "category": g.rels[via_rel]["category"] if via_rel >= 0 else "traversal",
                        }
                    )
                entering_bridge = u["category"] == "footbridge" and bridge is None
                leaving_bridge = bridge is not None and u["category"] != "footbridge"
                if entering_bridge:
                    flush(f"到{u['name']}")
                    bridge = {"name": u["name"], "start": leg[-1], "level": level, "distance": 0.0}
                if leaving_bridge and bridge is not None:
                    building = g.levels[level]["building_name"] or "对面楼"
                    step(
                        "bridge",
                        f"经{bridge['name']}前往{building}",
                        bridge["distance"],
                        bridge["level"],
                        bridge["start"],
                    )
                    bridge = None
                    leg = [leg[-1]]
                if bridge is None and level != leg_level and not entering_bridge:
                    before = g.levels[leg_level]["building_name"]
                    after = g.levels[level]["building_name"]
                    if after and after != before:
                        flush(f"到{after}入口")
                        prefix = f"进入{after}，"
                    elif before and not after:
                        flush(f"到{before}出口")
                        prefix = f"走出{before}，"
                if bridge is not None:
                    bridge["distance"] += d
                leg_level = level
                current_unit = unit
            last_rel = rel
            last_unit = unit
            pts = ([via] if via else []) + [self.point(b)]
            for p in pts:
                leg.append(p)
                add_path(leg_level, p)
            i += 1
        del current_unit
        if bridge is not None:
            step("bridge", f"经{bridge['name']}", bridge["distance"], bridge["level"], bridge["start"])
            leg = [leg[-1]]
        flush()
        step("arrive", f"到达{self.target.name}", 0.0, self.target.level, (self.target.x, self.target.y))
        speed = SPEED[self.profile]
        return {
            "profile": self.profile,
            "length_m": round(length, 1),
            "vertical_s": round(vertical, 1),
            "eta_s": round(length / speed + vertical),
            "path": path,
            "units": units,
            "level_changes": changes,
            "steps": steps,
        }
