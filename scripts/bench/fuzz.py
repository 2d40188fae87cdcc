"""The longer fuzz run: every operation of docs/openapi.yaml against the local stack, with many more
examples than CI's 25 and new ones each run (tests/integration/fuzz, BIANJIE_FUZZ_EXAMPLES and
BIANJIE_FUZZ_RANDOM=1), and STOW-RS with six times as many multipart bodies
(tests/integration/fuzz/test_fuzz_stow.py). Zero failures is the bar, as in CI.

Usage: .venv/bin/python scripts/bench/fuzz.py [--examples 200]

Prints a table of the failed operations (if any) and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench/fuzz.py", description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="examples per operation (CI runs 25)")
    args = parser.parse_args(argv)
    if args.examples < 1:
        parser.error("--examples must be at least 1")
    with tempfile.TemporaryDirectory(prefix="bianjie-fuzz-") as tmp:
        report = Path(tmp) / "junit.xml"
        env = {**os.environ, "BIANJIE_FUZZ_EXAMPLES": str(args.examples), "BIANJIE_FUZZ_RANDOM": "1"}
        started = time.perf_counter()
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "tests/integration/fuzz",
                "-q",
                "-p",
                "no:cacheprovider",
                f"--junitxml={report}",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - started
        if not report.exists():
            print(run.stdout[-3000:], run.stderr[-3000:], sep="\n")
            print(json.dumps({"examples_per_operation": args.examples, "error": "pytest wrote no report"}))
            return 1
        cases = ET.parse(report).getroot().iter("testcase")
        failed, total = [], 0
        for case in cases:
            total += 1
            problem = case.find("failure") if case.find("failure") is not None else case.find("error")
            if problem is not None:
                failed.append((case.get("name", "?"), (problem.get("message") or "").splitlines()[0][:100]))
    print(f"fuzz: {total} operations x {args.examples} examples, {seconds:.0f} s")
    for name, why in failed:
        print(f"  FAILED {name}: {why}")
    print(
        json.dumps(
            {
                "examples_per_operation": args.examples,
                "operations": total,
                "failures": len(failed),
                "seconds": round(seconds, 1),
            }
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
