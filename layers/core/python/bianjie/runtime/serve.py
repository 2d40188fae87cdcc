"""The on-premises entry: serve some (or all) functions of the template over HTTP, configured by the environment.

A Knative Service runs ``python -m bianjie.runtime.serve --function F --port $PORT --workers 1`` in each
function's container; the environment (tables, endpoints, keys) comes from the platform, not from a local
stack. It needs only the core layer and the on-premises requirements (``requirements/onprem.txt``), never
the development package; ``bianjie serve`` (the developer CLI) runs the same code.

Across cores (``--workers N``, default one per core the process may use): uvicorn's multi-process
supervisor binds the port once and starts N worker processes sharing it, so N Python interpreters (N
GILs) answer requests. Each worker builds its own gateway in its own process (``worker_app``): handlers
imported, connection pool opened (PostgreSQL: ``psycopg_pool``, one per worker) before it takes traffic.
The supervisor's signals:

- ``SIGHUP``: graceful restart. Each worker in turn is replaced: the new one is started and must answer
  its health check before the old one is sent SIGTERM; the old one stops accepting, finishes what it
  holds (up to ``--graceful-seconds``) and exits. The other workers keep serving, so nothing is refused.
- ``SIGTERM`` / ``SIGINT``: every worker drains as above, then the supervisor exits.
- ``SIGTTIN`` / ``SIGTTOU``: one worker more / fewer.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

OPTIONS_VAR = "BIANJIE_SERVE_OPTIONS"  # how the supervisor hands its options to spawned workers


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding template.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "template.yaml").is_file():
            return candidate
    return here


def default_workers() -> int:
    """One worker per core this process may run on (a container's CPU set, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--function", action="append", help="logical id to serve (repeatable; default all)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("BIANJIE_WORKERS") or 0) or None,
        help="worker processes sharing the port (default: $BIANJIE_WORKERS, else one per core)",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="handler threads per worker (Knative containerConcurrency)"
    )
    parser.add_argument(
        "--graceful-seconds", type=float, default=30.0, help="how long a stopping worker may finish its requests"
    )
    parser.add_argument(
        "--server",
        choices=("uvicorn", "granian"),
        default=os.environ.get("BIANJIE_SERVER", "uvicorn"),
        help="uvicorn (ASGI, the default) or granian (WSGI in its blocking threads: no event loop per request)",
    )
    parser.add_argument("--template", help="default: template.yaml of the working directory or a parent")
    parser.add_argument("--stage", help="the template's Stage (default: $BIANJIE_STAGE, else the template's default)")


def stage_parameters(args: argparse.Namespace) -> dict[str, str] | None:
    """The template parameters of the stage served (its Conditions decide which resources exist)."""
    stage = getattr(args, "stage", None) or os.environ.get("BIANJIE_STAGE")
    return {"Stage": stage} if stage else None


def _options(args: argparse.Namespace) -> dict[str, Any]:
    template = Path(args.template) if args.template else project_root() / "template.yaml"
    return {
        "template": str(template.resolve()),
        "functions": args.function or [],
        "stage": getattr(args, "stage", None) or os.environ.get("BIANJIE_STAGE"),
        "threads": args.threads,
    }


