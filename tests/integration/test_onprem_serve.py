"""The on-premises path: `python -m bianjie.runtime.serve` runs one function of the template behind the
gateway, configured only by its environment (no local stack, no moto), with only the core layer and
the installed requirements importable: `-S` skips site processing, so the editable install's finder
for the development package is absent, as it is in a production container."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request

from bianjie_dev.runtime.child import free_port, project_root


def production_path() -> list[str]:
    site = sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})
    return [str(project_root() / "layers" / "core" / "python"), *site]


def test_serve_one_function() -> None:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-S",
            "-m",
            "bianjie.runtime.serve",
            "--function",
            "HealthFunction",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=project_root(),
        env={**os.environ, "BIANJIE_STAGE": "onprem", "PYTHONPATH": os.pathsep.join(production_path())},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    body = json.loads(r.read())
                break
            except (urllib.error.URLError, ConnectionError):
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "gateway did not start"
                time.sleep(0.2)
        assert body == {"status": "ok"}
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/partners/me", timeout=5)
        except urllib.error.HTTPError as exc:  # not served by this container
            assert exc.code == 404 and json.loads(exc.read())["error"]["code"] == "ROUTE_NOT_FOUND"
        else:
            raise AssertionError("a route of another function was served")
    finally:
        proc.terminate()
        proc.wait(10)
