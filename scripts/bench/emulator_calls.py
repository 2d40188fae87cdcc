"""The local emulator's CPU per DynamoDB call, by kind of call, in-process (no sockets, no other load).

What the local stack's moto server does for each call the documents adapter makes (a conditional put,
a get, a partition query, an update, a transaction of three conditional puts), measured inside the
server's WSGI application as the stack builds it (``bianjie_dev.runtime.motoserver``: every fix applied,
IAM enforced, the door in front). boto3 builds and signs each request as it does against the server;
a botocore ``before-send`` hook hands it to the application in the same thread, so the CPU counted is the
server's alone (``time.thread_time`` around the application call). This is the figure that bounds
``scripts/bench/rx.py``: the server serialises DynamoDB calls, so its CPU per call is the stack's ceiling.

``--server`` measures the same calls against the server itself (``python -m bianjie_dev.runtime.motoserver
--iam`` on a free port, over kept-alive HTTP): the server process's CPU per call from /proc, which adds
waitress, the HTTP parsing and the threads to the in-process figure.

Usage: .venv/bin/python scripts/bench/emulator_calls.py [--calls 400] [--items 2000] [--server] [--profile FILE]

Prints a table (µs of server CPU per call: median, p90, mean) and, last, one JSON line.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "layers/core/python"), str(ROOT / "layers/dev/python")]

REGION = "cn-north-1"
KEY_ID, SECRET = "AKIAEMULATORBENCH0001", "emulator-bench-secret"


def build_app() -> Any:
    os.environ["BIANJIE_ADMIN_ACCESS_KEY_ID"] = KEY_ID
    os.environ["BIANJIE_ADMIN_SECRET_ACCESS_KEY"] = SECRET
    from bianjie_dev.runtime import motoserver

    motoserver.tune_dynamodb()
    motoserver.tune_dispatch()
    motoserver.tune_models()
    motoserver.tune_sqs()
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    return motoserver.enforce_iam(DomainDispatcherApplication(create_backend_app), REGION)


class InProcess:
    """botocore's ``before-send``: the prepared request goes to the WSGI app, its answer comes back."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.cpu: list[float] = []
        self.profile: cProfile.Profile | None = None

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse
        from werkzeug.test import EnvironBuilder, run_wsgi_app

        body = request.body if isinstance(request.body, bytes) else (request.body or b"")
        url = urlsplit(request.url)
        environ = EnvironBuilder(
            path=url.path or "/",
            query_string=url.query,
            method=request.method,
            headers={k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()},
            data=body,
            base_url="http://127.0.0.1:5000",
        ).get_environ()
        environ["HTTP_HOST"] = "127.0.0.1:5000"
        if self.profile is not None:
            self.profile.enable()
        started = time.thread_time()
        app_iter, status, headers = run_wsgi_app(self.app, environ, buffered=True)
        content = b"".join(app_iter)
        self.cpu.append(time.thread_time() - started)
        if self.profile is not None:
            self.profile.disable()
        return AWSResponse(request.url, int(status.split()[0]), dict(headers), MockRawResponse(content))

    def measure(self, call: Callable[[], Any], calls: int) -> list[float]:
        self.cpu.clear()
        for _ in range(calls):
            call()
        return list(self.cpu)


