"""Tooling: pay's on-premises configuration as separate processes (the benchmark, integration tests).

``start_onprem`` starts the channel stand-in server (``bianjie_dev.pay.standin_server``) in its own
process, points the channel configs at it (``mode: http``), and starts ``bianjie serve --workers N``
serving pay's HTTP functions; both read the environment of the calling process, which the caller has
pointed at a local stack whose documents are in PostgreSQL (``BIANJIE_DOCUMENTS=postgres``).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from bianjie_dev.runtime.child import BIANJIE, StackProcess, free_port, project_root

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


def worker_pids(supervisor: int) -> list[int]:
    """The worker processes of ``bianjie serve --workers N``: the children uvicorn's supervisor spawned
    (its multiprocessing resource tracker excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == supervisor and b"spawn" in cmd and b"resource_tracker" not in cmd:
            found.append(int(entry.name))
    return sorted(found)


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
    tmp: Path,
    workers: int,
    threads: int,
    latency_ms: float,
    *,
    async_seconds: int = 900,
    notify_delay: float = 1.0,
    server: str = "uvicorn",
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
    args += ["--workers", str(workers), "--threads", str(threads), "--server", server]
    for fn in PAY_HTTP_FUNCTIONS:
        args += ["--function", fn]
    serve = Child("serve", args, env, tmp, f"{serve_url}/pay/webhook-key")
    return standin, serve, serve_url


def use_stack_env(stack: StackProcess) -> Callable[[], None]:
    """This process talks to the stack's moto and tables directly (to mint tokens and play the channels,
    and so that the processes it starts get the stack's variables); returns what restores it."""
    saved = dict(os.environ)
    from bianjie.kit import aws, deps
    from bianjie.kit.config import reset_settings
    from bianjie.pay import wiring
    from bianjie.runtime.deployment import Deployment
    from bianjie.runtime.template import load_template

    deployment = Deployment.load(stack.state_dir / "stack.json")
    os.environ.update(deployment.function_environment(load_template(project_root() / "template.yaml")))
    os.environ.update({k: v for k, v in stack.env.items() if k.startswith(("BIANJIE_DOCUMENTS", "BIANJIE_POSTGRES"))})
    os.environ["AWS_REGION"] = deployment.region
    os.environ["BIANJIE_AWS_ENDPOINT_URL"] = str(deployment.aws_endpoint_url)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.update(deployment.admin_credentials)  # the emulator enforces IAM: we are the stack's operator
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "local")
    reset_settings()
    aws.reset_clients()
    deps.reset()
    wiring.reset()

    def restore() -> None:
        os.environ.clear()
        os.environ.update(saved)
        reset_settings()
        aws.reset_clients()
        deps.reset()
        wiring.reset()

    return restore


def postgres_env() -> tuple[dict[str, str], Callable[[], None]]:
    """A throwaway database on scripts/postgres.sh's server (started if needed), migrated: the stack's
    environment for it, and the cleanup (drop it; stop the server if this started it)."""
    import psycopg

    root = project_root()
    was_running = (
        subprocess.run(
            ["bash", "-c", "pg_isready -h 127.0.0.1 -p ${BIANJIE_PG_PORT:-54329}"], capture_output=True
        ).returncode
        == 0
    )
    out = subprocess.run([str(root / "scripts" / "postgres.sh")], capture_output=True, text=True, check=True)
    admin_dsn = out.stdout.strip().splitlines()[-1]
    db = f"paybench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    dsn = admin_dsn.rsplit("/", 1)[0] + f"/{db}"
    subprocess.run(
        [str(Path(sys.executable).parent / "bianjie"), "db", "migrate", "--dsn", dsn],
        capture_output=True,
        check=True,
        cwd=root,
    )

    def cleanup() -> None:
        with psycopg.connect(admin_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        if not was_running:
            subprocess.run([str(root / "scripts" / "postgres.sh"), "stop"], capture_output=True)

    return {"BIANJIE_DOCUMENTS": "postgres", "BIANJIE_POSTGRES_DSN": dsn, "BENCH_DATABASE": db}, cleanup


def use_local_keys(tmp: Path) -> Path:
    """This process, and every process it starts from now on (the serve workers, the stand-in), keep their
    keys on premises: ``BIANJIE_KEYS=local`` (``bianjie.kit.keys.LocalKeyPort``, an SM4 master key in a
    0600 file; SM4 data keys wrapped under it), the blind-index key wrapped under that master key, and the
    channels' SM2 keys field-encrypted through it. No KMS (the emulator) is asked for anything after this.

    What the local stack seeded under its KMS master key (pay's channel credentials, the webhook key,
    the stand-ins' identities) cannot be read under the local key: it is removed here and provisioned
    again, under the local key, by the next ``wiring.channel_configs()``. Call before agreements are
    signed (their account numbers are encrypted with the key port in force then). Returns the key file."""
    import base64

    from bianjie.kit import aws, deps
    from bianjie.kit.config import reset_settings
    from bianjie.kit.keys import LocalKeyPort
    from bianjie.pay import wiring
    from bianjie.pay.models import Channel

    master = LocalKeyPort.new_master_key()
    key_file = tmp / "master.key"
    key_file.touch(mode=0o600)
    key_file.write_text(master.hex())
    blind = LocalKeyPort(master).wrap(secrets.token_bytes(32))
    os.environ.update(
        {
            "BIANJIE_KEYS": "local",
            "BIANJIE_MASTER_KEY_FILE": str(key_file),
            "BIANJIE_BLIND_INDEX_KEY": base64.b64encode(blind).decode(),
        }
    )
    reset_settings()
    aws.reset_clients()
    deps.reset()
    wiring.reset()
    store = deps.documents()
    pay_table, standin_table = deps.table("PAY_TABLE"), deps.table("PAY_STANDIN_TABLE")
    for name in [f"CHANNEL#{c.value}" for c in Channel] + ["WEBHOOK_KEY"]:
        store.delete(pay_table, {"pk": "CONFIG", "sk": name})
    for channel in Channel:
        store.delete(standin_table, {"pk": f"CONFIG#{channel.value}", "sk": "CONFIG"})
    return key_file


def outbox_pending(service: str = "pay") -> int:
    """How many of ``service``'s outbox intents are still PENDING (what its relay has yet to send)."""
    from bianjie.kit import deps
    from bianjie.kit.documents.port import KeyCond

    table, store = deps.table("OUTBOX_TABLE"), deps.documents()
    count, cursor = 0, None
    while True:
        page = store.query(table, KeyCond.of("pending", service), index="by_pending", limit=500, cursor=cursor)
        count += len(page.items)
        cursor = page.cursor
        if not cursor:
            return count
