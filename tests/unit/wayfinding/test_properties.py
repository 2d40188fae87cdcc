"""Properties of routing over generated venues (random buildings, floors, missing elevators and stairs,
escalators, skybridges, employees-only rooms): checked against an independent reachability oracle."""

from __future__ import annotations

import itertools
import math
from functools import cache
from typing import Any

import pytest
from bianjie.wayfinding import imdf
from bianjie.wayfinding.graphbuild import ELEVATOR, ESCALATOR, STAIRS, STEPS, build_graph
from bianjie.wayfinding.itinerary import Itinerary
from bianjie.wayfinding.routing import Graph
from bianjie_dev.wayfinding.venues import generated_campus, to_zip
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BANNED = {"accessible": {STAIRS, ESCALATOR, STEPS}, "elevator_first": set(), "stairs_first": set()}


@cache
def venue(
    buildings: int,
    levels: int,
    holes: frozenset[Any],
    stairs: frozenset[Any],
    closed: frozenset[Any],
    bridges: frozenset[Any],
    escalators: frozenset[Any],
) -> tuple[Graph, list[str]]:
    archive = generated_campus(
        buildings,
        levels,
        seed=f"prop-{buildings}-{levels}-{hash((holes, stairs, closed, bridges, escalators))}",
        missing_elevators=holes,
        missing_stairs=stairs,
        closed_rooms=closed,
        bridges=bridges,
        escalators=escalators,
    )
    graph = Graph(build_graph(imdf.read_archive(imdf.unzip(to_zip(archive)))))
    places = sorted(graph.endpoints)
    return graph, places


