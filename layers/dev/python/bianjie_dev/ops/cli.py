"""``bianjie ops ...``: backup, restore and rehearsal commands for on-premises operators (issue 20).

    bianjie ops restore --to TIME --target DIR --port N [--config F] [--stanza S] [--force] [--stop]
    bianjie ops check --dsn DSN                      row counts per table, every audit chain verified
    bianjie ops backup-objects --dest DIR [--bucket B ...] [--aws-endpoint URL] [--region R]
    bianjie ops write --dsn DSN --label L --count N  rehearsal writes (documents + audit records)
    bianjie ops load --dsn DSN --seconds S [--threads T] [--acked-file F]
    bianjie ops missing --dsn DSN --acked-file F     acknowledged writes the database does not hold

Each prints one JSON object as its last line. A refusal is one JSON line on stderr
(``{"error": CODE, "message": ...}``) and exit status 2 (bad input) or 3 (the environment failed);
a check that finds a broken audit chain exits 4.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bianjie_dev.ops.errors import OpsError

Command = Callable[[argparse.Namespace], int]


def _refusals(fn: Command) -> Command:
    @functools.wraps(fn)
    def run(args: argparse.Namespace) -> int:
        import psycopg

        try:
            return fn(args)
        except OpsError as exc:
            print(json.dumps({"error": exc.code, "message": exc.message}, ensure_ascii=False), file=sys.stderr)
            return exc.status
        except psycopg.OperationalError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            message = f"无法连接数据库：{first}"
            refusal = {"error": "DATABASE_UNREACHABLE", "message": message}
            print(json.dumps(refusal, ensure_ascii=False), file=sys.stderr)
            return 3

    return run


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"端口应为整数：{text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"端口应在 1-65535 之间：{value}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为正整数：{text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"应为正整数：{value}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"应为正数：{text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"应为正数：{value}")
    return value


def _default_os_user() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def _print(value: dict[str, Any]) -> None:
    print(json.dumps(value, ensure_ascii=False, sort_keys=True))


@_refusals
def cmd_restore(args: argparse.Namespace) -> int:
    from bianjie_dev.ops.check import check_database
    from bianjie_dev.ops.restore import Restorer, parse_time, pg_bindir

    to = parse_time(args.to)
    target = Path(args.target).absolute()
    restorer = Restorer(Path(args.config) if args.config else None, args.stanza, args.os_user)
    started = time.monotonic()
    report = restorer.restore(to, target, args.port, force=args.force)
    if not args.no_check:
        check_started = time.monotonic()
        checked = check_database(report["dsn"])
        report.update(checked.as_json())
        report["check_s"] = round(time.monotonic() - check_started, 2)
    report["total_s"] = round(time.monotonic() - started, 2)
    if args.stop:
        import subprocess

        subprocess.run(
            restorer._cmd([str(pg_bindir() / "pg_ctl"), "-D", str(target), "-m", "fast", "-w", "stop"]),
            capture_output=True,
            timeout=120,
        )
        report["stopped"] = True
    _print(report)
    return 0 if report.get("chains_ok", True) else 4


@_refusals
def cmd_check(args: argparse.Namespace) -> int:
    from bianjie_dev.ops.check import check_database

    started = time.monotonic()
    report = check_database(args.dsn).as_json()
    report["check_s"] = round(time.monotonic() - started, 2)
    _print(report)
    return 0 if report["chains_ok"] else 4


@_refusals
def cmd_backup_objects(args: argparse.Namespace) -> int:
    import boto3

    from bianjie_dev.ops.objects import backup_objects

    s3 = boto3.client(
        "s3",
        endpoint_url=args.aws_endpoint or os.environ.get("BIANJIE_AWS_ENDPOINT_URL") or None,
        region_name=args.region or os.environ.get("AWS_REGION") or "cn-north-1",
    )
    try:
        report = backup_objects(s3, Path(args.dest), args.bucket, day=args.day)
    except Exception as exc:  # botocore's connection and credential errors: one line, not a traceback
        if isinstance(exc, OpsError):
            raise
        raise OpsError("OBJECT_STORE_FAILED", f"对象存储读取失败：{type(exc).__name__}: {exc}", status=3) from None
    _print(report)
    return 0


@_refusals
def cmd_write(args: argparse.Namespace) -> int:
    from bianjie_dev.ops.writer import write_batch

    _print(write_batch(args.dsn, args.label, args.count, stack_name=args.stack_name))
    return 0


@_refusals
def cmd_load(args: argparse.Namespace) -> int:
    from bianjie_dev.ops.writer import run_load

    acked = Path(args.acked_file) if args.acked_file else None
    result = run_load(
        args.dsn,
        seconds=args.seconds,
        threads=args.threads,
        label=args.label,
        stack_name=args.stack_name,
        acked_file=acked,
    )
    _print(result.as_json())
    return 0


@_refusals
def cmd_missing(args: argparse.Namespace) -> int:
    from bianjie_dev.ops.writer import missing_keys

    path = Path(args.acked_file)
    if not path.is_file():
        raise OpsError("ACKED_FILE_NOT_FOUND", f"找不到已确认写入的清单：{path}")
    keys = [line.split("\t")[0].strip() for line in path.read_text().splitlines() if line.strip()]
    missing = missing_keys(args.dsn, keys, stack_name=args.stack_name)
    _print({"acknowledged": len(keys), "missing": len(missing), "missing_keys": missing[:20]})
    return 0 if not missing else 4


def register(subparsers: Any) -> None:
    ops = subparsers.add_parser("ops", help="operations: point-in-time restore, checks, object copies").add_subparsers(
        dest="command", required=True
    )
    p = ops.add_parser("restore", help="rebuild the database at a point in time into a fresh directory, then check it")
    p.add_argument("--to", required=True, help="ISO 8601 time (no zone = Beijing time), e.g. 2026-12-04T21:30:00+08:00")
    p.add_argument("--target", required=True, help="the new data directory (must be empty unless --force)")
    p.add_argument("--port", required=True, type=port_number, help="the restored cluster's port on 127.0.0.1")
    p.add_argument("--config", help="pgbackrest.conf (default: pgBackRest's own, /etc/pgbackrest/pgbackrest.conf)")
    p.add_argument("--stanza", default="bianjie")
    p.add_argument("--force", action="store_true", help="empty a non-empty target first (stops its cluster)")
    p.add_argument("--os-user", default=_default_os_user(), help="run pgBackRest, the server as (root: postgres)")
    p.add_argument("--no-check", action="store_true", help="skip the row counts and audit-chain verification")
    p.add_argument("--stop", action="store_true", help="stop the restored cluster after the check")
    p.set_defaults(func=cmd_restore)

    p = ops.add_parser("check", help="row counts per table and every audit chain verified (exit 4 on a broken chain)")
    p.add_argument("--dsn", required=True)
    p.set_defaults(func=cmd_check)

    p = ops.add_parser("backup-objects", help="copy buckets from the S3 API into <dest>/<YYYY-MM-DD>/")
    p.add_argument("--dest", required=True)
    p.add_argument("--bucket", action="append", help="a bucket (repeatable; default: every bucket listed)")
    p.add_argument("--aws-endpoint", help="the S3 API (default: $BIANJIE_AWS_ENDPOINT_URL)")
    p.add_argument("--region")
    p.add_argument("--day", help="the folder's name (default: today in Beijing)")
    p.set_defaults(func=cmd_backup_objects)

    for name, fn, text in (
        ("write", cmd_write, "rehearsal: write N documents, each with its audit record"),
        ("load", cmd_load, "rehearsal: write from several threads for a while, keeping acknowledged keys"),
        ("missing", cmd_missing, "rehearsal: acknowledged writes the database does not hold (exit 4 if any)"),
    ):
        p = ops.add_parser(name, help=text)
        p.add_argument("--dsn", required=True)
        p.add_argument("--stack-name", default="bianjie")
        if name == "write":
            p.add_argument("--label", required=True)
            p.add_argument("--count", required=True, type=positive_int)
        if name == "load":
            p.add_argument("--seconds", required=True, type=positive_float)
            p.add_argument("--threads", type=positive_int, default=4)
            p.add_argument("--label", default="load")
            p.add_argument("--acked-file")
        if name == "missing":
            p.add_argument("--acked-file", required=True)
        p.set_defaults(func=fn)
