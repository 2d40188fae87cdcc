"""Cold start of every function in template.yaml: a fresh interpreter imports the handler module and
serves its first invocation (an API event for HTTP functions, a scheduled event for schedules), as a new
Lambda container would. Runs against the local stack (started here) so first invocations do real I/O.

Usage: .venv/bin/python scripts/bench/coldstart.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bianjie.runtime.deployment import Deployment
from bianjie.runtime.template import load_template
from bianjie_dev.runtime.child import StackProcess, project_root

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
from bianjie.runtime.invoke import Function
from bianjie.runtime.template import load_template
spec = load_template(sys.argv[1]).function(sys.argv[2])
fn = Function(spec, "cn-north-1")
t1 = time.perf_counter()
handler = fn.handler
t2 = time.perf_counter()
event = json.loads(sys.argv[3])
result = fn.invoke(event)
t3 = time.perf_counter()
status = result.get("statusCode") if isinstance(result, dict) else None
print(json.dumps({"import_ms": (t2 - t1) * 1000, "invoke_ms": (t3 - t2) * 1000, "status": status}))
"""


def first_event(fn_spec, key_file: Path) -> dict:
    api = fn_spec.api_events()
    if not api:
        return {
            "version": "0",
            "id": "cold",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-11-22T16:30:00Z",
            "region": "cn-north-1",
            "resources": [],
            "detail": {},
        }
    from bianjie.kit.crypto import Sm2PrivateKey
    from bianjie.kit.signing import sign_request
    from bianjie.runtime.apigw import Route, build_event

    event = api[0]
    partner = json.loads(key_file.read_text())
    headers = sign_request(
        Sm2PrivateKey.from_pem(partner["private_key_pem"]),
        event.method,
        event.path,
        "",
        b"",
        partner["app_id"],
        partner["key_serial"],
    )
    return build_event(
        method=event.method,
        path=event.path,
        raw_query="",
        headers=list(headers.items()),
        body=b"",
        source_ip="127.0.0.1",
        route=Route.compile(event.method, event.path, "x"),
        path_params={},
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    root = project_root()
    template = load_template(root / "template.yaml")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        stack = StackProcess(Path(tmp))
        try:
            deployment = Deployment.load(Path(tmp) / "stack.json")
            # IAM is enforced on the local stack: the probe calls moto with the operator's credentials
            # (roles' keys are not written to stack.json) and sees only its own function's environment
            creds = deployment.admin_credentials or {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}
            key_file = Path(tmp) / "partners" / "demo-hospital.json"
            for fn in template.functions:
                env = {
                    **os.environ,
                    **deployment.environment_of(fn),
                    "AWS_REGION": deployment.region,
                    "BIANJIE_AWS_ENDPOINT_URL": deployment.aws_endpoint_url or "",
                    **creds,
                }
                samples = []
                for _ in range(args.runs):
                    event = json.dumps(first_event(fn, key_file))  # fresh nonce each run
                    out = subprocess.run(
                        [sys.executable, "-c", PROBE, str(root / "template.yaml"), fn.logical_id, event],
                        env=env,
                        capture_output=True,
                        text=True,
                        cwd=root,
                        timeout=60,
                    )
                    if out.returncode != 0:
                        print(out.stderr, file=sys.stderr)
                        return 1
                    samples.append(json.loads(out.stdout.strip().splitlines()[-1]))
                rows.append(
                    {
                        "function": fn.logical_id,
                        "import_ms": statistics.median(s["import_ms"] for s in samples),
                        "invoke_ms": statistics.median(s["invoke_ms"] for s in samples),
                        "status": samples[-1]["status"],
                    }
                )
        finally:
            stack.stop()
    print(
        f"cold start (median of {args.runs} fresh interpreters), {platform.machine()}, "
        f"python {platform.python_version()}"
    )
    print(f"{'function':<24} {'import ms':>10} {'1st invoke ms':>14} {'total ms':>9} {'status':>7}")
    for r in rows:
        print(
            f"{r['function']:<24} {r['import_ms']:>10.1f} {r['invoke_ms']:>14.1f} "
            f"{r['import_ms'] + r['invoke_ms']:>9.1f} {r['status']!s:>7}"
        )
    print(json.dumps({f"{r['function']}_total_ms": round(r["import_ms"] + r["invoke_ms"], 1) for r in rows}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