@st.composite
def venues(draw: st.DrawFn) -> tuple[Graph, list[str]]:
    buildings = draw(st.integers(1, 3))
    levels = draw(st.integers(2, 4))
    cells = [(b, o) for b in range(buildings) for o in range(-1, levels - 1)]
    subset = st.frozensets(st.sampled_from(cells), max_size=len(cells) // 2)
    holes, stairs, bridges, escalators = draw(subset), draw(subset), draw(subset), draw(subset)
    closed = draw(
        st.frozensets(
            st.tuples(st.sampled_from(range(buildings)), st.sampled_from(range(-1, levels - 1)), st.integers(1, 8)),
            max_size=4,
        )
    )
    return venue(buildings, levels, holes, stairs, closed, bridges, escalators)


def reachable(graph: Graph, source: Any, target: Any, banned: set[int]) -> bool:
    """Breadth-first search over the graph's edges without the banned kinds (the oracle)."""
    start = {n for n, _ in graph._links(source)}
    goal = {n for n, _ in graph._links(target)}
    if source.unit == target.unit and source.unit >= 0 and not graph.units[source.unit]["closed"]:
        return True
    seen, frontier = set(start), list(start)
    while frontier:
        node = frontier.pop()
        if node in goal:
            return True
        for to, _, _, kind, *_ in graph.adj[node]:
            if kind not in banned and to not in seen:
                seen.add(to)
                frontier.append(to)
    return False


def kinds(edges: list[Any]) -> set[int]:
    return {e[4] for e in edges}


SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@SETTINGS
@given(data=st.data(), built=venues(), profile=st.sampled_from(["accessible", "elevator_first", "stairs_first"]))
def test_routes_over_generated_venues(data: st.DataObject, built: tuple[Graph, list[str]], profile: str) -> None:
    graph, places = built
    a = data.draw(st.sampled_from(places))
    b = data.draw(st.sampled_from(places))
    source = graph.endpoint_of_feature(a, "起点")
    target = graph.endpoint_of_feature(b, "终点")
    assert source is not None and target is not None
    found = graph.shortest(source, [target], profile)
    # a route exists exactly when the oracle finds one under the profile's bans
    assert (found is not None) == reachable(graph, source, target, BANNED[profile])
    if found is None:
        return
    _, edges = found
    # accessible never uses stairs, steps or escalators
    if profile == "accessible":
        assert not kinds(edges) & {STAIRS, ESCALATOR, STEPS}
    # firm preferences hold whenever an alternative exists
    if profile == "elevator_first" and reachable(graph, source, target, {STAIRS, ESCALATOR}):
        assert not kinds(edges) & {STAIRS, ESCALATOR}
    if profile == "stairs_first" and reachable(graph, source, target, {ELEVATOR}):
        assert ELEVATOR not in kinds(edges)
    # the path is continuous from the source to the target
    assert edges[0][0] == -1 or source.node == edges[0][0]
    assert edges[-1][1] == -2
    for e1, e2 in itertools.pairwise(edges):
        assert e1[1] == e2[0]
    answer = Itinerary(graph, profile, source, target, edges).answer()
    # every level change follows a relationship of the archive
    rel_ids = {r["id"] for r in graph.rels}
    for change in answer["level_changes"]:
        assert change["relationship_id"] in rel_ids
    levels = [p["level_id"] for p in answer["path"]]
    assert levels[0] == graph.levels[source.level]["id"] and levels[-1] == graph.levels[target.level]["id"]
    assert len(answer["level_changes"]) >= len(levels) - 1 - sum(1 for x, y in itertools.pairwise(levels) if x == y)
    # never shorter than the straight line between the ends
    assert answer["length_m"] >= math.dist((source.x, source.y), (target.x, target.y)) - 0.5
    # no employees-only unit is passed through
    closed = {u["id"] for u in graph.units if u["closed"]}
    assert not closed & set(answer["units"])
    assert answer["steps"][-1]["kind"] == "arrive"


def oracle_cost(graph: Graph, source: Any, targets: list[Any], profile: str) -> float | None:
    """Plain Dijkstra over every node (no heuristic, no early exit): the cheapest cost to any target."""
    import heapq

    from bianjie.wayfinding.routing import PENALISED, PENALTY, SPEED

    best = math.inf
    for t in targets:
        if t.unit == source.unit >= 0 and not graph.units[t.unit]["closed"] and source.node is None and t.node is None:
            best = min(best, math.dist((source.x, source.y), (t.x, t.y)))
    dist: dict[int, float] = {}
    heap: list[tuple[float, int]] = []
    for node, d in graph._links(source):
        if d < dist.get(node, math.inf):
            dist[node] = d
            heap.append((d, node))
    heapq.heapify(heap)
    while heap:
        cost, node = heapq.heappop(heap)
        if cost > dist[node]:
            continue
        for to, length, vertical, kind, *_ in graph.adj[node]:
            if kind in BANNED[profile]:
                continue
            c = cost + length + vertical * SPEED[profile] + (PENALTY if kind in PENALISED[profile] else 0.0)
            if c < dist.get(to, math.inf):
                dist[to] = c
                heapq.heappush(heap, (c, to))
    for t in targets:
        for node, d in graph._links(t):
            if node in dist:
                best = min(best, dist[node] + d)
    return None if best == math.inf else best


def path_cost(graph: Graph, edges: list[Any], profile: str) -> float:
    from bianjie.wayfinding.routing import PENALISED, PENALTY, SPEED

    return sum(
        e[2] + e[3] * SPEED[profile] + (PENALTY if e[4] in PENALISED[profile] and e[0] >= 0 and e[1] >= 0 else 0.0)
        for e in edges
    )


@SETTINGS
@given(data=st.data(), built=venues(), profile=st.sampled_from(["accessible", "elevator_first", "stairs_first"]))
def test_the_guided_search_finds_the_cheapest_route(
    data: st.DataObject, built: tuple[Graph, list[str]], profile: str
) -> None:
    # A* with the distance and component heuristics must cost exactly what exhaustive Dijkstra costs,
    # to one target or the nearest of several
    graph, places = built
    source = graph.endpoint_of_feature(data.draw(st.sampled_from(places)), "起点")
    names = data.draw(st.lists(st.sampled_from(places), min_size=1, max_size=3))
    targets = [graph.endpoint_of_feature(n, "终点") for n in names]
    assert source is not None and all(t is not None for t in targets)
    found = graph.shortest(source, targets, profile)  # type: ignore[arg-type]
    expected = oracle_cost(graph, source, targets, profile)  # type: ignore[arg-type]
    assert (found is None) == (expected is None)
    if found is not None and expected is not None:
        assert path_cost(graph, found[1], profile) == pytest.approx(expected, rel=1e-9, abs=1e-6)
