"""`bianjie guide ...`: the outbox and notification history for operators, tokens and example events
for developers. Reads the deployment the way the other commands do (the local stack by default)."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime, timedelta
from typing import Any

from bianjie.guide.model import CST


def _use(args: argparse.Namespace) -> None:
    from bianjie_dev.cli.main import use_deployment

    use_deployment(args)


def _print(rows: Any) -> None:
    print(json.dumps(rows, ensure_ascii=False, indent=2, default=str))


def cmd_outbox(args: argparse.Namespace) -> int:
    _use(args)
    from bianjie.guide.wiring import guide_service

    rows = guide_service().outbox(visit_id=args.visit, day=args.day, limit=args.limit)
    if args.format == "table":
        print(f"{'sent_at (UTC)':<28} {'channel':<7} {'kind':<22} {'visit':<16} {'to':<14} ok  content")
        for m in sorted(rows, key=lambda r: r["sent_at"]):
            content = (
                m["content"].get("text") if m["channel"] == "sms" else json.dumps(m["content"], ensure_ascii=False)
            )
            ok = "yes" if m["accepted"] else str(m["result"].get("errcode") or m["result"].get("Code"))
            print(
                f"{m['sent_at']:<28} {m['channel']:<7} {m.get('kind') or '-':<22} {m['visit_id']:<16} "
                f"{m['to']:<14} {ok:<3} {content}"
            )
    else:
        _print(rows)
    return 0


def cmd_notifications(args: argparse.Namespace) -> int:
    _use(args)
    from bianjie.guide.wiring import guide_service

    _print(guide_service().notifications(args.visit))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from bianjie_dev.cli.tokens import for_cli, issue_token

    kind = "staff" if args.staff else "patient"
    print(issue_token(for_cli(args), args.subject, kind, args.role or [], ttl_seconds=args.ttl))
    return 0


def cmd_example_day(args: argparse.Namespace) -> int:
    from bianjie_dev.guide.examples import example_day

    day = date.fromisoformat(args.day) if args.day else (datetime.now(CST) + timedelta(days=1)).date()
    events = example_day(args.visit, args.patient, day, openid=args.openid, phone=args.phone)
    body = {"events": events[args.first - 1 : args.last]}
    text = json.dumps(body, ensure_ascii=False, indent=2)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text + "\n")
    return 0


def _deployment_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stack", help="stack.json of a local stack (default: .local/stack.json)")
    p.add_argument("--aws-endpoint", help="AWS endpoint (another deployment)")
    p.add_argument("--region")
    p.add_argument(
        "--table",
        nargs=2,
        action="append",
        metavar=("ENV_NAME", "TABLE"),
        help="physical table name, e.g. --table GUIDE_OUTBOX_TABLE bianjie-prod-GuideOutboxTable",
    )


def register(subparsers: Any) -> None:
    guide = subparsers.add_parser("guide", help="butler guidance: outbox, notifications, tokens, example events")
    sub = guide.add_subparsers(dest="command", required=True)

    p = sub.add_parser("outbox", help="what the WeChat/SMS stand-ins recorded (today, a day, or a visit)")
    p.add_argument("--visit")
    p.add_argument("--day", help="Beijing date YYYY-MM-DD (default today)")
    p.add_argument("--limit", type=int, default=100)
    p.add_argument("--format", choices=("table", "json"), default="table")
    _deployment_flags(p)
    p.set_defaults(func=cmd_outbox)

    p = sub.add_parser("notifications", help="a visit's notifications with status history and reasons")
    p.add_argument("--visit", required=True)
    _deployment_flags(p)
    p.set_defaults(func=cmd_notifications)

    p = sub.add_parser("token", help="a patient (or --staff) token for trying the API locally")
    p.add_argument("subject", help="patient id, e.g. p-1001 (or a staff id with --staff)")
    p.add_argument("--staff", action="store_true")
    p.add_argument("--role", action="append", help="staff role, e.g. guide-operator (repeatable)")
    p.add_argument("--ttl", type=int, default=3600)
    _deployment_flags(p)
    p.set_defaults(func=cmd_token)

    p = sub.add_parser("example-day", help="a day of visit events as JSON, ready for POST /guide/events")
    p.add_argument("--visit", default="V-DEMO-1")
    p.add_argument("--patient", default="p-demo-1")
    p.add_argument("--day", help="Beijing date of the visit (default tomorrow); booked the day before 10:00")
    p.add_argument("--openid", default="oWx_demo_patient")
    p.add_argument("--phone", default="13800138000")
    p.add_argument("--first", type=int, default=1, help="first event number (1-11)")
    p.add_argument("--last", type=int, default=11, help="last event number (1-11)")
    p.add_argument("--out", help="write to a file instead of stdout")
    p.set_defaults(func=cmd_example_day)
