"""`bianjie pages ...`: publish the built pages to a deployment's PagesWebBucket, and print fresh demo
links (local stage: a short-lived token per demo identity in each link's fragment)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def cmd_publish(args: argparse.Namespace) -> int:
    from bianjie.kit import deps
    from bianjie.pages import assets

    from bianjie_dev.cli.main import load_deployment, use_deployment

    use_deployment(args)
    dist = Path(args.dist)
    if not (dist / "home.html").is_file():
        raise SystemExit(f"{dist / 'home.html'} is missing: build the pages with `make web`")
    deployment = load_deployment(args)
    assert deployment is not None
    bucket = args.bucket or str(deployment.ref("PagesWebBucket"))
    print(json.dumps({"bucket": bucket, "files": assets.publish(deps.objects(), bucket, dist)}))
    return 0


def cmd_links(args: argparse.Namespace) -> int:
    from bianjie.kit import deps

    from bianjie_dev.cli.main import load_deployment, stack_file, use_deployment
    from bianjie_dev.cli.tokens import for_cli
    from bianjie_dev.pages.demo import doctor_fragment, identity_tokens, issuer, links

    use_deployment(args)
    deployment = load_deployment(args)
    assert deployment is not None and deployment.gateway_url, "no running local stack"
    tokens = identity_tokens(issuer(for_cli(args)), deps.blind_index().digest)
    local_dir = stack_file(args).parent  # where the stack's demos wrote (rx's demo doctor key)
    extra = {"doctor": doctor_fragment(local_dir)}
    if args.json:
        answer = {"tokens": tokens, "links": links(deployment.gateway_url, tokens, extra), "doctor": extra["doctor"]}
        print(json.dumps(answer, ensure_ascii=False))
    else:
        for url, label in links(deployment.gateway_url, tokens, extra):
            print(f"{label}\n  {url}")
    return 0


def register(subparsers: Any) -> None:
    pages = subparsers.add_parser("pages", help="the patient and staff pages").add_subparsers(
        dest="command", required=True
    )
    p = pages.add_parser("publish", help="upload web/pages/dist to PagesWebBucket")
    p.add_argument("--dist", default="web/pages/dist")
    p.add_argument("--stack", help="path of a stack.json (default: .local/stack.json)")
    p.add_argument("--bucket", help="bucket name (instead of the stack's)")
    p.set_defaults(func=cmd_publish)
    p = pages.add_parser("links", help="demo links with fresh short-lived tokens (local stack)")
    p.add_argument("--stack", help="path of a stack.json (default: .local/stack.json)")
    p.add_argument("--json", action="store_true", help="tokens and links as JSON (tests, tools)")
    p.set_defaults(func=cmd_links)
