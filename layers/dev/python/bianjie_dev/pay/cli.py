"""``bianjie pay ...``: operator and developer commands for the pay service.

bianjie pay token PATIENT_ID                 a patient bearer token (local stack: to try the app API)
bianjie pay reconcile [--day D|today]        run the reconciliation now and print the report
bianjie pay report --day D                   print a stored reconciliation report
bianjie pay outbox [--relay]                 webhook intents not yet queued; --relay queues the due ones now
bianjie pay standin tamper OUT_TRADE_NO AMOUNT   STAND-IN: make the channel's bill disagree
bianjie pay standin phantom --channel C --amount N  STAND-IN: a trade only the channel has
bianjie pay standin forget OUT_TRADE_NO        STAND-IN: drop a trade from the channel's bill
bianjie pay standin bank-terminate PATIENT_ID AGREEMENT_ID   STAND-IN: 银联主动解约 + its callback
"""

from __future__ import annotations

import argparse
import json
from typing import Any

DIFF_KINDS = ("missing_local", "missing_remote", "amount_mismatch")


def _use(args: argparse.Namespace) -> None:
    from bianjie.pay import wiring

    from bianjie_dev.cli.main import use_deployment

    use_deployment(args)
    wiring.reset()


def _flags(p: argparse.ArgumentParser) -> None:
    from bianjie_dev.cli.main import _deployment_flags

    _deployment_flags(p)


def _day(value: str | None) -> str:
    import time

    from bianjie.kit.timefmt import beijing_day
    from bianjie.pay.reconcile import previous_day

    if value in (None, "", "yesterday"):
        return previous_day()
    if value == "today":
        return beijing_day(time.time())
    return str(value)


def cmd_token(args: argparse.Namespace) -> int:
    from bianjie_dev.cli.tokens import for_cli, issue_token

    print(issue_token(for_cli(args), args.patient_id, "patient", ["patient"], ttl_seconds=args.ttl))
    return 0


def _print_report(report: dict[str, Any]) -> None:
    print(f"reconciliation {report['day']}: {'clean' if report.get('clean') else 'DIFFERENCES'}")
    for channel, part in sorted(report.get("channels", {}).items()):
        counts = "  ".join(f"{kind} {len(part.get(kind, []))}" for kind in DIFF_KINDS)
        sizes = f"ours {part.get('ours', 0):>4}  theirs {part.get('theirs', '-'):>4}"
        print(f"  {channel:<13} bill {part['bill']:<13} {sizes}  {counts}")
        for kind in DIFF_KINDS:
            for row in part.get(kind, []):
                print(f"    {kind}: {json.dumps(row, ensure_ascii=False)}")
    if report.get("location"):
        print(f"  report: {report['location']}")
    print(json.dumps({"day": report["day"], "clean": report.get("clean"), **report.get("totals", {})}))


def cmd_reconcile(args: argparse.Namespace) -> int:
    _use(args)
    from bianjie.pay import wiring

    report = wiring.reconciler().run(_day(args.day))
    _print_report(report)
    return 0 if report["clean"] else 3


def cmd_report(args: argparse.Namespace) -> int:
    _use(args)
    from bianjie.pay import wiring

    report = wiring.report_sink().read(_day(args.day))
    if report is None:
        print(f"no report for {_day(args.day)}")
        return 1
    _print_report(report)
    return 0


def cmd_outbox(args: argparse.Namespace) -> int:
    _use(args)
    import time

    from bianjie.pay import wiring
    from bianjie.pay.models import now_iso

    if args.relay:
        counts = wiring.webhook_outbox().relay()
        print(json.dumps(counts))
        return 0 if counts["failed"] == 0 else 1
    # everything still PENDING, due or not (the relay takes an intent once its grace period is over)
    pending = wiring.pay_store().outbox_due(time.time() + 10 * 365 * 86400, limit=args.limit)
    for item in pending:
        event = item["event"]
        print(
            f"{item['event_id']}  {event['type']:<17} created {now_iso(float(item['created_at']))}"
            f"  relay attempts {item.get('relay_attempts', 0)}"
        )
    print(json.dumps({"pending": len(pending)}))
    return 0


