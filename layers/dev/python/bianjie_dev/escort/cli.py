"""`bianjie escort ...`: the SMS stand-in's outbox, and a guide event that moves the demo visit."""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import datetime
from typing import Any

from bianjie.kit.timefmt import BEIJING


def _use(args: argparse.Namespace) -> None:
    from bianjie_dev.cli.main import use_deployment

    use_deployment(args)


def cmd_outbox(args: argparse.Namespace) -> int:
    _use(args)
    from bianjie.escort.wiring import escort_service
    from bianjie.kit.actor import Actor

    rows = escort_service().standin_outbox(Actor.system("cli.escort"), args.limit)
    for m in reversed(rows):
        print(f"{m['at']}  {m['to']}  {m['template']:<18} {m['text']}")
    return 0


def next_event(visit: str, position: int | None, kind: str) -> dict[str, Any]:
    now = datetime.now(BEIJING).replace(microsecond=0).isoformat()
    event: dict[str, Any] = {
        "event_id": f"{visit}-escort-{uuid.uuid4().hex[:8]}",
        "type": kind,
        "visit_id": visit,
        "occurred_at": now,
        "data": {},
    }
    if kind == "queue.updated":
        event["data"] = {"queue_position": position or 0}
    if kind == "report.ready":
        event["data"] = {"report_id": f"{visit}-R9", "report_name": "血常规报告"}
    return {"events": [event]}


def cmd_next_event(args: argparse.Namespace) -> int:
    print(json.dumps(next_event(args.visit, args.position, args.type), ensure_ascii=False))
    return 0


def _deployment_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stack", help="stack.json of a local stack (default: .local/stack.json)")
    p.add_argument("--aws-endpoint", help="AWS endpoint (another deployment)")
    p.add_argument("--region")
    p.add_argument("--table", nargs=2, action="append", metavar=("ENV_NAME", "TABLE"))


def register(subparsers: Any) -> None:
    escort = subparsers.add_parser("escort", help="accompanied visits (云陪诊): SMS outbox, demo events")
    sub = escort.add_subparsers(dest="command", required=True)
    p = sub.add_parser("outbox", help="what the SMS stand-in delivered today (links and phone codes)")
    p.add_argument("--limit", type=int, default=20)
    _deployment_flags(p)
    p.set_defaults(func=cmd_outbox)
    p = sub.add_parser(
        "next-event",
        help="a guide event for a visit, for POST /guide/events "
        "(pipe into: bianjie request --app demo-hospital POST /guide/events --data -)",
    )
    p.add_argument("--visit", default="V-DEMO-TODAY")
    p.add_argument("--type", default="queue.updated", choices=("queue.updated", "report.ready", "visit.done"))
    p.add_argument("--position", type=int, help="patients ahead (queue.updated)")
    p.set_defaults(func=cmd_next_event)
