"""``bianjie pay ...``: operator and developer commands for the pay service.

bianjie pay token PATIENT_ID                 a patient bearer token (local stack: to try the app API)
bianjie pay reconcile [--day D|today]        run the reconciliation now and print the report
bianjie pay report --day D                   print a stored reconciliation report
bianjie pay outbox [--relay]                 webhooks and events not yet sent; --relay sends the due ones now
bianjie pay standin tamper OUT_TRADE_NO AMOUNT   STAND-IN: make the channel's bill disagree
bianjie pay standin phantom --channel C --amount N  STAND-IN: a trade only the channel has
bianjie pay standin forget OUT_TRADE_NO        STAND-IN: drop a trade from the channel's bill
bianjie pay standin bank-terminate PATIENT_ID AGREEMENT_ID   STAND-IN: 银联主动解约 + its callback
bianjie pay standin keys [--channel C]         STAND-IN (local stage): the stand-in's keys, for a partner's tests
bianjie pay standin http --base-url URL        STAND-IN: reach the stand-ins over HTTP (standin_server process)
bianjie pay notify-hosts APP_ID [HOST ...]    the hosts a hospital's notify_url may name (none: show them)
bianjie pay channel show                       each channel: merchant id, mode, URL, key serials (no secrets)
bianjie pay channel register --channel C ...   a real channel's keys (signing key + serial, channel keys, API key)
bianjie pay channel rotate --channel C ...     replace our signing key, add/drop a channel key, a new API key
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

DIFF_KINDS = ("missing_local", "missing_remote", "amount_mismatch")


def _channels() -> list[Any]:
    from bianjie.pay.models import Channel

    return list(Channel)


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
    from bianjie.pay import wiring
    from bianjie.pay.models import now_iso

    events = wiring.webhook_outbox()
    if args.relay:
        counts = events.relay()
        print(json.dumps(counts))
        return 0 if counts["failed"] == 0 else 1
    # everything still PENDING, due or not (the relay takes an intent once its grace period is over)
    pending = events.outbox.pending(limit=args.limit)
    for item in pending:
        message = item["message"]
        kind = message["event"]["type"] if item["sink"] == "webhooks" else message["type"]
        print(
            f"{item['event_id']}  {item['sink']:<8} {kind:<20} created {now_iso(float(item['created_at']))}"
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


def _private_key(path: str) -> Any:
    from bianjie.kit.crypto import Sm2PrivateKey

    text = Path(path).read_text().strip()
    return Sm2PrivateKey.from_pem(text) if "BEGIN" in text else Sm2PrivateKey.from_hex(text)


def _public_key(path: str) -> Any:
    from bianjie.kit.crypto import Sm2PublicKey

    text = Path(path).read_text().strip()
    return Sm2PublicKey.from_pem(text) if "BEGIN" in text else Sm2PublicKey.from_hex(text)


def _api_key(path: str) -> bytes:
    text = Path(path).read_text().strip()
    return bytes.fromhex(text) if len(text) == 32 else text.encode()


def cmd_channel(args: argparse.Namespace) -> int:
    _use(args)
    from bianjie.pay import wiring
    from bianjie.pay.models import Channel

    if args.action == "show":
        print(json.dumps(wiring.describe_channels(), indent=2, ensure_ascii=False))
        return 0
    channel = Channel(args.channel)
    if args.action == "register":
        shown = wiring.register_channel(
            channel,
            merchant_id=args.merchant_id,
            base_url=args.base_url,
            our_serial=args.our_serial,
            our_private_key=_private_key(args.our_private_key_file),
            channel_keys={serial: _public_key(path) for serial, path in args.channel_key},
            api_key=_api_key(args.api_key_file),
        )
    else:
        shown = wiring.rotate_channel(
            channel,
            our_serial=args.our_serial,
            our_private_key=_private_key(args.our_private_key_file) if args.our_private_key_file else None,
            add_channel_keys={serial: _public_key(path) for serial, path in args.add_channel_key or []},
            drop_channel_serials=tuple(args.drop_channel_key or ()),
            api_key=_api_key(args.api_key_file) if args.api_key_file else None,
            merchant_id=args.merchant_id,
            base_url=args.base_url,
        )
    print(json.dumps({channel.value: shown}, indent=2, ensure_ascii=False))
    return 0


def cmd_notify_hosts(args: argparse.Namespace) -> int:
    _use(args)
    from bianjie.kit import deps
    from bianjie.pay.adapters.notify_url import SETTING

    registry = deps.partner_registry()
    if args.hosts:
        hosts = sorted({h.lower().rstrip(".") for h in args.hosts})
        registry.set_setting(args.app_id, "pay", SETTING, hosts)
    partner = registry.get(args.app_id)
    if partner is None:
        print(f"no partner {args.app_id}")
        return 1
    print(json.dumps({"app_id": args.app_id, SETTING: (partner.settings.get("pay") or {}).get(SETTING, [])}))
    return 0


def cmd_standin_keys(args: argparse.Namespace) -> int:
    """The stand-in channel's own keys (local stage only), so a partner's tests can sign and seal
    notifications exactly as the stand-in does, and replay them."""
    _use(args)
    from bianjie.kit.standins import require_local
    from bianjie.pay import wiring
    from bianjie.pay.models import CALLBACK_SLUGS, Channel
    from bianjie.pay.wire import CHANNEL_PREFIX, WEBHOOK_USER_ID

    require_local("pay.channels")
    wiring.channel_configs()  # provisions the stand-ins on first use
    out = {}
    for channel in [Channel(args.channel)] if args.channel else list(Channel):
        identity = wiring.standin_identity(channel)
        if identity is None:
            continue
        out[channel.value] = {
            "merchant_id": identity.merchant_id,
            "serial": identity.serial,
            "private_key_hex": identity.private_key.to_hex(),
            "public_key_hex": identity.private_key.public_key.to_hex(),
            "api_key_hex": identity.api_key.hex(),
            "sm2_user_id": WEBHOOK_USER_ID.decode(),
            "signature_headers": f"{CHANNEL_PREFIX}-Serial, -Timestamp, -Nonce, -Signature",
            "callback_path": f"/pay/callbacks/{CALLBACK_SLUGS[channel]}",
            "stored_in": "PAY_STANDIN_TABLE item CONFIG#<channel>/CONFIG (keys field-encrypted)",
        }
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


def cmd_standin_http(args: argparse.Namespace) -> int:
    """Point every stand-in channel at the standin_server process (``mode: http``, same keys)."""
    _use(args)
    from bianjie.kit.standins import require_local
    from bianjie.pay import wiring

    require_local("pay.channels")
    for channel in wiring.channel_configs(refresh=True):
        wiring.rotate_channel(channel, base_url=f"{args.base_url.rstrip('/')}/{channel.value}")
    print(json.dumps(wiring.describe_channels(), indent=2, ensure_ascii=False))
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

    p = pay.add_parser("outbox", help="hospital webhooks and domain events not yet sent (outbox)")
    p.add_argument("--relay", action="store_true", help="send the due ones now (what the schedule does)")
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
    p = standin.add_parser("keys", help="the stand-in's keys and SM2 user id (local stage; for a partner's tests)")
    p.add_argument("--channel")
    _flags(p)
    p.set_defaults(func=cmd_standin_keys)
    p = standin.add_parser("http", help="reach the stand-ins over HTTP (python -m bianjie_dev.pay.standin_server)")
    p.add_argument("--base-url", required=True, help="the stand-in server, e.g. http://127.0.0.1:8701")
    _flags(p)
    p.set_defaults(func=cmd_standin_http)

    p = pay.add_parser("notify-hosts", help="the hosts a hospital's notify_url may name (https, public addresses)")
    p.add_argument("app_id")
    p.add_argument("hosts", nargs="*", help="replace the list with these (none: print it)")
    _flags(p)
    p.set_defaults(func=cmd_notify_hosts)

    channel = pay.add_parser("channel", help="a real channel's merchant id, URL and keys").add_subparsers(
        dest="action", required=True
    )
    p = channel.add_parser("show", help="each channel's merchant id, mode, URL and key serials (no secrets)")
    _flags(p)
    p.set_defaults(func=cmd_channel)
    p = channel.add_parser("register", help="register a channel: merchant id, gateway URL and the keys it issued")
    p.add_argument("--channel", required=True, choices=[c.value for c in _channels()])
    p.add_argument("--merchant-id", required=True)
    p.add_argument("--base-url", required=True, help="the channel's gateway (https://)")
    p.add_argument("--our-serial", required=True, help="the serial the channel gave our signing key")
    p.add_argument("--our-private-key-file", required=True, help="our SM2 signing key (PEM or hex)")
    p.add_argument(
        "--channel-key",
        nargs=2,
        action="append",
        required=True,
        metavar=("SERIAL", "FILE"),
        help="the channel's SM2 public key (PEM or hex) and its serial (repeatable)",
    )
    p.add_argument("--api-key-file", required=True, help="the resource-encryption key (16 bytes: 32 hex or text)")
    _flags(p)
    p.set_defaults(func=cmd_channel)
    p = channel.add_parser("rotate", help="replace our signing key, add or drop a channel key, replace the API key")
    p.add_argument("--channel", required=True, choices=[c.value for c in _channels()])
    p.add_argument("--our-serial")
    p.add_argument("--our-private-key-file")
    p.add_argument("--add-channel-key", nargs=2, action="append", metavar=("SERIAL", "FILE"))
    p.add_argument("--drop-channel-key", action="append", metavar="SERIAL")
    p.add_argument("--api-key-file")
    p.add_argument("--merchant-id")
    p.add_argument("--base-url")
    _flags(p)
    p.set_defaults(func=cmd_channel)

    p = standin.add_parser("bank-terminate", help="the bank ends an agreement (sends the termination callback)")
    p.add_argument("patient_id")
    p.add_argument("agreement_id")
    _flags(p)
    p.set_defaults(func=cmd_standin)
