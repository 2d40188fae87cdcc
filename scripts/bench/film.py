"""Cloud film vs Orthanc on the same generated 100-slice CT series (512x512, 16-bit).

Measures, for each system: ingest rate (instances/s, including every derived object), study metadata
latency, single-frame fetch latency (median of repeated GETs), and in headless Chromium on a 375x667
viewport the time to first image and to the whole series loaded (our viewer; Orthanc's Web Viewer).

    .venv/bin/python scripts/bench/film.py [--slices 100] [--repeat 30] [--browser-runs 3] [--no-orthanc]

Browser figures are medians of ``--browser-runs`` page loads, each in a fresh browser (cold cache).

Prints a table; the last line is one JSON object {"ours": {...}, "orthanc": {...}}. Needs Debian's
orthanc, orthanc-dicomweb and orthanc-webviewer (installed here with apt-get when missing) and chromium.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "layers" / "core" / "python"))

from bianjie.runtime.child import StackProcess, free_port  # noqa: E402


def get(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read()


def median_ms(fn: Any, repeat: int) -> float:
    fn()  # warm
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(samples), 2)


def chromium() -> str:
    return subprocess.run(
        [str(ROOT / "scripts" / "chromium.sh")], capture_output=True, text=True, check=True
    ).stdout.strip()


def node(script: str, *args: str) -> dict[str, Any]:
    done = subprocess.run(
        ["node", script, *args, "--chromium", chromium()],
        cwd=ROOT / "web" / "film",
        capture_output=True,
        text=True,
        timeout=180,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def median_of(runs: list[dict[str, Any]], key: str) -> Any:
    values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
    return round(statistics.median(values)) if values else None


def bench_ours(files: list[Path], study_uid: str, repeat: int, work: Path, browser_runs: int) -> dict[str, Any]:
    subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, capture_output=True)
    stack = StackProcess(work / "stack", env={"BIANJIE_FILM_DEMO_CT_SLICES": "4"})
    try:
        started = time.perf_counter()
        sent = stack.cli("film", "ingest", str(files[0].parent), "--hospital", "demo-hospital")
        assert sent.returncode == 0, sent.stderr
        link = None
        while time.perf_counter() - started < 300:
            done = stack.cli(
                "request",
                "POST",
                "/film/links",
                "--app",
                "demo-hospital",
                "--data",
                json.dumps({"study_uid": study_uid}),
            )
            if done.stdout.startswith("201"):
                link = json.loads(done.stdout.partition("\n")[2])
                manifest = json.loads(get(link["url"] + "/manifest")[1])
                if manifest["study"]["series"] and manifest["study"]["series"][0]["frame_count"] == len(files):
                    break
            time.sleep(0.2)
        elapsed = time.perf_counter() - started
        assert link is not None
        series = manifest["study"]["series"][0]
        frame = series["frames"][len(files) // 2]
        out = {
            "ingest_per_s": round(len(files) / elapsed, 1),
            "metadata_ms": median_ms(lambda: get(series["metadata"], {"Accept-Encoding": "gzip"}), repeat),
            "manifest_ms": median_ms(lambda: get(link["url"] + "/manifest"), repeat),
            "frame_ms": median_ms(lambda: get(frame, {"Accept-Encoding": "gzip"}), repeat),
        }
        runs = [node("browser-check.mjs", link["url"]).get("marks") or {} for _ in range(browser_runs)]
        out.update(
            first_image_ms=median_of(runs, "first_image"),
            tools_ms=median_of(runs, "tools_ready"),
            series_ms=median_of(runs, "series_loaded"),
            page_response_ms=median_of(runs, "page_response"),
        )
        return out
    finally:
        stack.stop()


def ensure_orthanc() -> None:
    if not Path("/usr/sbin/Orthanc").exists() or not Path("/usr/share/orthanc/plugins/libOrthancDicomWeb.so").exists():
        subprocess.run(["apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(
            [
                "apt-get",
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "orthanc",
                "orthanc-dicomweb",
                "orthanc-webviewer",
            ],
            check=True,
            capture_output=True,
            env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )


def bench_orthanc(files: list[Path], study_uid: str, repeat: int, work: Path, browser_runs: int) -> dict[str, Any]:
    ensure_orthanc()
    port = free_port()
    config = {
        "Name": "bench",
        "StorageDirectory": str(work / "orthanc-db"),
        "IndexDirectory": str(work / "orthanc-db"),
        "HttpPort": port,
        "DicomPort": free_port(),
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "Plugins": [
            "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
            "/usr/share/orthanc/plugins/libOrthancWebViewer.so",
        ],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
    }
    (work / "orthanc.json").write_text(json.dumps(config))
    log = (work / "orthanc.log").open("wb")
    proc = subprocess.Popen(["/usr/sbin/Orthanc", str(work / "orthanc.json")], stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                get(base + "/system")
                break
            except OSError:
                time.sleep(0.1)
        started = time.perf_counter()
        for path in files:
            get(base + "/instances", {"Content-Type": "application/dicom"}, path.read_bytes())
        elapsed = time.perf_counter() - started
        series = json.loads(get(base + "/series")[1])[0]
        info = json.loads(get(base + f"/series/{series}")[1])
        se_uid = info["MainDicomTags"]["SeriesInstanceUID"]
        instances = json.loads(get(base + f"/dicom-web/studies/{study_uid}/series/{se_uid}/instances")[1])
        sop = instances[len(instances) // 2]["00080018"]["Value"][0]
        frame_url = f"{base}/dicom-web/studies/{study_uid}/series/{se_uid}/instances/{sop}/frames/1"
        out = {
            "ingest_per_s": round(len(files) / elapsed, 1),
            "metadata_ms": median_ms(
                lambda: get(f"{base}/dicom-web/studies/{study_uid}/series/{se_uid}/metadata"), repeat
            ),
            "frame_ms": median_ms(
                lambda: get(frame_url, {"Accept": 'multipart/related; type="application/octet-stream"'}), repeat
            ),
        }
        viewer = f"{base}/web-viewer/app/viewer.html?series={series}"
        runs = [node("orthanc-check.mjs", viewer) for _ in range(browser_runs)]
        out.update(first_image_ms=median_of(runs, "first_image_ms"), series_ms=median_of(runs, "series_ms"))
        errors = [r["error"] for r in runs if r.get("error")]
        if errors:
            out["browser_error"] = errors[0]
        return out
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slices", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--browser-runs", type=int, default=3, help="page loads per viewer (median)")
    parser.add_argument("--no-orthanc", action="store_true")
    args = parser.parse_args()
    from bianjie.film import testdata

    with tempfile.TemporaryDirectory(prefix="film-bench-") as tmp:
        work = Path(tmp)
        spec = testdata.StudySpec(hospital="demo-hospital")
        files = testdata.write_study(work / "dicom", spec, ct_slices=args.slices, mr_slices=0, us_frames=0)
        results = {"ours": bench_ours(files, spec.study_uid, args.repeat, work, args.browser_runs)}
        if not args.no_orthanc:
            results["orthanc"] = bench_orthanc(files, spec.study_uid, args.repeat, work, args.browser_runs)
    keys = ["ingest_per_s", "metadata_ms", "frame_ms", "first_image_ms", "series_ms"]
    print(f"{'metric':<16}" + "".join(f"{name:>12}" for name in results))
    for key in keys:
        print(f"{key:<16}" + "".join(f"{r.get(key)!s:>12}" for r in results.values()))
    ours = results["ours"]
    print(
        f"(ours: manifest {ours.get('manifest_ms')} ms, page answered at {ours.get('page_response_ms')} ms, "
        f"tools usable at {ours.get('tools_ms')} ms; browser figures median of {args.browser_runs}; "
        f"{args.slices} CT slices 512x512; {shutil.which('chromium') or 'chromium'} headless, 375x667)"
    )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
