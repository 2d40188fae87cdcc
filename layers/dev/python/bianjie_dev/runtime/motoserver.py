"""moto's server as the local stack runs it, with fixes to its DynamoDB emulation and its dispatch.

1. Serialised requests. moto checks a condition and then writes in separate steps without a lock, so on
   its threaded server two concurrent conditional writes to one item can both succeed; DynamoDB
   serialises them per item. Nonce replay protection and idempotency depend on that, so every DynamoDB
   request goes through one lock.
2. Cheap transaction snapshots. Before ``TransactWriteItems`` moto deep-copies every table the
   transaction touches, so its cost grows with the table (the audit table grows with every access: each
   append got slower, measured by the payment benchmark with py-spy). Put, Delete and ConditionCheck
   (all the documents port issues) replace or remove item objects and never mutate them in place, so a
   snapshot that copies the key maps and shares the items restores the table just as well.
3. Cheap dispatch. For every request moto's dispatcher lists its own package directory (``listdir`` and
   ``isdir`` over ~200 service folders) and tries URL patterns to find the backend, under one global
   lock; and werkzeug logs a line per request (to /dev/null in the stack). A py-spy profile of the film
   ingest benchmark found 40% of the server's busy samples in the dispatch and 15% in request logging.
   The backend of a host never changes, so it is remembered; request lines are not logged.
4. Keep-alive. werkzeug's development server answers every request with ``Connection: close``, so each
   boto3 call and each frame a browser fetches opens a new TCP connection and goes through
   ``http.server``'s header parsing. The app is served by waitress instead (HTTP/1.1 keep-alive, a
   thread pool): a presigned 270 KB GET on a reused connection measured ~1.5 ms against ~3-4 ms.
5. SM2 signing keys in KMS (``bianjie_dev.runtime.motokms``): moto backs them with RSA; the token issuer
   needs the real thing.
6. IAM enforced (``--iam``): moto's own enforcement is switched on from the first request, with an
   operator user created in-process first (its keys from ``BIANJIE_ADMIN_ACCESS_KEY_ID`` /
   ``BIANJIE_ADMIN_SECRET_ACCESS_KEY``), and the door (``bianjie_dev.runtime.door``) evaluates every call's
   action and resource against the caller's policies before moto sees it.

Usage: python -m bianjie_dev.runtime.motoserver -H 127.0.0.1 -p 5000 [--iam --region cn-north-1]
"""

from __future__ import annotations

import argparse
import copy
import os
import signal
import sys
import threading
import types
from collections import defaultdict
from typing import Any


def _snapshot(table: Any) -> Any:
    snap = copy.copy(table)
    items: defaultdict[Any, Any] = defaultdict(dict)
    for hash_key, value in table.items.items():
        items[hash_key] = dict(value) if table.has_range_key else value
    snap.items = items
    return snap


def tune_dynamodb() -> None:
    """Apply both fixes to moto in this process (idempotent)."""
    from moto.dynamodb import models
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "_bianjie_locked", False):
        return
    lock = threading.RLock()
    original = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with lock:
            return original(self)

    call_action._bianjie_locked = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]

    def deepcopy(value: Any, memo: Any = None) -> Any:
        return _snapshot(value) if isinstance(value, Table) else copy.deepcopy(value, memo)

    models.copy = types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)  # type: ignore[attr-defined]


def tune_dispatch() -> None:
    """Remember each host's backend, and stop werkzeug's per-request log lines (idempotent)."""
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    original = DomainDispatcherApplication.get_backend_for_host
    if getattr(original, "_bianjie_cached", False):
        return
    cache: dict[Any, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        # called under the dispatcher's own lock, so the dict needs none
        try:
            return cache[host]
        except KeyError:
            backend = original(self, host)
            if len(cache) < 1024:
                cache[host] = backend
            return backend

    get_backend_for_host._bianjie_cached = True  # type: ignore[attr-defined]
    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


ADMIN_USER = "bianjie-operator"


def enforce_iam(app: Any, region: str) -> Any:
    """moto's IAM enforcement on from the first call, the operator user in place, the door in front."""
    from moto import settings

    from bianjie_dev.runtime.door import Door, bootstrap_admin, install_moto_hooks

    bootstrap_admin(
        region, ADMIN_USER, os.environ["BIANJIE_ADMIN_ACCESS_KEY_ID"], os.environ["BIANJIE_ADMIN_SECRET_ACCESS_KEY"]
    )
    settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
    install_moto_hooks()
    return Door(app)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bianjie_dev.runtime.motoserver")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--iam", action="store_true", help="enforce IAM (moto's check and the door)")
    parser.add_argument("--region", default="cn-north-1", help="region whose partition holds the operator user")
    args = parser.parse_args(argv if argv is not None else sys.argv[1:])
    # moto builds presigned and callback URLs from MOTO_PORT, as its own main does
    os.environ.setdefault("MOTO_PORT", str(args.port))
    tune_dynamodb()
    tune_dispatch()
    from bianjie_dev.runtime.motokms import teach_kms_sm2

    teach_kms_sm2()
    import waitress
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    app: Any = DomainDispatcherApplication(create_backend_app)
    if args.iam:
        app = enforce_iam(app, args.region)
    # channel_timeout: idle keep-alive connections held by stopped clients are dropped after a minute
    waitress.serve(
        app,
        host=args.host,
        port=args.port,
        threads=args.threads,
        channel_timeout=60,
        connection_limit=1000,
        ident="moto",
        _quiet=True,
    )


if __name__ == "__main__":
    main()
