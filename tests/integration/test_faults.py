"""Fault injection on the local stack (issue 21), a short run of ``scripts/bench/film_faults.py``: the
process that runs every function is killed (SIGKILL) twice in the middle of a cloud-film ingest and
started again on the emulator that outlived it (``bianjie stack run --keep-emulator`` / ``--resume``), as
Lambda's functions die and restart over S3, SQS and DynamoDB that keep what they accepted.

What must hold, from its last JSON line: every uploaded instance ends in its series exactly once (in the
series row's members and in the series' DICOM JSON metadata, with its instance row): 0 lost, 0
duplicated; the study row and its QIDO JSON count every instance and both series; nothing is
dead-lettered (a redelivered object is skipped, not refused); and the first kill came while the pump
held received messages (so the run did kill an ingest in the middle, not an idle stack).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bianjie_dev.runtime.child import project_root


def test_a_stack_killed_mid_ingest_loses_no_instance_and_catalogs_none_twice() -> None:
    root = project_root()
    out = subprocess.run(
        [
            sys.executable,
            str(root / "scripts" / "bench" / "film_faults.py"),
            *("--ct", "40", "--mr", "10", "--size", "128", "--kills", "2", "--visibility", "10"),
            *("--timeout", "240"),
        ],
        cwd=root,
        env={**os.environ, "BIANJIE_LOG_LEVEL": "WARNING"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.stdout.strip(), out.stderr[-4000:]
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    detail = out.stdout[-3000:]
    assert summary["accepted"] == summary["instances"] == 50, detail
    assert len(summary["kills"]) == 2, detail
    assert summary["kills"][0]["in_flight"] > 0, detail  # killed in the middle of an ingest
    assert summary["kills"][0]["at_instances"] < summary["instances"], detail
    assert summary["lost"] == 0 and summary["duplicated"] == 0, detail
    assert summary["study_ok"] is True, detail
    assert summary["dead_lettered"] == 0 and summary["strangers"] == 0, detail
    assert out.returncode == 0, detail
