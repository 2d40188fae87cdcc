"""``bianjie identity ...``: walk the provider's flows against the running local stack.

bianjie identity login [--client C] [--upstream U] [--who W]   log in as a demo person (or staff) through the
                                                              stand-in IdP, as client C; print the tokens
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def _clients(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from bianjie_dev.cli.main import load_deployment, stack_file

    deployment = load_deployment(args)
    assert deployment is not None and deployment.gateway_url
    path = Path(stack_file(args)).parent / "identity" / "clients.json"
    if not path.is_file():
        raise SystemExit(f"no demo clients at {path}: start the stack with `make run`")
    return deployment.gateway_url, json.loads(path.read_text())


def cmd_login(args: argparse.Namespace) -> int:
    from bianjie_dev.identity.client import login

    gateway, clients = _clients(args)
    client = clients.get(args.client)
    if client is None:
        raise SystemExit(f"unknown demo client {args.client}; known: {', '.join(clients)}")
    result = login(
        gateway,
        args.client,
        client["redirect_uri"],
        client_secret=client["secret"],
        upstream=args.upstream,
        who=args.who,
    )
    print(json.dumps({"id_token_claims": result.id_claims, **result.token}, ensure_ascii=False, indent=2))
    return 0


def register(subparsers: Any) -> None:
    identity = subparsers.add_parser("identity", help="the platform OIDC provider (申康统一认证)").add_subparsers(
        dest="command", required=True
    )
    p = identity.add_parser("login", help="log in through a stand-in IdP as a demo client; print the tokens")
    p.add_argument("--client", default="demo-hospital-web")
    p.add_argument(
        "--upstream", default="suishenban", choices=["suishenban", "yiwangtongban", "wechat", "alipay", "directory"]
    )
    p.add_argument("--who", default="zhangsan", help="demo person: zhangsan, lisi; staff: doctor, pharmacist, admin")
    p.add_argument("--stack", help="path of a stack.json (default: .local/stack.json)")
    p.set_defaults(func=cmd_login)
