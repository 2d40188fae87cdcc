"""`bianjie consult ...`: verify a signed report, tokens for trying the API. Reads the deployment the way
the other commands do (the local stack by default)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_verify_report(args: argparse.Namespace) -> int:
    """Recompute the report's canonical bytes from what is stored and check its SM2 signature with the
    doctor's registered key; exit 0 when it verifies, 1 when it does not."""
    from bianjie_dev.cli.main import use_deployment

    use_deployment(args)
    from bianjie.consult.wiring import service

    org, _, code = args.doctor.partition("/")
    if not code:
        raise SystemExit("--doctor is <org>/<staff code>, e.g. partner-hospital-b/B001")
    answer = service().verify_report(args.consultation_id, org, code, args.version)
    print(json.dumps(answer.model_dump(), ensure_ascii=False, indent=2))
    return 0 if answer.valid else 1


def cmd_token(args: argparse.Namespace) -> int:
    from bianjie_dev.cli.tokens import for_cli, issue_token

    roles = ["consult-admin"] if args.admin else ["doctor"]
    print(issue_token(for_cli(args), args.subject, "staff", roles, hospital=args.hospital, ttl_seconds=args.ttl))
    return 0


def cmd_standin_webhook(args: argparse.Namespace) -> int:
    """STAND-IN: what a LiveKit server would post for a room event, signed with this deployment's key."""
    from bianjie_dev.cli.main import use_deployment

    use_deployment(args)
    from bianjie_dev.consult.standins import webhook

    body, authorization = webhook(args.event, args.room, args.identity or "")
    print(json.dumps({"body": body.decode(), "authorization": authorization}))
    return 0


def _deployment_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stack", help="stack.json of a local stack (default: .local/stack.json)")
    p.add_argument("--aws-endpoint", help="AWS endpoint (another deployment)")
    p.add_argument("--region")
    p.add_argument("--table", nargs=2, action="append", metavar=("ENV_NAME", "TABLE"))


def register(subparsers: Any) -> None:
    consult = subparsers.add_parser("consult", help="MDT consultation: verify signed reports, tokens")
    sub = consult.add_subparsers(dest="command", required=True)

    p = sub.add_parser("verify-report", help="check a doctor's signed report against the registered key")
    p.add_argument("consultation_id")
    p.add_argument("--doctor", required=True, help="<org>/<staff code>")
    p.add_argument("--version", type=int, help="a version (default: the latest signed)")
    _deployment_flags(p)
    p.set_defaults(func=cmd_verify_report)

    p = sub.add_parser("standin-webhook", help="STAND-IN: a signed LiveKit webhook (room_finished ...) as JSON")
    p.add_argument("event", choices=("room_started", "room_finished", "participant_joined", "participant_left"))
    p.add_argument("room")
    p.add_argument("--identity", help="<org>/<staff code> for participant events")
    _deployment_flags(p)
    p.set_defaults(func=cmd_standin_webhook)

    p = sub.add_parser("token", help="a doctor's (or --admin) staff token for trying the API locally")
    p.add_argument("subject", help="staff code, e.g. A001")
    p.add_argument("--hospital", required=True, help="the institution's app id, e.g. demo-hospital")
    p.add_argument("--admin", action="store_true", help="role consult-admin instead of doctor")
    p.add_argument("--ttl", type=int, default=3600)
    _deployment_flags(p)
    p.set_defaults(func=cmd_token)