def build_gateway(options: dict[str, Any]) -> Any:
    """The gateway of one process: the functions wanted, their handlers imported, the documents pool open."""
    from bianjie.kit.config import settings
    from bianjie.kit.logging import configure_logging
    from bianjie.runtime.gateway import Gateway
    from bianjie.runtime.invoke import Function
    from bianjie.runtime.template import load_template

    configure_logging(os.environ.get("BIANJIE_LOG_LEVEL", "INFO"))
    logging.getLogger("botocore").setLevel(logging.WARNING)
    stage = options.get("stage")
    template = load_template(Path(options["template"]), {"Stage": stage} if stage else None)
    wanted = set(options["functions"] or [f.logical_id for f in template.functions])
    unknown = wanted - {f.logical_id for f in template.functions}
    if unknown:
        raise SystemExit(f"not in the template: {', '.join(sorted(unknown))}")
    region = os.environ.get("AWS_REGION", "cn-north-1")
    functions = [
        Function(f, region, os.environ.get("AWS_LAMBDA_FUNCTION_NAME", f.logical_id))
        for f in template.functions
        if f.logical_id in wanted
    ]
    os.environ.setdefault("BIANJIE_SERVED_FUNCTIONS", ",".join(sorted(wanted)))
    for fn in functions:
        fn.handler  # noqa: B018 - fail at start, not at the first request
    if settings().document_backend == "postgres":
        from bianjie.kit import deps

        deps.documents()  # opens this worker's pool now, not on its first request
    trusted = [c for c in os.environ.get("BIANJIE_TRUSTED_PROXIES", "").split(",") if c]
    return Gateway(
        functions,
        stage=os.environ.get("BIANJIE_STAGE", "onprem"),
        trusted_proxies=trusted,
        max_workers=int(options["threads"]),
    )


def worker_app() -> Any:
    """uvicorn's application factory in each worker process (options from the supervisor's environment)."""
    return build_gateway(json.loads(os.environ[OPTIONS_VAR]))


def worker_wsgi() -> Any:
    """granian's application factory in each worker process: the gateway as a WSGI application."""
    return build_gateway(json.loads(os.environ[OPTIONS_VAR])).wsgi


def run_granian(args: argparse.Namespace, options: dict[str, Any], workers: int) -> int:
    """The same workers under granian: its Rust side accepts and parses, each worker's ``--threads``
    blocking threads run the functions (WSGI), so no asyncio loop or thread hand-off per request.
    Signals: SIGINT/SIGTERM stop it (requests in flight finish); a worker that dies is started again."""
    from granian import Granian
    from granian.constants import Interfaces

    os.environ[OPTIONS_VAR] = json.dumps(options)
    print(f"serving on http://{args.host}:{args.port} ({workers} workers, granian)", flush=True)
    Granian(
        "bianjie.runtime.serve:worker_wsgi",
        address=args.host,
        port=args.port,
        interface=Interfaces.WSGI,
        workers=workers,
        blocking_threads=int(options["threads"]),
        backlog=2048,
        factory=True,
        respawn_failed_workers=True,
        respawn_interval=0.5,
        workers_kill_timeout=int(args.graceful_seconds),
        log_level="warning",  # type: ignore[arg-type]
        log_access=False,
    ).serve()
    return 0


def run(args: argparse.Namespace) -> int:
    from bianjie.runtime.gateway import serve, uvicorn_options

    options = _options(args)
    workers = args.workers or default_workers()
    if getattr(args, "server", "uvicorn") == "granian":
        return run_granian(args, options, workers)
    if workers == 1:
        gateway = build_gateway(options)
        print(f"serving on http://{args.host}:{args.port} (1 worker)", flush=True)
        serve(gateway, args.host, args.port, graceful_seconds=args.graceful_seconds).run()
        return 0
    import uvicorn

    from bianjie.runtime.template import load_template

    # names checked here, once; each worker imports the handlers itself (a broken one stops that worker)
    template = load_template(Path(options["template"]), stage_parameters(args))
    unknown = set(options["functions"]) - {f.logical_id for f in template.functions}
    if unknown:
        raise SystemExit(f"not in the template: {', '.join(sorted(unknown))}")
    os.environ[OPTIONS_VAR] = json.dumps(options)  # spawned workers inherit the environment
    print(f"serving on http://{args.host}:{args.port} ({workers} workers)", flush=True)
    uvicorn.run(
        "bianjie.runtime.serve:worker_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=workers,
        timeout_graceful_shutdown=int(args.graceful_seconds),
        # how long a new worker may take to import the handlers and open its pool before a restart gives
        # up on it, and how long a busy worker may take to answer the supervisor's ping: uvicorn's 5 s is
        # less than a worker's start on a loaded machine
        timeout_worker_healthcheck=60,
        **uvicorn_options(),
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bianjie.runtime.serve", description="serve functions of template.yaml over HTTP"
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
