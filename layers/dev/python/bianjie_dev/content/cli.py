"""`bianjie content ...`: staff tokens for trying the workflow, what the official-account stand-in
published, an item's sealed history checked. Reads the deployment the way the other commands do (the
local stack by default)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _use(args: argparse.Namespace) -> None:
    from bianjie_dev.cli.main import use_deployment

    use_deployment(args)


def cmd_token(args: argparse.Namespace) -> int:
    from bianjie_dev.cli.tokens import for_cli, issue_token

    roles = args.role or ["editor"]
    print(issue_token(for_cli(args), args.subject, "staff", roles, ttl_seconds=args.ttl, hospital=args.hospital))
    return 0


def cmd_oa_published(args: argparse.Namespace) -> int:
    _use(args)
    from bianjie.kit import deps

    from bianjie_dev.content.wechat_standin import WechatApiStandIn

    rows = WechatApiStandIn(deps.documents(), deps.table("CONTENT_TABLE")).published()
    for row in sorted(rows, key=lambda r: r["at"]):
        for article in row["articles"]:
            print(f"{row['publish_id']}  {article['title']}  {article['content_source_url']}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    _use(args)
    from bianjie.content.wiring import content_service

    ok = content_service().verify_seals(args.item_id)
    print(json.dumps({"item": args.item_id, "seals_intact": ok}))
    return 0 if ok else 1


def cmd_publish_player(args: argparse.Namespace) -> int:
    _use(args)

    from bianjie.content.wiring import site_bucket
    from bianjie.kit import deps

    from bianjie_dev.runtime.child import project_root

    player = project_root() / "web" / "content" / "dist" / "assets" / "player.js"
    if not player.is_file():
        print("web/content/dist/assets/player.js is missing: run `make web`")
        return 1
    deps.objects().put(
        site_bucket(), "assets/player.js", player.read_bytes(), content_type="text/javascript; charset=utf-8"
    )
    print(f"published {player} to {site_bucket()}/assets/player.js")
    return 0


def _deployment_flags(p: Any) -> None:
    p.add_argument("--stack", help="stack.json of a local stack (default: .local/stack.json)")
    p.add_argument("--aws-endpoint", help="AWS endpoint (another deployment)")
    p.add_argument("--region")


def register(subparsers: Any) -> None:
    content = subparsers.add_parser("content", help="content platform: staff tokens, OA stand-in, seal checks")
    sub = content.add_subparsers(dest="command", required=True)
    p = sub.add_parser("token", help="a staff token (roles: editor, reviewer, chief-editor, or editor-<column>)")
    p.add_argument("subject", help="staff id, e.g. ed-1")
    p.add_argument("--role", action="append", help="repeatable; default editor")
    p.add_argument("--hospital", default="ruijin")
    p.add_argument("--ttl", type=int, default=3600)
    _deployment_flags(p)
    p.set_defaults(func=cmd_token)
    p = sub.add_parser("oa-published", help="what the official-account stand-in published (freepublish)")
    _deployment_flags(p)
    p.set_defaults(func=cmd_oa_published)
    p = sub.add_parser("publish-player", help="put the built player and console (make web) into the site bucket")
    _deployment_flags(p)
    p.set_defaults(func=cmd_publish_player)
    p = sub.add_parser("verify", help="check an item's sealed workflow steps (HMAC-SM3 chain)")
    p.add_argument("item_id")
    _deployment_flags(p)
    p.set_defaults(func=cmd_verify)
