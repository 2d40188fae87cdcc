"""Cloud film's DICOMweb endpoints measured with dicomweb-client (unmodified) on the local stack.

Stores a generated study with STOW-RS (signed as the demo hospital), waits until QIDO-RS finds every
instance, then times repeated calls: a study search by PatientID, a study search with no key, a series'
instances, a series' metadata, one frame (512x512 16-bit CT), one rendered preview.

    .venv/bin/python scripts/bench/film_dicomweb.py [--slices 20] [--repeat 20]

Prints a table; the last line is one JSON object. Latencies are the client's wall time per call (the
local stack: gateway, function, moto's server, on this machine's load; the load average is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "layers" / "core" / "python"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "layers" / "dev" / "python"))

import pydicom
from bianjie_dev.film import testdata
from bianjie_dev.film.dicomweb import partner_key_file, signed_session
from bianjie_dev.runtime.child import StackProcess
from dicomweb_client.api import DICOMwebClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulator_memory import EmulatorMemory


def timed(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    fn()  # warm: the function's first call loads its module and builds its clients
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 1),
        "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slices", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-film-dw-"))
    spec = testdata.StudySpec(hospital="demo-hospital", accession="BENCHDW")
    paths = testdata.write_study(work / "study", spec, ct_slices=args.slices, mr_slices=0, us_frames=0)
    datasets = [pydicom.dcmread(p) for p in paths]
    stack = StackProcess(work / "stack", env={"BIANJIE_FILM_DEMO_CT_SLICES": "4"})
    memory = EmulatorMemory(stack.proc.pid)
    try:
        key, serial = partner_key_file(stack.state_dir, "demo-hospital")
        client = DICOMwebClient(f"{stack.url}/film/dicomweb", session=signed_session(key, "demo-hospital", serial))
        started = time.perf_counter()
        for i in range(0, len(datasets), 5):  # five a request: each under the 4.5 MB store limit
            client.store_instances(datasets=datasets[i : i + 5])
        stored_s = time.perf_counter() - started
        while True:
            found = client.search_for_studies(search_filters={"StudyInstanceUID": spec.study_uid})
            if found and found[0]["00201208"]["Value"][0] == len(datasets):
                break
            if time.perf_counter() - started > 180:
                raise SystemExit("study not searchable after 180 s")
            time.sleep(0.2)
        searchable_s = time.perf_counter() - started
        st = spec.study_uid
        se = str(datasets[0].SeriesInstanceUID)
        sop = str(datasets[len(datasets) // 2].SOPInstanceUID)
        rows: dict[str, dict[str, float]] = {
            "QIDO studies ?PatientID": timed(
                lambda: client.search_for_studies(search_filters={"PatientID": spec.patient.mrn}), args.repeat
            ),
            "QIDO studies (no key)": timed(lambda: client.search_for_studies(), args.repeat),
            "QIDO series instances": timed(lambda: client.search_for_instances(st, se), args.repeat),
            "WADO series metadata": timed(lambda: client.retrieve_series_metadata(st, se), args.repeat),
            "WADO one frame": timed(lambda: client.retrieve_instance_frames(st, se, sop, [1]), args.repeat),
            "WADO rendered": timed(lambda: client.retrieve_instance_rendered(st, se, sop), args.repeat),
        }
    finally:
        peak = memory.stop()
        stack.stop()
    load = os.getloadavg()
    print(f"DICOMweb on the local stack, {len(datasets)} CT instances; load average {load[0]:.2f} {load[1]:.2f}")
    print(f"STOW-RS of {len(datasets)} instances: {stored_s:.2f} s; searchable after {searchable_s:.2f} s")
    print(f"{'call':28} {'p50 ms':>8} {'p95 ms':>8}")
    for name, figures in rows.items():
        print(f"{name:28} {figures['p50_ms']:8.1f} {figures['p95_ms']:8.1f}")
    summary = {
        "instances": len(datasets),
        "stow_s": round(stored_s, 2),
        "searchable_s": round(searchable_s, 2),
        "calls": rows,
        "load_avg_1m": round(load[0], 2),
        "emulator_rss_mb": peak,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
