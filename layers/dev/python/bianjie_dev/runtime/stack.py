"""The local stack behind ``make run``: moto on loopback, every resource, demo data, gateway, pump, scheduler.

One process serves all functions; moto's server runs beside it as a child process so the two do not
share a GIL. Everything listens on 127.0.0.1 only.

Each function is isolated as on Lambda: it sees only its own environment (what template.yaml declares
for it, what Lambda sets, and the few local-platform variables in ``LOCAL_PLATFORM``), and it calls the
emulator with its own role's credentials: the roles come from the SAM translator's output
(``runtime.iam``), moto enforces IAM, and the door (``runtime.door``) checks every call's action and
resource. The stack itself (provisioning, seeding, the pump, the CLI) is the operator principal.
``BIANJIE_IAM=0`` turns the IAM part off (every function then calls as the operator).
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

from bianjie.kit.config import LOCAL_AWS_PORT, LOCAL_GATEWAY_PORT, LOCAL_REGION, FunctionScope, function_scope
from bianjie.runtime.deployment import Deployment
from bianjie.runtime.gateway import Gateway, serve
from bianjie.runtime.invoke import Function, lambda_environment
from bianjie.runtime.pump import EventPump
from bianjie.runtime.scheduler import Scheduler
from bianjie.runtime.template import Template, load_template

from bianjie_dev.runtime.provision import Provisioner

log = logging.getLogger("bianjie.stack")

# What the local platform adds to every function's environment (none of it exists on Lambda): where the
# emulator and the gateway are, which functions this gateway serves, where stand-ins keep local state.
LOCAL_PLATFORM = ("BIANJIE_AWS_ENDPOINT_URL", "BIANJIE_SERVED_FUNCTIONS", "BIANJIE_STATE_DIR", "BIANJIE_PORT")
# developer settings of the whole stack, when set: the log level, and the documents backend (the on-premises
# flavour, PostgreSQL, is a property of the whole stack: the operator's seeding and every function must agree)
PASSED_THROUGH = (
    "BIANJIE_LOG_LEVEL",
    "BIANJIE_DOCUMENTS",
    "BIANJIE_POSTGRES_DSN",
    "BIANJIE_POSTGRES_POOL_MAX",
    "BIANJIE_POSTGRES_POOL_MIN",
)


def operator_credentials() -> dict[str, str]:
    """Fresh keys for the stack's operator principal (a moto IAM user allowed everything)."""
    import secrets
    import string

    alphabet = string.ascii_uppercase + string.digits
    return {
        "AWS_ACCESS_KEY_ID": "AKIA" + "".join(secrets.choice(alphabet) for _ in range(16)),
        "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
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
    seed_only: tuple[str, ...] | None = None  # these services' demo data (and what they need), not all
    retry_delay: int | None = None
    state_dir: Path | None = None
    iam: bool = True
    # the emulator outlives this process (it is not killed with it, nor stopped by stop()): a later stack
    # can ``resume`` on it, as functions on AWS restart on stores that survived them (fault injection)
    keep_emulator: bool = False
    # attach to the emulator a ``keep_emulator`` stack left running with this state dir: its stack.json
    # names the resources; nothing is provisioned or seeded, the roles are assumed again
    resume: bool = False

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
            iam=os.environ.get("BIANJIE_IAM", "1") not in ("0", "false", "off"),
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


def start_moto(
    host: str,
    port: int,
    *,
    region: str = LOCAL_REGION,
    operator: dict[str, str] | None = None,
    detached: bool = False,
) -> subprocess.Popen[bytes]:
    """moto's server; with ``operator`` credentials, IAM enforced and that operator created first.
    ``detached``: in a session of its own and not tied to this process's life (``keep_emulator``)."""
    if not port_free(host, port):
        raise SystemExit(f"port {port} on {host} is taken; set BIANJIE_AWS_PORT to another port")
    args = [sys.executable, "-m", "bianjie_dev.runtime.motoserver", "-H", host, "-p", str(port)]
    env = dict(os.environ)
    if operator:
        args += ["--iam", "--region", region]
        env["BIANJIE_ADMIN_ACCESS_KEY_ID"] = operator["AWS_ACCESS_KEY_ID"]
        env["BIANJIE_ADMIN_SECRET_ACCESS_KEY"] = operator["AWS_SECRET_ACCESS_KEY"]
    proc = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=None if detached else _die_with_parent,
        start_new_session=detached,
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
        self.operator: FunctionScope | None = None
        self.started_seconds: float = 0.0

    @property
    def aws_url(self) -> str:
        return f"http://{self.options.host}:{self.options.aws_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.options.host}:{self.options.port}"

    def start(self) -> None:
        began = time.perf_counter()
        opts = self.options
        if not port_free(opts.host, opts.port):
            raise SystemExit(f"port {opts.port} on {opts.host} is taken; set BIANJIE_PORT to another port")
        state = opts.local_dir / "stack.json"
        if opts.resume:
            deployment = self._resumed(state)
            operator = dict(deployment.admin_credentials)
        else:
            operator = operator_credentials()
            self.moto = start_moto(
                opts.host,
                opts.aws_port,
                region=opts.region,
                operator=operator if opts.iam else None,
                detached=opts.keep_emulator,
            )
            if opts.keep_emulator:
                emulator = {"pid": self.moto.pid, "url": self.aws_url}
                (opts.local_dir / "emulator.json").write_text(json.dumps(emulator), encoding="utf-8")
        import boto3

        session = boto3.session.Session(
            aws_access_key_id=operator["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=operator["AWS_SECRET_ACCESS_KEY"],
            region_name=opts.region,
        )
        if not opts.resume:
            deployment = Deployment(
                opts.stack_name,
                opts.region,
                self.aws_url,
                self.gateway_url,
                parameters=self.template.parameter_defaults(),
            )
            deployment.admin_credentials = dict(operator)
            Provisioner(self.template, deployment, session).provision()
            init_wrapped_secrets(deployment, self.template, session)
        self.deployment = deployment
        platform = {
            "AWS_REGION": opts.region,
            "AWS_DEFAULT_REGION": opts.region,
            "BIANJIE_AWS_ENDPOINT_URL": self.aws_url,
            "BIANJIE_SERVED_FUNCTIONS": ",".join(f.logical_id for f in self.template.functions),
            "BIANJIE_STATE_DIR": str(opts.local_dir),
            "BIANJIE_PORT": str(opts.port),
            **{name: os.environ[name] for name in PASSED_THROUGH if os.environ.get(name)},
        }
        roles_began = time.perf_counter()
        credentials = self._function_credentials(session, deployment) if opts.iam else {}
        log.info("roles", extra={"functions": len(credentials), "seconds": round(time.perf_counter() - roles_began, 2)})
        resolver = deployment.resolver()
        self.functions = []
        for spec in self.template.functions:
            name = deployment.ref(spec.logical_id)
            environment = {
                **deployment.environment_of(spec, resolver),
                **{k: platform[k] for k in LOCAL_PLATFORM},
                **{k: v for k, v in platform.items() if k in PASSED_THROUGH},
                **lambda_environment(spec, opts.region, name, credentials.get(spec.logical_id, operator)),
            }
            self.functions.append(Function(spec, opts.region, name, environment))
        # the operator (seeding, the pump) works with every function's variables and its own credentials
        self.operator = FunctionScope(
            "operator", {**os.environ, **deployment.function_environment(self.template), **platform, **operator}
        )
        for fn in self.functions:
            fn.handler  # noqa: B018 - import every handler now: a broken one should stop the stack at start
        from bianjie.kit import aws

        with function_scope(self.operator):
            if opts.seed and not opts.resume:  # a resumed stack's demo data is in the emulator already
                from bianjie_dev.runtime.seed import seed_demo_data

                seed_demo_data(self, self.options.seed_only)
            sqs = aws.client("sqs")
        deployment.save(state)
        state.chmod(0o600)  # it holds the operator's keys to the local emulator
        self.pump = EventPump(self.functions, deployment, sqs, retry_delay=opts.retry_delay)
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
        self.started_seconds = time.perf_counter() - began
        log.info("started", extra={"seconds": round(self.started_seconds, 2), "iam": opts.iam})

    def _resumed(self, state: Path) -> Deployment:
        """The deployment a ``keep_emulator`` stack left in ``state``, on an emulator still answering."""
        opts = self.options
        if not state.exists():
            raise SystemExit(f"--resume: no {state} (start a stack with --keep-emulator first)")
        deployment = Deployment.load(state)
        if deployment.aws_endpoint_url != self.aws_url:
            raise SystemExit(
                f"--resume: {state} is of the emulator at {deployment.aws_endpoint_url}, not {self.aws_url}"
            )
        wait_http(f"{self.aws_url}/moto-api/data.json", 10)
        deployment.gateway_url = self.gateway_url
        log.info("resuming", extra={"state": str(state), "emulator": self.aws_url, "iam": opts.iam})
        return deployment

    def _function_credentials(self, session: Any, deployment: Deployment) -> dict[str, dict[str, str]]:
        """Each function's role from the translated template, created in moto's IAM (unless a resumed
        stack's emulator has it already) and assumed."""
        from bianjie.runtime import sam

        from bianjie_dev.runtime.iam import admin_arn, provision_roles, role_plans
        from bianjie_dev.runtime.motoserver import ADMIN_USER

        plans = []
        for stack in self.template.stacks:  # each nested stack's functions and roles, in the root's terms
            plans += role_plans(sam.translate_stack(stack, region=deployment.region), deployment)
        names = {fn.logical_id: str(deployment.ref(fn.logical_id)) for fn in self.template.functions}
        return provision_roles(
            plans,
            session,
            self.aws_url,
            admin_arn(deployment.region, ADMIN_USER),
            names,
            create=not self.options.resume,
        )

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
        self.server.config.install_signal_handlers = False
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
        if self.moto and self.moto.poll() is None and not self.options.keep_emulator:
            self.moto.send_signal(signal.SIGTERM)
            try:
                self.moto.wait(5)
            except subprocess.TimeoutExpired:
                self.moto.kill()
