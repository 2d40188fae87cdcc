"""The local stack behind ``make run``: moto on loopback, every resource, demo data, gateway, pump, scheduler.

One process serves all functions; moto's server runs beside it as a child process so the two do not
share a GIL. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from bianjie.kit.config import LOCAL_AWS_PORT, LOCAL_GATEWAY_PORT, LOCAL_REGION
from bianjie.runtime.deployment import Deployment
from bianjie.runtime.gateway import Gateway, serve
from bianjie.runtime.invoke import Function
from bianjie.runtime.pump import EventPump
from bianjie.runtime.scheduler import Scheduler
from bianjie.runtime.template import Template, load_template

from bianjie_dev.runtime.provision import Provisioner

log = logging.getLogger("bianjie.stack")

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "local",
    "AWS_SECRET_ACCESS_KEY": "local",
    "AWS_SESSION_TOKEN": "local",
}


@dataclass
class StackOptions:
    root: Path
    template: Path
    host: str = "127.0.0.1"
    port: int = LOCAL_GATEWAY_PORT
    aws_port: int = LOCAL_AWS_PORT
    region: str = LOCAL_REGION
    stack_name: str = "bianjie"
    seed: bool = True
    retry_delay: int | None = None
    state_dir: Path | None = None

    @classmethod
    def from_env(cls, root: Path, template: Path | None = None) -> StackOptions:
        retry = os.environ.get("BIANJIE_RETRY_DELAY")
        state = os.environ.get("BIANJIE_STATE_DIR")
        return cls(
            root=root,
            template=template or root / "template.yaml",
            port=int(os.environ.get("BIANJIE_PORT", LOCAL_GATEWAY_PORT)),
            aws_port=int(os.environ.get("BIANJIE_AWS_PORT", LOCAL_AWS_PORT)),
            region=os.environ.get("BIANJIE_REGION", LOCAL_REGION),
            retry_delay=int(retry) if retry else None,
            state_dir=Path(state) if state else None,
        )

    @property
    def local_dir(self) -> Path:
        return self.state_dir or self.root / ".local"


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except Exception:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout:.0f}s") from None
            time.sleep(0.1)


def _die_with_parent() -> None:
    """Linux: moto's server goes down with the stack even if the stack is killed outright."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def start_moto(host: str, port: int) -> subprocess.Popen[bytes]:
    if not port_free(host, port):
        raise SystemExit(f"port {port} on {host} is taken; set BIANJIE_AWS_PORT to another port")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bianjie_dev.runtime.motoserver", "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_die_with_parent,
    )
    wait_http(f"http://{host}:{port}/moto-api/data.json", 30)
    return proc


