"""The on-premises entry: serve some (or all) functions of the template over HTTP, configured by the environment.

A Knative Service runs ``python -m bianjie.runtime.serve --function F --port $PORT`` in each function's
container; the environment (tables, endpoints, keys) comes from the platform, not from a local stack.
It needs only the core layer and the on-premises requirements (``requirements/onprem.txt``), never the
development package; ``bianjie serve`` (the developer CLI) runs the same code.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path


def project_root(start: Path | None = None) -> Path:
    """The nearest folder at or above ``start`` (default: the working directory) holding template.yaml."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "template.yaml").is_file():
            return candidate
    return here


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--function", action="append", help="logical id to serve (repeatable; default all)")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--threads", type=int, default=1, help="handler threads (Knative containerConcurrency)")
    parser.add_argument("--template", help="default: template.yaml of the working directory or a parent")
    parser.add_argument("--stage", help="the template's Stage (default: $BIANJIE_STAGE, else the template's default)")


def stage_parameters(args: argparse.Namespace) -> dict[str, str] | None:
    """The template parameters of the stage served (its Conditions decide which resources exist)."""
    stage = getattr(args, "stage", None) or os.environ.get("BIANJIE_STAGE")
    return {"Stage": stage} if stage else None


def run(args: argparse.Namespace) -> int:
    from bianjie.kit.logging import configure_logging
    from bianjie.runtime.gateway import Gateway, serve
    from bianjie.runtime.invoke import Function
    from bianjie.runtime.template import load_template

    configure_logging(os.environ.get("BIANJIE_LOG_LEVEL", "INFO"))
    logging.getLogger("botocore").setLevel(logging.WARNING)
    template = load_template(
        Path(args.template) if args.template else project_root() / "template.yaml", stage_parameters(args)
    )
    wanted = set(args.function or [f.logical_id for f in template.functions])
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
    trusted = [c for c in os.environ.get("BIANJIE_TRUSTED_PROXIES", "").split(",") if c]
    gateway = Gateway(
        functions, stage=os.environ.get("BIANJIE_STAGE", "onprem"), trusted_proxies=trusted, max_workers=args.threads
    )
    print(f"serving {', '.join(sorted(wanted))} on http://{args.host}:{args.port}", flush=True)
    serve(gateway, args.host, args.port).run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bianjie.runtime.serve", description="serve functions of template.yaml over HTTP"
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
