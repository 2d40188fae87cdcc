"""Cloud film vs Orthanc on the same generated 100-slice CT series (512x512, 16-bit).

Measures, for each system: ingest rate (instances/s, including every derived object), study metadata
latency, single-frame fetch latency (median of repeated GETs), and in headless Chromium on a 375x667
viewport the time to first image and to the whole series loaded (our viewer; Orthanc's Web Viewer).

    .venv/bin/python scripts/bench/film.py [--slices 100] [--repeat 30] [--browser-runs 3] [--no-orthanc]
        [--profile out.txt]

Browser figures are medians of ``--browser-runs`` page loads, each in a fresh browser (cold cache).

Ingest is timed alike on both sides, from an already-running client: ours from the first S3 put (boto3,
eight at a time, keys named as ``bianjie film ingest`` names them) until the study row counts every
instance (polled with one DynamoDB GetItem per 0.1 s); Orthanc's from the first ``POST /instances``
until the last answer. "Per core" is instances per CPU-second (/proc utime + stime) spent in that
window: ours by the stack process (functions, pump, gateway), by moto's server (the storage emulator
that S3 and DynamoDB replace in production) and by this client; Orthanc's by its process and this client.

Prints a table; the last line is one JSON object {"ours": {...}, "orthanc": {...}}. Needs Debian's
orthanc, orthanc-dicomweb and orthanc-webviewer (installed here with apt-get when missing) and chromium.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "layers" / "core" / "python"))

from bianjie_dev.runtime.child import StackProcess, free_port  # noqa: E402


def get(url: str, headers: dict[str, str] | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status, response.read()


class KeepAlive:
    """GETs over one persistent connection, as a browser fetches a series (the plain ``get`` opens a
    connection per request, which on loopback is a large share of either server's answer time)."""

    def __init__(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)

    def get(self, url: str, headers: dict[str, str] | None = None) -> bytes:
        parts = urllib.parse.urlsplit(url)
        self.conn.request("GET", parts.path + (f"?{parts.query}" if parts.query else ""), headers=headers or {})
        response = self.conn.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {parts.path}: HTTP {response.status}")
        if (response.getheader("Connection") or "").lower() == "close":
            self.conn.close()  # http.client reconnects on the next request
        return body


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


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def child_pids(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        out.extend(int(c) for c in children)
    return out


def cpu_totals(pids: dict[str, int]) -> dict[str, float]:
    return {name: cpu_s(pid) for name, pid in pids.items()} | {"client": time.process_time()}


def per_cpu(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds > 0 else None


class Profiler:
    """``py-spy record`` on a process for the ingest window (``--profile``): where the CPU goes."""

    def __init__(self, pid: int | None, out: Path | None) -> None:
        self.proc = None
        if pid is not None and out is not None:
            self.proc = subprocess.Popen(
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--output",
                    str(out),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # py-spy attaches

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGINT)
            self.proc.wait(30)


def wait_queue_idle(sqs: Any, queue_url: str, timeout: float = 120) -> None:
    """The demo study's own notifications must be handled before the window opens."""
    deadline = time.monotonic() + timeout
    idle_since = None
    while time.monotonic() < deadline:
        attrs = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        busy = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
        if busy:
            idle_since = None
        elif idle_since is None:
            idle_since = time.monotonic()
        elif time.monotonic() - idle_since > 1.0:
            return
        time.sleep(0.2)
    raise TimeoutError("the ingest queue did not drain")


def ingest_ours(stack: StackProcess, files: list[Path], study_uid: str, profile: Path | None) -> dict[str, Any]:
    """Uploads as ``bianjie film ingest`` does (boto3, eight at a time, ``{hospital}/{batch}/{name}``), but
    from this already-running process, and times from the first put until the study row counts every
    instance (the aggregate writes it last). Completion is polled with one DynamoDB GetItem per 0.1 s."""
    from concurrent.futures import ThreadPoolExecutor

    s3, dynamodb, sqs = stack.client("s3"), stack.client("dynamodb"), stack.client("sqs")
    bucket, table = stack.ref("FilmIngestBucket"), stack.ref("FilmStudiesTable")
    wait_queue_idle(sqs, stack.ref("FilmIngestQueue"))
    batch = time.strftime("%Y%m%d-%H%M%S")
    bodies = [(path.name, path.read_bytes()) for path in files]
    moto = [pid for pid in child_pids(stack.proc.pid) if b"motoserver" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    pids = {"functions": stack.proc.pid, "emulator": moto[0]}
    profiler = Profiler(stack.proc.pid, profile)

    def upload(item: tuple[str, bytes]) -> None:
        s3.put_object(
            Bucket=bucket, Key=f"demo-hospital/{batch}/{item[0]}", Body=item[1], ContentType="application/dicom"
        )

    def counted() -> int:
        row = dynamodb.get_item(TableName=table, Key={"pk": {"S": f"study#{study_uid}"}, "sk": {"S": "study"}})
        return int(row.get("Item", {}).get("instance_count", {}).get("N", 0))

    try:
        cpu0 = cpu_totals(pids)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(upload, bodies))
        while counted() < len(files):
            if time.perf_counter() - started > 300:
                raise TimeoutError("ingest did not complete in 300 s")
            time.sleep(0.1)
        elapsed = time.perf_counter() - started
        cpu1 = cpu_totals(pids)
    finally:
        profiler.stop()
    cpu = {name: round(cpu1[name] - cpu0[name], 2) for name in cpu0}
    n = len(files)
    return {
        "ingest_per_s": round(n / elapsed, 1),
        "ingest_s": round(elapsed, 2),
        "ingest_cpu_s": cpu,
        "ingest_per_cpu_s": per_cpu(n, cpu["functions"]),
        "ingest_per_cpu_s_with_emulator": per_cpu(n, cpu["functions"] + cpu["emulator"]),
        "ingest_per_cpu_s_all": per_cpu(n, sum(cpu.values())),
    }


def bench_ours(
    files: list[Path], study_uid: str, repeat: int, work: Path, browser_runs: int, profile: Path | None
) -> dict[str, Any]:
    if browser_runs:
        subprocess.run(["make", "-s", "web"], cwd=ROOT, check=True, capture_output=True)
    stack = StackProcess(work / "stack", env={"BIANJIE_FILM_DEMO_CT_SLICES": "4"})
    try:
        out = ingest_ours(stack, files, study_uid, profile)
        done = stack.cli(
            "request", "POST", "/film/links", "--app", "demo-hospital", "--data", json.dumps({"study_uid": study_uid})
        )
        assert done.stdout.startswith("201"), done.stdout + done.stderr
        link = json.loads(done.stdout.partition("\n")[2])
        manifest = json.loads(get(link["url"] + "/manifest")[1])
        series = manifest["study"]["series"][0]
        assert series["frame_count"] == len(files), series["frame_count"]
        frame = series["frames"][len(files) // 2]
        out.update(
            metadata_ms=median_ms(lambda: get(series["metadata"], {"Accept-Encoding": "gzip"}), repeat),
            manifest_ms=median_ms(lambda: get(link["url"] + "/manifest"), repeat),
            frame_ms=median_ms(lambda: get(frame, {"Accept-Encoding": "gzip"}), repeat),
        )
        ours = KeepAlive(frame)
        out.update(
            metadata_keepalive_ms=median_ms(lambda: ours.get(series["metadata"], {"Accept-Encoding": "gzip"}), repeat),
            frame_keepalive_ms=median_ms(lambda: ours.get(frame, {"Accept-Encoding": "gzip"}), repeat),
        )
        runs = [node("browser-check.mjs", link["url"]).get("marks") or {} for _ in range(browser_runs)]
        out.update(
            first_image_ms=median_of(runs, "first_image"),
            tools_ms=median_of(runs, "tools_ready"),
            series_ms=median_of(runs, "series_loaded"),
            page_response_ms=median_of(runs, "page_response"),
            # where the whole-series time goes: frames fetched by the page, bundle running, viewer ready
            prefetched_ms=median_of(runs, "prefetched"),
            bundle_ms=median_of(runs, "bundle_evaluated"),
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
        cpu0 = cpu_totals({"orthanc": proc.pid})
        started = time.perf_counter()
        for path in files:
            get(base + "/instances", {"Content-Type": "application/dicom"}, path.read_bytes())
        elapsed = time.perf_counter() - started
        cpu1 = cpu_totals({"orthanc": proc.pid})
        time.sleep(1.0)  # work Orthanc does after answering (plugins) shows as the tail, outside the window
        tail = cpu_s(proc.pid) - cpu1["orthanc"]
        cpu = {name: round(cpu1[name] - cpu0[name], 2) for name in cpu0}
        series = json.loads(get(base + "/series")[1])[0]
        info = json.loads(get(base + f"/series/{series}")[1])
        se_uid = info["MainDicomTags"]["SeriesInstanceUID"]
        instances = json.loads(get(base + f"/dicom-web/studies/{study_uid}/series/{se_uid}/instances")[1])
        sop = instances[len(instances) // 2]["00080018"]["Value"][0]
        frame_url = f"{base}/dicom-web/studies/{study_uid}/series/{se_uid}/instances/{sop}/frames/1"
        out = {
            "ingest_per_s": round(len(files) / elapsed, 1),
            "ingest_s": round(elapsed, 2),
            "ingest_cpu_s": cpu | {"orthanc_tail_1s": round(tail, 2)},
            "ingest_per_cpu_s": per_cpu(len(files), cpu["orthanc"]),
            "ingest_per_cpu_s_all": per_cpu(len(files), sum(cpu.values())),
            "metadata_ms": median_ms(
                lambda: get(f"{base}/dicom-web/studies/{study_uid}/series/{se_uid}/metadata"), repeat
            ),
            "frame_ms": median_ms(
                lambda: get(frame_url, {"Accept": 'multipart/related; type="application/octet-stream"'}), repeat
            ),
        }
        theirs = KeepAlive(base)
        out["metadata_keepalive_ms"] = median_ms(
            lambda: theirs.get(f"{base}/dicom-web/studies/{study_uid}/series/{se_uid}/metadata"), repeat
        )
        out["frame_keepalive_ms"] = median_ms(
            lambda: theirs.get(frame_url, {"Accept": 'multipart/related; type="application/octet-stream"'}), repeat
        )
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
    parser.add_argument("--browser-runs", type=int, default=3, help="page loads per viewer (median; 0: none)")
    parser.add_argument("--no-orthanc", action="store_true")
    parser.add_argument("--profile", type=Path, help="py-spy raw profile of the stack process during our ingest")
    args = parser.parse_args()
    from bianjie_dev.film import testdata

    with tempfile.TemporaryDirectory(prefix="film-bench-") as tmp:
        work = Path(tmp)
        spec = testdata.StudySpec(hospital="demo-hospital")
        files = testdata.write_study(work / "dicom", spec, ct_slices=args.slices, mr_slices=0, us_frames=0)
        results = {"ours": bench_ours(files, spec.study_uid, args.repeat, work, args.browser_runs, args.profile)}
        if not args.no_orthanc:
            results["orthanc"] = bench_orthanc(files, spec.study_uid, args.repeat, work, args.browser_runs)
    keys = [
        "ingest_per_s",
        "metadata_ms",
        "metadata_keepalive_ms",
        "frame_ms",
        "frame_keepalive_ms",
        "first_image_ms",
        "series_ms",
    ]
    print(f"{'metric':<32}" + "".join(f"{name:>12}" for name in results))
    for key in keys:
        print(f"{key:<32}" + "".join(f"{r.get(key)!s:>12}" for r in results.values()))
    ours, theirs = results["ours"], results.get("orthanc", {})
    # per core: instances per CPU-second spent in the ingest window
    rows = [
        ("ingest_per_cpu_s (server)", ours.get("ingest_per_cpu_s"), theirs.get("ingest_per_cpu_s")),
        ("  ours with the emulator", ours.get("ingest_per_cpu_s_with_emulator"), None),
        ("  incl. uploading client", ours.get("ingest_per_cpu_s_all"), theirs.get("ingest_per_cpu_s_all")),
    ]
    for label, a, b in rows:
        print(f"{label:<32}{a!s:>12}" + (f"{b!s:>12}" if theirs else ""))
    print(f"(CPU seconds in the ingest window: ours {ours.get('ingest_cpu_s')}, orthanc {theirs.get('ingest_cpu_s')})")
    print(
        f"(ours: manifest {ours.get('manifest_ms')} ms, page answered at {ours.get('page_response_ms')} ms, "
        f"tools usable at {ours.get('tools_ms')} ms, bundle running at {ours.get('bundle_ms')} ms, "
        f"frames prefetched at {ours.get('prefetched_ms')} ms; browser figures median of {args.browser_runs}; "
        f"{args.slices} CT slices 512x512; {shutil.which('chromium') or 'chromium'} headless, 375x667)"
    )
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