def init_wrapped_secrets(deployment: Deployment, template: Template, session: Any) -> None:
    """The template parameters a deployment makes for itself at start: the blind-index key wrapped by the
    master key, and the token JWKS (``TokenJwks``) read from the template's KMS signing keys.
    """
    keys = [(lid, info) for lid, info in deployment.resources.items() if info["type"] == "AWS::KMS::Key"]
    if not keys:
        return
    kms = session.client("kms", endpoint_url=deployment.aws_endpoint_url)
    parameters = template.body.get("Parameters", {})
    resources = template.body.get("Resources", {})
    usage = {
        lid: (resources.get(lid, {}).get("Properties") or {}).get("KeyUsage", "ENCRYPT_DECRYPT") for lid, _ in keys
    }
    master = next((info["ref"] for lid, info in keys if usage[lid] == "ENCRYPT_DECRYPT"), None)
    if master and "BlindIndexKeyWrapped" in parameters and not deployment.parameters.get("BlindIndexKeyWrapped"):
        wrapped = kms.generate_data_key_without_plaintext(KeyId=master, NumberOfBytes=32)["CiphertextBlob"]
        deployment.parameters["BlindIndexKeyWrapped"] = base64.b64encode(wrapped).decode()
    if "TokenJwks" in parameters and not deployment.parameters.get("TokenJwks"):
        from bianjie.kit.tokenkeys import PublicKeySet, public_key_of_kms_key

        signing = [info["ref"] for lid, info in keys if usage[lid] == "SIGN_VERIFY"]
        deployment.parameters["TokenJwks"] = PublicKeySet(public_key_of_kms_key(kms, k) for k in signing).to_json()


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.template = load_template(options.template)
        self.moto: subprocess.Popen[bytes] | None = None
        self.deployment: Deployment | None = None
        self.functions: list[Function] = []
        self.pump: EventPump | None = None
        self.scheduler: Scheduler | None = None
        self.server: Any = None

    @property
    def aws_url(self) -> str:
        return f"http://{self.options.host}:{self.options.aws_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    def start(self) -> None:
        opts = self.options
        if not port_free(opts.host, opts.port):
            raise SystemExit(f"port {opts.port} on {opts.host} is taken; set BIANJIE_PORT to another port")
        for name, value in FAKE_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        os.environ.update(
            {
                "AWS_REGION": opts.region,
                "AWS_DEFAULT_REGION": opts.region,
                "BIANJIE_AWS_ENDPOINT_URL": self.aws_url,
            }
        )
        self.moto = start_moto(opts.host, opts.aws_port)
        import boto3

        session = boto3.session.Session(region_name=opts.region)
        deployment = Deployment(
            opts.stack_name, opts.region, self.aws_url, self.gateway_url, parameters=self.template.parameter_defaults()
        )
        Provisioner(self.template, deployment, session).provision()
        init_wrapped_secrets(deployment, self.template, session)
        self.deployment = deployment
        env = deployment.function_environment(self.template)
        env["BIANJIE_SERVED_FUNCTIONS"] = ",".join(f.logical_id for f in self.template.functions)
        os.environ.update(env)
        from bianjie.kit import aws, deps
        from bianjie.kit.config import reset_settings

        reset_settings()
        aws.reset_clients()
        deps.reset()
        self.functions = [
            Function(spec, opts.region, deployment.ref(spec.logical_id)) for spec in self.template.functions
        ]
        for fn in self.functions:
            fn.handler  # noqa: B018 - import every handler now: a broken one should stop the stack at start
        if opts.seed:
            from bianjie_dev.runtime.seed import seed_demo_data

            seed_demo_data(self)
        deployment.save(opts.local_dir / "stack.json")
        self.pump = EventPump(self.functions, deployment, aws.client("sqs"), retry_delay=opts.retry_delay)
        self.scheduler = Scheduler(self.functions, opts.region)
        gateway = Gateway(
            self.functions,
            stage=str(deployment.parameters.get("Stage", "local")),
            cors=((self.template.body.get("Globals") or {}).get("Api") or {}).get("Cors"),
            local_routes={
                ("GET", "/_local/status"): self._status,
                ("POST", "/_local/fire"): self._fire,
                ("POST", "/_local/invoke"): self._invoke,
            },
        )
        self.server = serve(gateway, opts.host, opts.port)
        self.pump.start()
        self.scheduler.start()

    async def _status(self, scope: dict[str, Any], body: bytes) -> tuple[int, dict[str, Any]]:
        assert self.pump and self.scheduler
        return 200, {
            "pump": {label: vars(stats) for label, stats in self.pump.stats.items()},
            "schedules": [
                {
                    "name": j.name,
                    "expression": j.event.expression,
                    "next_run": j.next_run.isoformat(),
                    "runs": j.runs,
                    "failures": j.failures,
                    "last_run": j.last_run.isoformat() if j.last_run else None,
                }
                for j in self.scheduler.jobs
            ],
        }

    async def _fire(self, scope: dict[str, Any], body: bytes) -> tuple[int, dict[str, Any]]:
        assert self.scheduler
        query = parse_qs(scope.get("query_string", b"").decode())
        name = (query.get("name") or [""])[0]
        when = None
        if query.get("time"):
            # "as of" another moment: the scheduled event carries it in "time", as EventBridge does
            when = datetime.fromisoformat(query["time"][0].replace("Z", "+00:00")).astimezone(UTC)
        try:
            job = self.scheduler.job(name)
        except KeyError as exc:
            return 404, {"error": {"code": "SCHEDULE_NOT_FOUND", "message": str(exc), "request_id": None}}
        fired = await asyncio.get_running_loop().run_in_executor(None, self.scheduler.fire, job, when)
        return 200, {"schedule": job.name, "fired": fired, "runs": job.runs, "failures": job.failures}

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        """Invoke a function directly with ``event``, as Lambda's Invoke API does (demos, tools)."""
        fn = next((f for f in self.functions if f.spec.logical_id == logical_id), None)
        if fn is None:
            raise KeyError(f"no function {logical_id} in the template")
        return fn.invoke(event)

    async def _invoke(self, scope: dict[str, Any], body: bytes) -> tuple[int, Any]:
        # The local stand-in for lambda:InvokeFunction (the operator's tools use it: `bianjie guide token`);
        # the gateway listens on loopback only, where the operator is.
        query = parse_qs(scope.get("query_string", b"").decode())
        name = (query.get("name") or [""])[0]
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            return 400, {"error": {"code": "BAD_JSON", "message": "the event is not JSON", "request_id": None}}
        try:
            result = await asyncio.get_running_loop().run_in_executor(None, self.invoke, name, event)
        except KeyError as exc:
            return 404, {"error": {"code": "FUNCTION_NOT_FOUND", "message": str(exc), "request_id": None}}
        return 200, result

    def banner(self) -> str:
        assert self.deployment
        lines = [
            "bianjie local stack is up",
            f"  gateway      {self.gateway_url}   (try {self.gateway_url}/health)",
            f"  AWS (moto)   {self.aws_url}   region {self.options.region}",
            f"  state        {self.options.local_dir / 'stack.json'}",
            f"  functions    {len(self.functions)}; schedules {len(self.scheduler.jobs) if self.scheduler else 0}; "
            f"event sources {len(self.pump.sources) if self.pump else 0}",
        ]
        partners = sorted((self.options.local_dir / "partners").glob("*.json"))
        for path in partners:
            lines.append(f"  partner      {json.loads(path.read_text())['app_id']}  ({path})")
        for url in getattr(self, "demo_urls", []):
            lines.append(f"  open         {url}")
        lines.append("  signed call  .venv/bin/bianjie request GET /partners/me --app demo-hospital")
        lines.append("Ctrl-C stops it.")
        return "\n".join(lines)

    def run_forever(self) -> None:
        assert self.server
        print(self.banner(), flush=True)
        try:
            self.server.run()
        finally:
            self.stop()

    def run_in_thread(self) -> threading.Thread:
        assert self.server
        self.server.config.install_signal_handlers = False  # type: ignore[attr-defined]
        thread = threading.Thread(target=self.server.run, name="gateway", daemon=True)
        thread.start()
        wait_http(f"{self.gateway_url}/_local/status", 30)
        return thread

    def stop(self) -> None:
        if self.scheduler:
            self.scheduler.stop()
        if self.pump:
            self.pump.stop()
        if self.server:
            self.server.should_exit = True
        if self.moto and self.moto.poll() is None:
            self.moto.send_signal(signal.SIGTERM)
            try:
                self.moto.wait(5)
            except subprocess.TimeoutExpired:
                self.moto.kill()
