"""Wayfinding on a generated 3-building, 12-level campus (one basement each, 16 rooms a floor, a plaza,
skybridges on the 3rd and 7th floors, an escalator pair, some floors without an elevator or stairs).

In process (the domain alone, as the route function runs it once its graph is loaded):
    graph_build_ms        IMDF archive (validated) -> routing graph, median of 3 (the publish function's work)
    route_p50/p99_ms      random origin/destination pairs (occupants, amenities, kiosk), random profile
    route_cpu_p99_ms      the same routes' CPU time (thread time): what a route costs when the machine is
                          shared, where the wall-clock tail is time spent waiting for a core
    search_p99_ms         random queries (Chinese names, pinyin, initials, a typo) over the campus's POIs
Through the function (the local stack, `make run`'s code path, over HTTP on the gateway):
    fn_route_p50/p99_ms   GET /wayfinding/route, sequential, one client
    fn_search_p99_ms      GET /wayfinding/search
    emulator_rss_mb       the moto emulator's peak resident memory

Usage: .venv/bin/python scripts/bench/wayfinding.py [--routes N] [--http N] [--no-stack]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from bianjie.wayfinding import imdf
from bianjie.wayfinding.graphbuild import build_graph
from bianjie.wayfinding.itinerary import Itinerary
from bianjie.wayfinding.routing import PROFILES, Graph
from bianjie.wayfinding.search import search, search_keys
from bianjie.wayfinding.service import derive_pois
from bianjie_dev.wayfinding.venues import generated_campus, to_zip

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_memory import EmulatorMemory


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def campus() -> dict[str, Any]:
    return generated_campus(
        3,
        12,
        seed="bench",
        missing_elevators=frozenset({(2, 10)}),
        missing_stairs=frozenset({(1, 5)}),
        bridges=frozenset({(0, 2), (1, 2), (0, 6), (1, 6)}),
        escalators=frozenset({(0, 0), (1, 0)}),
        closed_rooms=frozenset({(0, 3, 4), (2, 8, 2)}),
    )


QUERIES = [
    "卫生间",
    "便利店",
    "科室1-3",
    "keshi2-5",
    "ks3",
    "诊室2-4-n6",
    "zhenshi",
    "便利电",
    "大厅",
    "xnk",
    "科室3-10-s2",
]


def in_process(archive: dict[str, Any], routes: int, rng: random.Random) -> dict[str, Any]:
    zipped = to_zip(archive)
    builds = []
    for _ in range(3):
        t = time.perf_counter()
        parsed = imdf.read_archive(imdf.unzip(zipped))
        graph_data = build_graph(parsed)
        builds.append((time.perf_counter() - t) * 1000)
    t = time.perf_counter()
    graph = Graph(json.loads(json.dumps(graph_data)))
    load_ms = (time.perf_counter() - t) * 1000
    places = sorted(graph.endpoints)
    latencies, cpu, found = [], [], 0
    for _ in range(routes):
        a, b = rng.choice(places), rng.choice(places)
        profile = rng.choice(PROFILES)
        t, c = time.perf_counter(), time.thread_time()
        source, target = graph.endpoint_of_feature(a, "起点"), graph.endpoint_of_feature(b, "终点")
        assert source is not None and target is not None
        result = graph.shortest(source, [target], profile)
        if result is not None:
            Itinerary(graph, profile, source, target, result[1]).answer()
            found += 1
        latencies.append((time.perf_counter() - t) * 1000)
        cpu.append((time.thread_time() - c) * 1000)
    pois = derive_pois(parsed, graph_data)
    for p in pois:
        p["keys"] = search_keys(p["name"], [])
    searches = []
    for _ in range(routes):
        q = rng.choice(QUERIES)
        t = time.perf_counter()
        search(pois, q, None, 10)
        searches.append((time.perf_counter() - t) * 1000)
    return {
        "nodes": len(graph_data["nodes"]),
        "edges": len(graph_data["edges"]),
        "pois": len(pois),
        "graph_build_ms": round(statistics.median(builds), 1),
        "graph_load_ms": round(load_ms, 1),
        "route_p50_ms": round(percentile(latencies, 0.5), 3),
        "route_p99_ms": round(percentile(latencies, 0.99), 3),
        "route_cpu_p99_ms": round(percentile(cpu, 0.99), 3),
        "routes_found": found,
        "search_p50_ms": round(percentile(searches, 0.5), 3),
        "search_p99_ms": round(percentile(searches, 0.99), 3),
    }


def through_stack(archive: dict[str, Any], n: int, rng: random.Random) -> dict[str, Any]:
    from bianjie_dev.cli.tokens import issue_token, via_gateway
    from bianjie_dev.runtime.child import StackProcess

    stack = StackProcess(Path(tempfile.mkdtemp(prefix="bench-wayfinding-")), env={"BIANJIE_FILM_DEMO_CT_SLICES": "4"})
    memory = EmulatorMemory(stack.proc.pid)
    try:
        token = issue_token(
            via_gateway(stack.url),
            "bench-admin",
            "staff",
            ["nav-admin"],
            hospital="bench-hospital",
            requested_by="system:bench",
        )

        def call(method: str, path: str, body: Any = None, auth: bool = False) -> tuple[float, Any]:
            headers = {"Content-Type": "application/json"}
            if auth:
                headers["Authorization"] = f"Bearer {token}"
            req = urllib.request.Request(
                stack.url + path,
                data=json.dumps(body).encode() if body is not None else None,
                method=method,
                headers=headers,
            )
            t = time.perf_counter()
            with urllib.request.urlopen(req, timeout=120) as r:
                data = json.loads(r.read())
            return (time.perf_counter() - t) * 1000, data

        import_ms, imported = call(
            "POST", "/wayfinding/imports", {"archive_base64": base64.b64encode(to_zip(archive)).decode()}, auth=True
        )
        venue = imported["venue_id"]
        publish_ms, published = call("POST", f"/wayfinding/venues/{venue}/versions/1/publish", auth=True)
        places = [f["id"] for f in archive["occupant"]["features"]] + [f["id"] for f in archive["amenity"]["features"]]
        call(
            "GET", "/wayfinding/route?" + urllib.parse.urlencode({"venue": venue, "from": places[0], "to": places[1]})
        )  # loads the graph
        routes, searches = [], []
        for _ in range(n):
            q = {"venue": venue, "from": rng.choice(places), "to": rng.choice(places), "profile": rng.choice(PROFILES)}
            try:
                ms, _ = call("GET", "/wayfinding/route?" + urllib.parse.urlencode(q))
            except urllib.error.HTTPError as e:  # a pair with no route under the profile: a 422, timed all the same
                e.read()
                ms = float("nan")
            if ms == ms:
                routes.append(ms)
        for _ in range(n):
            ms, _ = call(
                "GET", "/wayfinding/search?" + urllib.parse.urlencode({"venue": venue, "q": rng.choice(QUERIES)})
            )
            searches.append(ms)
        rss = memory.stop()
        return {
            "fn_import_ms": round(import_ms, 1),
            "fn_publish_ms": round(publish_ms, 1),
            "fn_graph_build_ms": published["graph_build_ms"],
            "fn_route_p50_ms": round(percentile(routes, 0.5), 2),
            "fn_route_p99_ms": round(percentile(routes, 0.99), 2),
            "fn_search_p50_ms": round(percentile(searches, 0.5), 2),
            "fn_search_p99_ms": round(percentile(searches, 0.99), 2),
            "emulator_rss_mb": rss,
        }
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--routes", type=int, default=3000)
    parser.add_argument("--http", type=int, default=300)
    parser.add_argument("--no-stack", action="store_true")
    args = parser.parse_args()
    rng = random.Random(17)
    archive = campus()
    summary = in_process(archive, args.routes, rng)
    if not args.no_stack:
        summary.update(through_stack(archive, args.http, rng))
    summary["loadavg"] = round(os.getloadavg()[0], 2)
    print(
        f"wayfinding on a generated 3-building, 12-level campus; {platform.processor() or platform.machine()}, "
        f"python {platform.python_version()}, {os.cpu_count()} cores, load {summary['loadavg']}"
    )
    print(f"{'measure':<22} {'value':>12}")
    for key, value in summary.items():
        print(f"{key:<22} {value!s:>12}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