def _standin(channel: str) -> Any:
    from bianjie.pay import wiring
    from bianjie.pay.models import Channel

    wiring.channel_configs()
    return wiring.standins()[Channel(channel)]


def _channel_of(out_trade_no: str) -> str:
    from bianjie.pay import wiring
    from bianjie.pay.states import charge_id_of

    charge = wiring.pay_store().charge(charge_id_of(out_trade_no))
    attempt = charge.attempt_by_trade(out_trade_no) if charge else None
    if attempt is None:
        raise SystemExit(f"no attempt {out_trade_no} in our records")
    return attempt.channel.value


def cmd_standin(args: argparse.Namespace) -> int:
    _use(args)
    if args.action == "tamper":
        _standin(_channel_of(args.out_trade_no)).tamper_amount(args.out_trade_no, args.amount)
        print(f"stand-in ledger: {args.out_trade_no} now says {args.amount}")
    elif args.action == "forget":
        _standin(_channel_of(args.out_trade_no)).forget(args.out_trade_no)
        print(f"stand-in ledger: {args.out_trade_no} dropped from the bill")
    elif args.action == "phantom":
        print(f"stand-in ledger: phantom trade {_standin(args.channel).add_phantom(args.amount)}")
    elif args.action == "bank-terminate":
        from bianjie.pay import wiring

        agreement = wiring.pay_store().agreement(args.patient_id, args.agreement_id)
        if agreement is None:
            raise SystemExit("no such agreement")
        number = wiring.agreements().agreement_no(agreement)
        _standin(agreement.channel.value).bank_terminate(number)
        print(f"stand-in {agreement.channel.value}: agreement terminated by the bank; callback queued")
    return 0


def register(subparsers: Any) -> None:
    pay = subparsers.add_parser("pay", help="credit pay-later (医保信用就医无感支付)").add_subparsers(
        dest="command", required=True
    )
    p = pay.add_parser("token", help="a patient bearer token (to call the agreement API)")
    p.add_argument("patient_id")
    p.add_argument("--ttl", type=int, default=3600)
    _flags(p)
    p.set_defaults(func=cmd_token)

    p = pay.add_parser("reconcile", help="reconcile a day now (default yesterday, Beijing); exit 3 on differences")
    p.add_argument("--day", help="YYYY-MM-DD, 'today' or 'yesterday'")
    _flags(p)
    p.set_defaults(func=cmd_reconcile)

    p = pay.add_parser("report", help="print a stored reconciliation report")
    p.add_argument("--day")
    _flags(p)
    p.set_defaults(func=cmd_report)

    p = pay.add_parser("outbox", help="hospital webhook intents not yet on the webhook queue")
    p.add_argument("--relay", action="store_true", help="queue the due ones now (what the schedule does)")
    p.add_argument("--limit", type=int, default=100)
    _flags(p)
    p.set_defaults(func=cmd_outbox)

    standin = pay.add_parser("standin", help="STAND-IN channel levers (local stack only)").add_subparsers(
        dest="action", required=True
    )
    p = standin.add_parser("tamper", help="change a trade's amount on the channel's bill")
    p.add_argument("out_trade_no")
    p.add_argument("amount", type=int)
    _flags(p)
    p.set_defaults(func=cmd_standin)
    p = standin.add_parser("forget", help="drop a trade from the channel's bill")
    p.add_argument("out_trade_no")
    _flags(p)
    p.set_defaults(func=cmd_standin)
    p = standin.add_parser("phantom", help="add a trade only the channel knows")
    p.add_argument("--channel", default="UNIONPAY")
    p.add_argument("--amount", type=int, default=100)
    _flags(p)
    p.set_defaults(func=cmd_standin)
    p = standin.add_parser("bank-terminate", help="the bank ends an agreement (sends the termination callback)")
    p.add_argument("patient_id")
    p.add_argument("agreement_id")
    _flags(p)
    p.set_defaults(func=cmd_standin)
