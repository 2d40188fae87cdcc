"""Tooling: pay's on-premises configuration as separate processes (the benchmark, integration tests).

``start_onprem`` starts the channel stand-in server (``bianjie_dev.pay.standin_server``) in its own
process, points the channel configs at it (``mode: http``), and starts ``bianjie serve --workers N``
serving pay's HTTP functions; both read the environment of the calling process, which the caller has
pointed at a local stack whose documents are in PostgreSQL (``BIANJIE_DOCUMENTS=postgres``).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bianjie_dev.runtime.child import BIANJIE, free_port, project_root

PAY_HTTP_FUNCTIONS = (
    "PayAgreementSignFunction",
    "PayAgreementListFunction",
    "PayAgreementTerminateFunction",
    "PayAgreementOrderFunction",
    "PayChargeCreateFunction",
    "PayChargeGetFunction",
    "PayRefundCreateFunction",
    "PayWebhookKeyFunction",
    "PayCallbackUnionpayFunction",
    "PayCallbackHuiminFunction",
    "PayCallbackYibaoCreditFunction",
)


class Child:
    """A process of the benchmark's, its output in a file, stopped with SIGTERM (it drains) at the end."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path, ready_url: str) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(args, cwd=project_root(), env=env, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 180
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{name} exited early:\n{self.log_path.read_text(errors='replace')[-3000:]}")
            try:
                with urllib.request.urlopen(ready_url, timeout=2) as answer:
                    answer.read()
                    break
            except urllib.error.HTTPError:
                break  # it answers: the status does not matter here
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        f"{name} did not start:\n{self.log_path.read_text(errors='replace')[-3000:]}"
                    ) from exc
                time.sleep(0.3)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def onprem_env(workers: int, threads: int) -> dict[str, str]:
    """What the serve workers and the stand-in run with: the stack's variables (tables, queues, keys on the
    emulator), the PostgreSQL documents, and the pool sized to the handler threads."""
    return {
        **os.environ,
        "BIANJIE_STAGE": "onprem",
        "BIANJIE_POSTGRES_POOL_MAX": str(threads),
        "BIANJIE_POSTGRES_POOL_MIN": str(max(1, threads // 4)),
        "BIANJIE_LOG_LEVEL": os.environ.get("BIANJIE_LOG_LEVEL", "WARNING"),
        "BIANJIE_WORKERS": str(workers),
    }


def start_onprem(
    tmp: Path, workers: int, threads: int, latency_ms: float, *, async_seconds: int = 900, notify_delay: float = 1.0
) -> tuple[Child, Child, str]:
    """The channel stand-in in its own process, the channels pointed at it, and `bianjie serve`.

    Call with this process's environment pointed at the stack (its variables, PostgreSQL documents)."""
    from bianjie.pay import wiring

    serve_port, standin_port = free_port(), free_port()
    serve_url = f"http://127.0.0.1:{serve_port}"
    standin_url = f"http://127.0.0.1:{standin_port}"
    env = onprem_env(workers, threads)
    wiring.channel_configs()  # the stand-ins' identities exist before their server reads them
    standin = Child(
        "standin",
        [
            sys.executable,
            "-m",
            "bianjie_dev.pay.standin_server",
            "--port",
            str(standin_port),
            "--latency-ms",
            str(latency_ms),
            "--callback-base",
            serve_url,
            "--async-seconds",
            str(async_seconds),
            "--notify-delay",
            str(notify_delay),
        ],
        {**env, "BIANJIE_STAGE": "local"},  # a stand-in exists only on the local stage
        tmp,
        f"{standin_url}/status",
    )
    for channel in wiring.channel_configs(refresh=True):
        wiring.rotate_channel(channel, base_url=f"{standin_url}/{channel.value}")
    args = [str(BIANJIE), "serve", "--host", "127.0.0.1", "--port", str(serve_port)]
    args += ["--workers", str(workers), "--threads", str(threads)]
    for fn in PAY_HTTP_FUNCTIONS:
        args += ["--function", fn]
    serve = Child("serve", args, env, tmp, f"{serve_url}/pay/webhook-key")
    return standin, serve, serve_url
