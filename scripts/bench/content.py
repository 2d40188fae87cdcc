"""The content platform's numbers (issue 19):

    page_p99_ms        an article page through the function (gateway -> ContentSiteFunction -> storage)
    storage_p99_ms     the same page object read straight from storage (what a CDN in front would fetch)
    search_p99_ms      search over --videos synthetic videos (default 20,000; target <= 20 ms), on the SQLite
                       FTS5 index object (--backend sqlite, the default) or PostgreSQL (--backend postgres:
                       the on-premises backend, on scripts/postgres.sh's server)
    search_p10         mean P@10 of the labelled query set on that library (target >= 0.9)
    transcode_rtf      wall seconds / video seconds, ffmpeg HLS 720p + 360p + cover of a 720p test video
    emulator_rss_mb    the emulator's peak memory while the stack ran
    stats_p99_ms       GET /content/stats's work (range check, 31 day queries, sums and tops) over a month
                       of counters (--stats-items viewed items a day, search terms, visitors, OA rows) on
                       the PostgreSQL documents adapter (scripts/postgres.sh's server); with
                       count_view_p99_ms, one page view counted (item counter + visitor mark + visitor
                       counter, the first visit of an address)

The page numbers come from the local stack (`make run`'s code path, demo seeded), sequential requests
after a warm-up; search runs in this process on the built index (what a search function holds after
loading the index object), each labelled query --repeat times; the transcode on a generated
testsrc2 video with a sine tone.

    .venv/bin/python scripts/bench/content.py [--videos 20000] [--requests 300] [--seconds 20]
        [--backend sqlite|postgres] [--skip-stack] [--search-only] [--stats-only [--stats-items 200]]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from emulator_memory import EmulatorMemory  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def timed_get(url: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=30) as r:
            r.read()
        out.append((time.perf_counter() - started) * 1000)
    return out


def pages(requests: int) -> dict[str, float]:
    from bianjie_dev.runtime.child import StackProcess

    with tempfile.TemporaryDirectory() as tmp:
        stack = StackProcess(Path(tmp), env={"BIANJIE_FILM_DEMO_CT_SLICES": "4"})
        memory = EmulatorMemory(stack.proc.pid)
        try:
            deadline = time.monotonic() + 120
            home = ""
            while time.monotonic() < deadline and "/content/site/articles/" not in home:
                try:
                    with urllib.request.urlopen(stack.url + "/content/site", timeout=30) as r:
                        home = r.read().decode()
                except urllib.error.HTTPError:
                    home = ""  # 404 until the publisher has rendered the home page
                time.sleep(0.5)
            article = home.split('href="/content/site/articles/')[1].split('"')[0]
            page_url = f"{stack.url}/content/site/articles/{article}"
            while time.monotonic() < deadline:  # the home page can list a record whose own page is a job behind
                try:
                    timed_get(page_url, 1)
                    break
                except urllib.error.HTTPError:
                    time.sleep(0.5)
            timed_get(page_url, 20)
            through = timed_get(page_url, requests)
            storage_url = stack.client("s3").generate_presigned_url(
                "get_object",
                Params={"Bucket": stack.ref("ContentSiteBucket"), "Key": f"pages/articles/{article}.html"},
                ExpiresIn=600,
            )
            timed_get(storage_url, 20)
            direct = timed_get(storage_url, requests)
        finally:
            stack.stop()
            rss = memory.stop()
    return {
        "page_p50_ms": round(percentile(through, 0.5), 2),
        "page_p99_ms": round(percentile(through, 0.99), 2),
        "storage_p50_ms": round(percentile(direct, 0.5), 2),
        "storage_p99_ms": round(percentile(direct, 0.99), 2),
        "emulator_rss_mb": round(rss or 0.0, 1),
    }


def _index(backend: str, docs: list) -> tuple[object, float, float, object]:
    """An index of ``docs`` on ``backend``: (searcher, build seconds, size in MB, cleanup)."""
    from bianjie.content.search import tokenizer

    if backend == "sqlite":
        from bianjie.content.adapters.sqlite_search import SqliteSearch, build

        started = time.perf_counter()
        data = build(docs, tokenizer())
        build_s = time.perf_counter() - started
        return SqliteSearch(data, tokenizer()), build_s, len(data) / 1e6, lambda: None
    import subprocess

    import psycopg
    from bianjie.content.adapters.postgres_search import PostgresSearch
    from bianjie.kit.documents.postgres import open_pool
    from psycopg.conninfo import make_conninfo

    dsn = subprocess.run([str(ROOT / "scripts" / "postgres.sh")], capture_output=True, text=True, check=True)
    server = dsn.stdout.strip().splitlines()[-1]
    schema = f"bench_content_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    pool = open_pool(make_conninfo(server, options=f"-csearch_path={schema}"), max_size=2)
    index = PostgresSearch(pool, tokenizer())
    started = time.perf_counter()
    index.replace(docs, {})
    build_s = time.perf_counter() - started
    with pool.connection() as conn:
        conn.execute("VACUUM ANALYZE content_search")
        size = conn.execute("SELECT pg_total_relation_size('content_search')").fetchone()[0]

    def cleanup() -> None:
        pool.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")

    return index, build_s, size / 1e6, cleanup


def search(videos: int, repeat: int, backend: str = "sqlite") -> dict[str, float | str]:
    from bianjie_dev.content.testdata import labelled, library, precision_recall

    docs = library(videos)
    searcher, build_s, size_mb, cleanup = _index(backend, docs)
    cases = labelled(docs)
    latencies: list[float] = []
    p10s, recalls = [], []
    try:
        for case in cases:
            full = searcher.search(case.query, limit=len(docs))  # type: ignore[attr-defined]
            ids = [h.id for h in full.hits]
            p10, recall = precision_recall(ids, ids, case.relevant)
            p10s.append(p10)
            recalls.append(recall)
            for _ in range(repeat):
                t = time.perf_counter()
                searcher.search(case.query, limit=10)  # type: ignore[attr-defined]
                latencies.append((time.perf_counter() - t) * 1000)
    finally:
        cleanup()  # type: ignore[operator]
    return {
        "search_backend": backend,
        "videos": videos,
        "index_build_s": round(build_s, 2),
        "index_mb": round(size_mb, 1),
        "search_p50_ms": round(percentile(latencies, 0.5), 2),
        "search_p99_ms": round(percentile(latencies, 0.99), 2),
        "search_p10": round(sum(p10s) / len(p10s), 3),
        "search_recall": round(sum(recalls) / len(recalls), 3),
    }


def transcode(seconds: float) -> dict[str, float]:
    from bianjie.content.adapters.ffmpeg import FfmpegTranscoder
    from bianjie.content.media import LADDER
    from bianjie_dev.content.videos import make_test_video

    with tempfile.TemporaryDirectory() as tmp:
        clip = make_test_video(Path(tmp) / "clip.mp4", seconds=seconds, width=1280, height=720)
        transcoder = FfmpegTranscoder()
        probe = transcoder.probe(clip)
        out = Path(tmp) / "out"
        out.mkdir()
        result = transcoder.transcode(clip, out, probe, LADDER)
    return {
        "transcode_s": round(result.seconds, 2),
        "video_s": seconds,
        "transcode_rtf": round(result.seconds / seconds, 3),
    }


def stats(items: int, repeat: int) -> dict[str, float]:
    """A month of counters on PostgreSQL documents, then the report over it ``repeat`` times."""
    import subprocess
    from datetime import date, timedelta

    import psycopg
    from bianjie.content.stats import Recorder, StatsService, StatsStore, Visit
    from bianjie.kit.documents.postgres import PostgresDocumentStore, open_pool
    from bianjie.kit.tables import table_spec
    from psycopg.conninfo import make_conninfo

    dsn = subprocess.run([str(ROOT / "scripts" / "postgres.sh")], capture_output=True, text=True, check=True)
    server = dsn.stdout.strip().splitlines()[-1]
    schema = f"bench_stats_{os.getpid()}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    pool = open_pool(make_conninfo(server, options=f"-csearch_path={schema}"), max_size=2)
    try:
        documents = PostgresDocumentStore(pool)
        spec = table_spec("CONTENT_TABLE", "content")
        documents.ensure_table(spec)
        store = StatsStore(documents, spec.name)
        today = date.today()
        days = [(today - timedelta(days=back)).isoformat() for back in range(30, -1, -1)]
        started = time.perf_counter()
        for n, day in enumerate(days):
            for i in range(items):
                store.add(day, f"view#a-{i:016x}", by=1 + (i * 7 + n) % 50,
                          extra=lambda i=i: {"kind": "article", "column": "science", "title": f"文章 {i}"})  # fmt: skip
            for t in range(30):
                store.add(day, f"q#词{t}", by=1 + t)
            store.add(day, "vis", by=items * 3)
            store.put_oa(day, {"followers": 180000 + n, "new_followers": 90, "lost_followers": 9, "reads": 900,
                               "shares": 40})  # fmt: skip
        seed_s = time.perf_counter() - started
        service = StatsService(store, time.time)
        report_ms = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            service.report(days[0], days[-1])
            report_ms.append((time.perf_counter() - t0) * 1000)
        recorder = Recorder(store, lambda _id: {"kind": "article", "column": "science", "title": "t"}, time.time)
        view_ms = []
        for k in range(repeat * 10):
            t0 = time.perf_counter()
            recorder.item_view(f"a-{k % items:016x}", Visit(f"198.51.100.{k % 250}", f"bench {k}"))
            view_ms.append((time.perf_counter() - t0) * 1000)
        return {
            "stats_rows_month": len(days) * (items + 32),
            "stats_seed_s": round(seed_s, 2),
            "stats_p50_ms": round(percentile(report_ms, 0.5), 2),
            "stats_p99_ms": round(percentile(report_ms, 0.99), 2),
            "count_view_p50_ms": round(percentile(view_ms, 0.5), 2),
            "count_view_p99_ms": round(percentile(view_ms, 0.99), 2),
        }
    finally:
        pool.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--videos", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=30, help="timed runs of each labelled query")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite", help="the search backend")
    parser.add_argument("--skip-stack", action="store_true", help="search and transcode only")
    parser.add_argument("--search-only", action="store_true", help="search only (no transcode, no stack)")
    parser.add_argument("--stats-only", action="store_true", help="the statistics only (PostgreSQL documents)")
    parser.add_argument("--stats-items", type=int, default=200, help="items viewed per day in the month of counters")
    args = parser.parse_args()

    if args.stats_only:
        found_stats: dict[str, object] = dict(stats(args.stats_items, args.repeat))
        load = os.getloadavg()
        print(f"content statistics, {os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"{'measure':<34} {'value':>10}")
        for key, value in found_stats.items():
            print(f"{key:<34} {value:>10}")
        found_stats["load_average_1m"] = round(load[0], 2)
        print(json.dumps(found_stats))
        return 0

    found: dict[str, object] = dict(search(args.videos, args.repeat, args.backend))
    if args.search_only:
        args.skip_stack = True
    else:
        found.update(transcode(args.seconds))
    print(json.dumps(found), flush=True)  # kept if the stack part fails
    if not args.skip_stack:
        found.update(pages(args.requests))
    load = os.getloadavg()
    print(
        f"content on {platform.processor() or platform.machine()}, python {platform.python_version()}, "
        f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
    )
    print(f"{'measure':<34} {'value':>10}")
    for key, value in found.items():
        print(f"{key:<34} {value:>10}")
    found["load_average_1m"] = round(load[0], 2)
    print(json.dumps(found))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