class Server:
    """The stack's moto server in its own process; CPU per call from /proc (each call timed alone: the
    server's idle threads cost next to nothing, and the mean over many calls is what counts)."""

    def __init__(self) -> None:
        import socket
        import subprocess

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = dict(os.environ, BIANJIE_ADMIN_ACCESS_KEY_ID=KEY_ID, BIANJIE_ADMIN_SECRET_ACCESS_KEY=SECRET)
        env["PYTHONPATH"] = os.pathsep.join(sys.path[:2])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bianjie_dev.runtime.motoserver", "-p", str(port), "--iam", "--region", REGION],
            env=env,
        )
        self.url = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.05)

    def measure(self, call: Callable[[], Any], calls: int) -> list[float]:
        sys.path.insert(0, str(ROOT / "scripts/bench"))
        from proc_cpu import cpu_seconds

        out = []
        batch = 20  # /proc counts in clock ticks (10 ms): read it around batches, spread over their calls
        for _ in range(0, calls, batch):
            before = cpu_seconds(self.process.pid)
            for _ in range(batch):
                call()
            out += [(cpu_seconds(self.process.pid) - before) / batch] * batch
        return out[:calls]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench/emulator_calls.py", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="calls of each kind (default 400)")
    parser.add_argument("--items", type=int, default=2000, help="items in the table before measuring")
    parser.add_argument("--profile", help="write a cProfile of the server's work to this file (in-process only)")
    parser.add_argument("--server", action="store_true", help="measure the server process over HTTP instead")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.items < 0:
        parser.error("--calls must be at least 1 and --items not negative")

    import boto3

    session = boto3.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name=REGION)
    if args.server:
        server = Server()
        db = session.client("dynamodb", endpoint_url=server.url)
        measure: Callable[[Callable[[], Any], int], list[float]] = server.measure
    else:
        hook = InProcess(build_app())
        db = session.client("dynamodb", endpoint_url="http://127.0.0.1:5000")
        db.meta.events.register("before-send.dynamodb", hook)
        if args.profile:
            hook.profile = cProfile.Profile()
        measure = hook.measure
    table = "EmulatorBench"
    db.create_table(
        TableName=table,
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        BillingMode="PAY_PER_REQUEST",
    )

    def item(pk: str, sk: str) -> dict[str, Any]:
        # the shape of a document the adapter writes: a dozen attributes, a nested map, a number, a list
        return {
            "pk": {"S": pk},
            "sk": {"S": sk},
            "status": {"S": "RELEASED"},
            "version": {"N": "3"},
            "hospital": {"S": "demo-hospital"},
            "patient_ref": {"S": uuid.uuid4().hex},
            "cipher": {"B": os.urandom(96)},
            "created_at": {"S": "2026-12-04T01:00:00Z"},
            "lines": {"L": [{"M": {"code": {"S": f"D{n}"}, "qty": {"N": str(n)}}} for n in range(3)]},
            "meta": {"M": {"source": {"S": "bench"}, "attempt": {"N": "1"}}},
            "ttl": {"N": "1900000000"},
        }

    for n in range(args.items):
        db.put_item(TableName=table, Item=item(f"p#{n % 200}", f"s#{n}"))

    counter = iter(range(10**9))
    kinds: dict[str, Callable[[], Any]] = {
        "put (condition absent)": lambda: db.put_item(
            TableName=table,
            Item=item(f"new#{next(counter)}", "a"),
            ConditionExpression="attribute_not_exists(#pk)",
            ExpressionAttributeNames={"#pk": "pk"},
        ),
        "get": lambda: db.get_item(TableName=table, Key={"pk": {"S": "p#7"}, "sk": {"S": "s#7"}}, ConsistentRead=True),
        "query (partition of 10)": lambda: db.query(
            TableName=table,
            KeyConditionExpression="#pk = :pk",
            ExpressionAttributeNames={"#pk": "pk"},
            ExpressionAttributeValues={":pk": {"S": "p#11"}},
            Limit=50,
        ),
        "update (condition on version)": lambda: db.update_item(
            TableName=table,
            Key={"pk": {"S": "p#3"}, "sk": {"S": "s#3"}},
            UpdateExpression="SET #st = :st",
            ConditionExpression="#v = :v",
            ExpressionAttributeNames={"#st": "status", "#v": "version"},
            ExpressionAttributeValues={":st": {"S": "DISPENSED"}, ":v": {"N": "3"}},
        ),
        "transaction of 3 puts": lambda: db.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table,
                        "Item": item(f"tx#{next(counter)}", "a"),
                        "ConditionExpression": "attribute_not_exists(#pk)",
                        "ExpressionAttributeNames": {"#pk": "pk"},
                    }
                }
                for _ in range(3)
            ]
        ),
    }
    rows = []
    for name, call in kinds.items():
        us = sorted(c * 1e6 for c in measure(call, args.calls))
        rows.append(
            {
                "call": name,
                "p50_us": round(statistics.median(us), 1),
                "p90_us": round(us[int(len(us) * 0.9) - 1], 1),
                "mean_us": round(statistics.fmean(us), 1),
            }
        )
    if not args.server and hook.profile is not None:
        hook.profile.dump_stats(args.profile)
    if args.server:
        server.stop()

    where = "server process over HTTP" if args.server else "in-process"
    print(f"moto server CPU per DynamoDB call, {where} ({args.calls} calls each, table of {args.items} items, IAM on)")
    print(f"{'call':34} {'p50 µs':>9} {'p90 µs':>9} {'mean µs':>9}")
    for r in rows:
        print(f"{r['call']:34} {r['p50_us']:>9} {r['p90_us']:>9} {r['mean_us']:>9}")
    mean_all = statistics.fmean(r["mean_us"] for r in rows)
    print(
        json.dumps(
            {
                "mode": "server" if args.server else "in-process",
                "calls": args.calls,
                "items": args.items,
                "mean_us": round(mean_all, 1),
                "rows": rows,
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
