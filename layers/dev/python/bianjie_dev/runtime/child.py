"""The local stack in a child process, started as ``make run`` starts it (``bianjie stack run``) on free
ports: what integration tests and benchmarks talk to over HTTP."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import boto3

BIANJIE = Path(sys.executable).parent / "bianjie"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def project_root() -> Path:
    return Path(__file__).resolve().parents[5]


class StackProcess:
    def __init__(
        self,
        state_dir: Path,
        template: Path | None = None,
        *,
        seed: bool | Sequence[str] = True,
        env: dict[str, str] | None = None,
        args: Sequence[str] = (),
        port: int | None = None,
        aws_port: int | None = None,
    ) -> None:
        """``seed``: every service's demo data (True), none (False), or only these services' and what
        they need (``["guide", "rx"]``): a test's stack starts faster with only what it uses. ``args``:
        more ``stack run`` options (``--keep-emulator``, ``--resume``, which needs the ports of the stack
        it resumes)."""
        self.state_dir = state_dir
        self.port = port or free_port()
        self.aws_port = aws_port or free_port()
        args = [str(BIANJIE), "stack", "run", *args]
        if template is not None:
            args += ["--template", str(template)]
        if seed is False:
            args.append("--no-seed")
        elif seed is not True:
            args += ["--seed", ",".join(seed)]
        self.env = {
            **os.environ,
            "BIANJIE_PORT": str(self.port),
            "BIANJIE_AWS_PORT": str(self.aws_port),
            "BIANJIE_STATE_DIR": str(state_dir),
            **(env or {}),
        }
        self.log_path = state_dir / "stack.log"
        state_dir.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")  # a resumed stack appends to its predecessor's log
        self.proc = subprocess.Popen(args, cwd=project_root(), env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def aws_url(self) -> str:
        return f"http://127.0.0.1:{self.aws_port}"

    def _wait(self, timeout: float = 180) -> None:  # a loaded 2-core machine needs the margin
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stack exited early:\n{self.log_path.read_text(errors='replace')[-4000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/_local/status", timeout=1):
                    return
            except Exception:
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"stack did not start:\n{self.log_path.read_text(errors='replace')[-4000:]}")

    @property
    def deployment(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "stack.json").read_text())

    def ref(self, logical_id: str) -> str:
        return str(self.deployment["resources"][logical_id]["ref"])

    def client(self, service: str, credentials: dict[str, str] | None = None) -> Any:
        """A client of the stack's emulator, as the operator (allowed everything) unless ``credentials``
        (``AWS_ACCESS_KEY_ID``... as in a function's environment) say otherwise."""
        deployment = self.deployment
        creds = credentials or deployment.get("admin_credentials") or {}
        return boto3.client(
            service,
            endpoint_url=self.aws_url,
            region_name=deployment["region"],
            aws_access_key_id=creds.get("AWS_ACCESS_KEY_ID", "local"),
            aws_secret_access_key=creds.get("AWS_SECRET_ACCESS_KEY", "local"),
            aws_session_token=creds.get("AWS_SESSION_TOKEN"),
        )

    def cli(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(BIANJIE), *args],
            cwd=project_root(),
            env=self.env,
            capture_output=True,
            text=True,
            input=input.decode() if input else None,
            timeout=120,
        )

    def status(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_local/status", timeout=5) as r:
            return json.loads(r.read())

    def kill(self) -> None:
        """SIGKILL, as a crash ends a process: no handler runs, nothing is flushed or released."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(15)
        self._log.close()

    def stop_emulator(self) -> None:
        """The emulator a ``--keep-emulator`` stack left running (by the pid it recorded)."""
        path = self.state_dir / "emulator.json"
        if not path.exists():
            return
        pid = int(json.loads(path.read_text())["pid"])
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        path.unlink()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
