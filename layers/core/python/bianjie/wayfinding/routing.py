"""Routes over a published graph (``graphbuild``), with the standard library only.

Profiles are firm preferences, implemented as a lexicographic cost (penalised level changes first,
then walking cost): a path with fewer penalised connectors always wins, so ``elevator_first`` takes
stairs or an escalator only where no elevator path exists, and ``stairs_first`` an elevator only where
no stair (or escalator) path exists. ``accessible`` removes stairs, escalators and steps altogether.
Walking cost is horizontal metres plus the connector's time at walking speed, so a short walk to a
stair beats a long one to an elevator only under ``stairs_first``.

The search is A* with a consistent heuristic in two parts: the straight-line distance to the nearest
target (scaled by the graph's smallest ratio of edge cost to the distance it spans, so it never
overestimates), and one penalty for a node whose penalty-free component (the nodes joined without a
penalised or banned connector) holds no target, since leaving it takes a penalised connector. The second
part is what keeps the tail short: without it a route that needs a stair under ``elevator_first`` first
settles every node reachable without one.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from typing import Any

from bianjie.kit.errors import AppError, NotFound
from bianjie.wayfinding.graphbuild import ELEVATOR, ESCALATOR, MOVINGWALKWAY, RAMP, STAIRS, STEPS, WALK, Projection

PROFILES = ("elevator_first", "stairs_first", "accessible")
PENALISED = {"elevator_first": {STAIRS, ESCALATOR}, "stairs_first": {ELEVATOR}, "accessible": set()}
BANNED = {"elevator_first": set(), "stairs_first": set(), "accessible": {STAIRS, ESCALATOR, STEPS}}
SPEED = {"elevator_first": 1.1, "stairs_first": 1.2, "accessible": 0.8}  # metres per second
PENALTY = 1e7
KIND_NAMES = {
    WALK: "walk",
    ELEVATOR: "elevator",
    STAIRS: "stairs",
    ESCALATOR: "escalator",
    RAMP: "ramp",
    STEPS: "steps",
    MOVINGWALKWAY: "movingwalkway",
}
VERTICAL_KINDS = {ELEVATOR, STAIRS, ESCALATOR, RAMP, MOVINGWALKWAY}


MAX_HEURISTIC_TARGETS = 16


@dataclass(frozen=True)
class _ProfileAids:
    component: list[int] = field(repr=False)  # node -> its penalty-free component's root
    scale: float  # the smallest edge cost per metre spanned: straight-line metres times it never overestimate


class NoRoute(AppError):
    status, code = 422, "NO_ROUTE"


@dataclass(frozen=True)
class Endpoint:
    """Where a route starts or ends: a point on a level inside a unit, or exactly a graph node."""

    x: float
    y: float
    level: int
    unit: int
    name: str
    node: int | None = None
    feature_id: str | None = None


class Graph:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.levels: list[dict[str, Any]] = data["levels"]
        self.units: list[dict[str, Any]] = data["units"]
        self.nodes: list[list[float]] = data["nodes"]
        self.rels: list[dict[str, Any]] = data["rels"]
        self.unit_nodes: list[list[int]] = data["unit_nodes"]
        self.endpoints: dict[str, list[Any]] = data["endpoints"]
        self.openings = {o["id"]: o for o in data["openings"]}
        # (unit, opening node) -> the traversal relationship that joins them (doors between levels)
        self.traversal_of = {(u, n): r for u, n, r in data.get("traversals", [])}
        self.level_by_id = {lv["id"]: i for i, lv in enumerate(self.levels)}
        # a connector unit's centre node -> the unit (steps name the elevator or stair by it)
        self.connector_of_node: dict[int, int] = {}
        for ui, unit in enumerate(self.units):
            if unit["connector"]:
                for n in self.unit_nodes[ui]:
                    if tuple(self.nodes[n][:2]) == tuple(unit["rep"]):
                        self.connector_of_node[n] = ui
        self.units_of_node: dict[int, list[int]] = {}
        for ui, ns in enumerate(self.unit_nodes):
            for n in ns:
                self.units_of_node.setdefault(n, []).append(ui)
        self.proj = Projection(*data["origin"])
        # adjacency: node -> [(to, length, vertical_s, kind, unit, rel, via)]
        self.adj: list[list[tuple[int, float, float, int, int, int, tuple[float, float] | None]]] = [
            [] for _ in self.nodes
        ]
        for e in data["edges"]:
            a, b, length, vertical, kind, unit, rel, directed = e[:8]
            via = (e[8][0], e[8][1]) if len(e) > 8 else None
            self.adj[a].append((b, length, vertical, kind, unit, rel, via))
            if not directed:
                self.adj[b].append((a, length, vertical, kind, unit, rel, via))
        self._profiles: dict[str, _ProfileAids] = {}

    def _aids(self, profile: str) -> _ProfileAids:
        """Per profile, computed once per loaded graph: penalty-free components and the heuristic's scale."""
        aids = self._profiles.get(profile)
        if aids is not None:
            return aids
        penalised, banned, speed = PENALISED[profile], BANNED[profile], SPEED[profile]
        parent = list(range(len(self.nodes)))

        def root(n: int) -> int:
            while parent[n] != n:
                parent[n] = parent[parent[n]]
                n = parent[n]
            return n

        scale = 1.0
        for a, edges in enumerate(self.adj):
            for b, length, vertical, kind, *_ in edges:
                if kind in banned:
                    continue
                span = math.dist(self.nodes[a][:2], self.nodes[b][:2])
                if span > 0:
                    scale = min(scale, (length + vertical * speed) / span)
                if kind not in penalised:
                    ra, rb = root(a), root(b)
                    if ra != rb:
                        parent[ra] = rb
        aids = _ProfileAids([root(n) for n in range(len(self.nodes))], max(scale, 0.0))
        self._profiles[profile] = aids
        return aids

    # -- endpoints ---------------------------------------------------------------------------------

    def endpoint_of_feature(self, feature_id: str, name: str) -> Endpoint | None:
        if feature_id in self.openings:
            node = self.openings[feature_id]["node"]
            x, y, level = self.nodes[node]
            units = [ui for ui in self.units_of_node.get(node, []) if not self.units[ui]["closed"]]
            return Endpoint(x, y, int(level), units[0] if units else -1, name, node=node, feature_id=feature_id)
        e = self.endpoints.get(feature_id)
        if e is None:
            return None
        return Endpoint(e[0], e[1], e[2], e[3], name, feature_id=feature_id)

    def endpoint_at(self, level_id: str, lon: float, lat: float) -> Endpoint | None:
        level = self.level_by_id.get(level_id)
        if level is None:
            return None
        x, y = self.proj.xy(lon, lat)
        for ui, unit in enumerate(self.units):
            if unit["level"] == level and _inside(x, y, unit["ring"]):
                return Endpoint(x, y, level, ui, unit["name"] or "所选位置")
        return None

    # -- search ------------------------------------------------------------------------------------

    def _links(self, ep: Endpoint) -> list[tuple[int, float]]:
        if ep.node is not None:
            return [(ep.node, 0.0)]
        if ep.unit < 0 or self.units[ep.unit]["closed"]:
            return []
        return [(n, math.dist((ep.x, ep.y), self.nodes[n][:2])) for n in self.unit_nodes[ep.unit]]

    def shortest(self, source: Endpoint, targets: list[Endpoint], profile: str) -> tuple[int, list[Any]] | None:
        """(index of the target reached, [edges]) for the cheapest target under ``profile``, or None.
        An edge is (from, to, length, vertical_s, kind, unit, rel, via)."""
        penalised, banned, speed = PENALISED[profile], BANNED[profile], SPEED[profile]
        target_links: dict[int, list[tuple[int, float]]] = {}
        for ti, t in enumerate(targets):
            for node, d in self._links(t):
                target_links.setdefault(node, []).append((ti, d))
        aids = self._aids(profile)
        component, scale, nodes = aids.component, aids.scale, self.nodes
        goal_components = {component[n] for n in target_links}
        # the distance part only for a few targets (a "nearest toilet" query may name dozens)
        points = [(t.x, t.y) for t in targets] if len(targets) <= MAX_HEURISTIC_TARGETS else []
        estimates: dict[int, float] = {}

        def estimate(n: int) -> float:
            h = estimates.get(n)
            if h is None:
                x, y = nodes[n][0], nodes[n][1]
                h = scale * min(math.hypot(x - px, y - py) for px, py in points) if points else 0.0
                if component[n] not in goal_components:
                    h += PENALTY
                estimates[n] = h
            return h

        dist: dict[int, float] = {}
        prev: dict[int, tuple[int, Any]] = {}
        heap: list[tuple[float, int]] = []
        done: set[int] = set()
        best: tuple[float, int, int] | None = None  # cost, target, last node
        for ti, t in enumerate(targets):
            if (
                t.unit == source.unit
                and t.unit >= 0
                and not self.units[t.unit]["closed"]
                and source.node is None
                and t.node is None
            ):
                d = math.dist((source.x, source.y), (t.x, t.y))
                if best is None or d < best[0]:
                    best = (d, ti, -1)
        for node, d in self._links(source):
            if d < dist.get(node, math.inf):
                dist[node] = d
                prev[node] = (-1, (-1, node, d, 0.0, WALK, source.unit, -1, None))
                heapq.heappush(heap, (d + estimate(node), node))
        while heap:
            bound, node = heapq.heappop(heap)
            if node in done:
                continue
            if best is not None and bound >= best[0]:
                break
            done.add(node)
            cost = dist[node]
            for ti, d in target_links.get(node, ()):
                total = cost + d
                if best is None or total < best[0]:
                    best = (total, ti, node)
            for to, length, vertical, kind, unit, rel, via in self.adj[node]:
                if kind in banned or to in done:
                    continue
                c = cost + length + vertical * speed + (PENALTY if kind in penalised else 0.0)
                if c < dist.get(to, math.inf):
                    dist[to] = c
                    prev[to] = (node, (node, to, length, vertical, kind, unit, rel, via))
                    heapq.heappush(heap, (c + estimate(to), to))
        if best is None:
            return None
        _, ti, last = best
        path: list[Any] = []
        if last == -1:
            path.append(
                (
                    -1,
                    -2,
                    math.dist((source.x, source.y), (targets[ti].x, targets[ti].y)),
                    0.0,
                    WALK,
                    source.unit,
                    -1,
                    None,
                )
            )
            return ti, path
        target = targets[ti]
        tail_d = next(d for t, d in target_links[last] if t == ti)
        path.append((last, -2, tail_d, 0.0, WALK, target.unit if target.node is None else -1, -1, None))
        node = last
        while node != -1:
            parent, edge = prev[node]
            path.append(edge)
            node = parent
        path.reverse()
        return ti, path


def _inside(x: float, y: float, ring: list[list[float]]) -> bool:
    inside = False
    j = len(ring) - 1
    for i in range(len(ring)):
        xi, yi = ring[i]
        xj, yj = ring[j]
        if (yi > y) != (yj > y) and x < (xj - xi) * (y - yi) / (yj - yi) + xi:
            inside = not inside
        j = i
    return inside


def require_endpoint(ep: Endpoint | None, which: str, raw: str) -> Endpoint:
    if ep is None:
        raise NotFound(f"找不到{which}“{raw}”：请从搜索结果或地图上选择地点", code="UNKNOWN_ENDPOINT")
    return ep
