"""The pages' weight and speed (issue 13): gzipped JavaScript and CSS each page loads (its module graph
from web/pages/dist, so a shared chunk counts on every page that loads it), and first contentful paint
and time until the page shows its data, in headless Chromium (patient pages at phone size, the staff
desk rx-doctor / rx-hospital / rx-pharmacy at desktop size with their banner links' staff tokens), each
load in a fresh browser context (no cache), against the local stack (`make run`'s code path). Budgets:
patient pages <= 150 KB gzipped JS (the staff desk has no weight budget: desktops on the hospital's
network), first contentful paint <= 1 s on this machine for every page (the p50 of the runs; each page's
first load is reported apart as "first FCP" and not in the runs: it also pays the functions' cold start).

    .venv/bin/python scripts/bench/pages.py [--runs 5]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts" / "bench"))

from emulator_memory import EmulatorMemory  # noqa: E402

DIST = ROOT / "web" / "pages" / "dist"
PATIENT_PAGES = ("home", "prefs", "pay", "pay-sign", "rx", "login")
STAFF_PAGES = ("rx-doctor", "rx-hospital", "rx-pharmacy")
MEASURED = ("home", "prefs", "pay", "rx", *STAFF_PAGES)
BUDGET_JS_KB = 150
BUDGET_FCP_MS = 1000
_SRC = re.compile(r'<(?:script|link)[^>]+(?:src|href)="\./(assets/[^"]+)"')
_IMPORT = re.compile(r'(?:import|from)\s*\(?\s*"\./([^"]+\.js)"')


def graph(page: str) -> set[Path]:
    """Every file the page loads: what its HTML names, then each script's static and dynamic imports."""
    todo = [DIST / rel for rel in _SRC.findall((DIST / f"{page}.html").read_text(encoding="utf-8"))]
    seen: set[Path] = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        if path.suffix == ".js":
            todo += [path.parent / name for name in _IMPORT.findall(path.read_text(encoding="utf-8"))]
    return seen


def gz_kb(paths: set[Path], suffix: str) -> float:
    return round(sum(len(gzip.compress(p.read_bytes(), 9)) for p in paths if p.suffix == suffix) / 1024, 1)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not (DIST / "home.html").is_file():
        subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True)
    load = os.getloadavg()
    weights = {}
    for html in sorted(DIST.glob("*.html")):
        files = graph(html.stem)
        weights[html.stem] = {"js_kb_gz": gz_kb(files, ".js"), "css_kb_gz": gz_kb(files, ".css"), "files": len(files)}

    from bianjie_dev.runtime.child import StackProcess

    chromium = subprocess.run([str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True)
    with tempfile.TemporaryDirectory() as tmp:
        stack = StackProcess(Path(tmp), env={"BIANJIE_FILM_DEMO_CT_SLICES": "4"})
        memory = EmulatorMemory(stack.proc.pid)
        try:
            links = json.loads(stack.cli("pages", "links", "--json").stdout)
            fragments = {
                url.split("#")[0].rsplit("/", 1)[1]: url.split("#", 1)[1]
                for url, _ in links["links"]
                if url.split("#")[0].rsplit("/", 1)[1] in STAFF_PAGES
            }
            done = subprocess.run(
                [
                    "node",
                    "fcp.mjs",
                    "--base",
                    stack.url,
                    "--token",
                    links["tokens"]["patient"],
                    "--pages",
                    ",".join(MEASURED),
                    "--fragments",
                    json.dumps(fragments),
                    "--runs",
                    str(args.runs),
                    "--chromium",
                    chromium.stdout.strip().splitlines()[-1],
                ],
                cwd=ROOT / "web" / "pages" / "browser",
                capture_output=True,
                text=True,
                timeout=600,
            )
            timing = json.loads(done.stdout.strip().splitlines()[-1])
        finally:
            emulator_rss_mb = memory.stop()
            stack.stop()
    load_after = os.getloadavg()

    print(f"load average {load[0]:.2f} (before) {load_after[0]:.2f} (after); {os.cpu_count()} cores; runs {args.runs}")
    print(
        f"{'page':<12} {'JS KB gz':>9} {'CSS KB gz':>10} {'files':>6} {'FCP p50':>8} {'FCP max':>8} {'data p50':>9}"
        f" {'first FCP':>10}"
    )
    summary: dict[str, object] = {
        "load_1m": round(load[0], 2),
        "load_1m_after": round(load_after[0], 2),
        "runs": args.runs,
    }
    ok = not timing["errors"]
    for page, w in weights.items():
        t = timing["pages"].get(page)
        fcp = [x for x in (t or {}).get("fcp_ms", []) if x is not None]
        row = {**w}
        if t:
            row |= {
                "fcp_p50_ms": round(statistics.median(fcp)),
                "fcp_max_ms": round(max(fcp)),
                "ready_p50_ms": round(statistics.median(t["ready_ms"])),
                "first_fcp_ms": round(t["first_fcp_ms"]) if t.get("first_fcp_ms") is not None else None,
            }
        summary[page] = row
        if page in PATIENT_PAGES and w["js_kb_gz"] > BUDGET_JS_KB:
            ok = False
        if t and row["fcp_p50_ms"] > BUDGET_FCP_MS:
            ok = False
        cols = (
            f"{row['fcp_p50_ms']:>8} {row['fcp_max_ms']:>8} {row['ready_p50_ms']:>9} {row['first_fcp_ms']!s:>10}"
            if t
            else f"{'-':>8} {'-':>8} {'-':>9} {'-':>10}"
        )
        print(f"{page:<12} {w['js_kb_gz']:>9} {w['css_kb_gz']:>10} {w['files']:>6} {cols}")
    summary["errors"] = timing["errors"]
    summary["emulator_rss_mb"] = emulator_rss_mb
    summary["within_budget"] = ok
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
