"""moto's server as the local stack runs it, with fixes to its DynamoDB emulation and its dispatch.

1. Serialised requests. moto checks a condition and then writes in separate steps without a lock, so on
   its threaded server two concurrent conditional writes to one item can both succeed; DynamoDB
   serialises them per item. Nonce replay protection and idempotency depend on that, so every DynamoDB
   request goes through one lock.
2. No transaction snapshots. Before ``TransactWriteItems`` moto deep-copies every table the
   transaction touches, so its cost grows with the table (the audit table grows with every access: each
   append got slower, measured by the payment benchmark with py-spy). A first version copied only the
   key maps (still O(table)); now the copy is the table itself and fix 12 undoes a failed transaction's
   writes key by key (``bianjie_dev.runtime.motoquery``).
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
6. Bounded memory. moto appends every instance of every model it ever creates (each DynamoDB item
   version, each table snapshot of fix 2, each SQS message, each S3 object version) to a class-level
   list, ``instances_tracked``, for its dashboard and its reset, and never drops one. A heap census of
   the server after 60 prescriptions of ``scripts/bench/rx.py`` found 1,627 ``Table`` objects where 15
   tables exist, all held by that list; the 2,000-prescription run grew past 7.5 GB. The lists hold
   their instances weakly instead: the dashboard and reset still see every live instance, and garbage is
   garbage. SNS keeps every message published to a topic (``sent_notifications``, for moto's own test
   introspection); the server keeps the last ``SNS_SENT_KEPT`` per topic.
7. Linear item building. moto checks the 400 KB item limit on every attribute it sets, summing the
   sizes of all attributes set so far, so building an item costs O(attributes squared): 30% of moto's
   DynamoDB time in the rx benchmark (cProfile inside the server). The sizes are summed once, after the
   last attribute; the sum only grows, so the same items are refused.
8. Direct item serialisation. moto writes each answer by walking botocore's output shapes, and for every
   AttributeValue it tries all ten members, each through an alias-resolving value picker: half of moto's
   DynamoDB time in the rx benchmark went to serialising items (~0.15 ms per attribute). An
   AttributeValue is already in wire form except its blobs, so it is written directly (blobs base64, as
   moto's serializer does; a test compares both serializers' bytes).
9. Lexed conditions remembered. moto lexes every condition expression with a dozen regular expressions
   per token, twice per conditional write (17% of its DynamoDB time after fix 8). The documents port
   sends a handful of distinct expressions (values travel as placeholders), so each one's tokens are
   kept (immutable leaves, copied into a fresh deque per parse) for up to ``LEXED_KEPT`` expressions.
10. IAM enforced (``--iam``): moto's own enforcement is switched on from the first request, with an
   operator user created in-process first (its keys from ``BIANJIE_ADMIN_ACCESS_KEY_ID`` /
   ``BIANJIE_ADMIN_SECRET_ACCESS_KEY``), and the door (``bianjie_dev.runtime.door``) evaluates every call's
   action and resource against the caller's policies before moto sees it.
11. Queries read their partition, not the table (``bianjie_dev.runtime.motoquery``): moto sorted every
   item of the table for each Query, on the table or on an index.
12. Transactions undo their own writes on failure instead of restoring a copy (see 2).
13. SQS without whole-queue scans on each message (``bianjie_dev.runtime.motosqs``): moto counted every
   message in the queue, reading the clock twice per message, on each send and on each message received,
   so a consumer that fell behind made every later message dearer.
14. Handler method names remembered per class: moto ran ``inspect.getmembers`` over the handler class on
   every request to check the action exists (3% of the server's CPU in the rx benchmark, py-spy ``--gil``).
15. An empty body with ``Expect: 100-continue`` is answered. boto3 sends that header on every S3 PUT,
   an empty file included (``Content-Length: 0``); waitress 3.0.2 then sends ``100 Continue`` and marks
   the request, which had nothing left to read, as not complete, so it never reached the app and the
   client hung until its timeout (``bianjie film ingest`` of an empty file died after 30 s). A request
   already complete gets its answer without the interim line.
16. DynamoDB request bodies read with ``json.loads``. For every request moto walks botocore's input
   shapes over the decoded JSON, one Python call per member of every structure and map, to decode blobs
   (9% of its DynamoDB CPU in a profile of ``scripts/bench/emulator_calls.py``). For the data-plane calls
   (``FAST_PARSED``) an object hook decodes the ``B``/``BS`` members instead; the result is the same
   (a test compares both parsers on every kind of body the adapter sends). Control-plane calls keep
   moto's parser.
17. Queries without copies: ``Table.query`` deep-copied every matched item before projecting it (a fifth
   of a query's CPU); the projections build new items and fix 1 serialises requests, so the results are
   the live items, read once while the answer is written.

Usage: python -m bianjie_dev.runtime.motoserver -H 127.0.0.1 -p 5000 [--iam --region cn-north-1]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import json
import os
import signal
import sys
import threading
import types
import weakref
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from bianjie_dev.runtime.motoquery import tune_queries, tune_transactions
from bianjie_dev.runtime.motosqs import tune_sqs

SNS_SENT_KEPT = 100
LEXED_KEPT = 4096
ITEM_SIZE_LIMIT = 405_000  # moto's LimitedSizeDict limit (DynamoDB's 400 KB, as moto measured it)


def _blob(value: str | bytes) -> str:
    return base64.b64encode(value.encode() if isinstance(value, str) else value).decode("ascii")


def attribute_value(value: dict[str, Any]) -> dict[str, Any]:
    """An AttributeValue as moto's shape-driven JSON serializer writes it (fix 7)."""
    out: dict[str, Any] = {}
    for kind, member in value.items():
        if member is None:
            continue
        if kind == "M":
            out[kind] = {name: attribute_value(v) for name, v in member.items()}
        elif kind == "L":
            out[kind] = [attribute_value(v) for v in member]
        elif kind == "B":
            out[kind] = _blob(member)
        elif kind == "BS":
            out[kind] = [_blob(v) for v in member]
        elif kind in ("S", "N"):
            out[kind] = str(member)
        elif kind in ("SS", "NS"):
            out[kind] = [str(v) for v in member]
        elif kind in ("BOOL", "NULL"):
            out[kind] = member is True or str(member).lower() == "true"
    return out


def tune_dynamodb() -> None:
    """Fixes 1, 2, 7, 8, 9, 11, 12, 16 and 17 to moto in this process (idempotent)."""
    from moto.dynamodb import models
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models.dynamo_type import DynamoType, Item, LimitedSizeDict
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.models.utilities import bytesize
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
        # a transaction's copy of a table is the table itself: fix 12 undoes its writes instead
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    # moto's module reads ``copy.deepcopy`` from its own namespace: replaced there, not in ``copy``
    models.copy = types.SimpleNamespace(deepcopy=deepcopy, copy=copy.copy)  # type: ignore[assignment]
    tune_transactions(models)
    tune_queries()

    def item_init(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        # moto 5.2.5's Item.__init__, with LimitedSizeDict's per-attribute check done once at the end
        self.hash_key = hash_key
        self.range_key = range_key
        values = {key: DynamoType(value) for key, value in attrs.items()}
        if sum(bytesize(key) + value.size() for key, value in values.items()) > ITEM_SIZE_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = LimitedSizeDict()
        dict.update(self.attrs, values)  # dict's own update: no per-key check

    Item.__init__ = item_init  # type: ignore[method-assign]

    from moto.core.serialize import JSONSerializer

    shape_walk = JSONSerializer._serialize_type_structure

    def serialize_structure(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if key and shape.name == "AttributeValue" and isinstance(value, dict):
            self._default_serialize(serialized, attribute_value(value), shape, key)
        else:
            shape_walk(self, serialized, value, shape, key)

    serialize_structure._bianjie_original = shape_walk  # type: ignore[attr-defined]
    JSONSerializer._serialize_type_structure = serialize_structure  # type: ignore[method-assign]

    from moto.dynamodb.comparisons import ConditionExpressionParser

    lex = ConditionExpressionParser._lex_condition_expression
    lexed: dict[str, tuple[Any, ...]] = {}

    def lex_condition_expression(self: Any) -> deque[Any]:
        # dict get and set are atomic: two threads that miss at once both lex, and store equal tokens
        expression = self.condition_expression
        nodes = lexed.get(expression)
        if nodes is None:
            nodes = tuple(lex(self))  # an expression that does not lex raises here, every time
            if len(lexed) < LEXED_KEPT:
                lexed[expression] = nodes
        return deque(nodes)

    ConditionExpressionParser._lex_condition_expression = lex_condition_expression  # type: ignore[method-assign]

    tune_dynamodb_requests(DynamoHandler, Table)


# the data-plane calls whose bodies fix 16 reads with json.loads (every one the documents adapter makes)
FAST_PARSED = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)


def _blobs_decoded(node: dict[str, Any]) -> dict[str, Any]:
    """json.loads' object hook: an AttributeValue's ``B`` / ``BS`` members base64-decoded, as the shape
    parser decodes blobs. Only an AttributeValue holds a string (or a list of strings) under those names:
    an item or a map whose attribute is called ``B`` holds an AttributeValue (a dict) there."""
    if len(node) == 1:
        if isinstance(node.get("B"), str):
            return {"B": base64.b64decode(node["B"])}
        members = node.get("BS")
        if isinstance(members, list) and all(isinstance(m, str) for m in members):
            return {"BS": [base64.b64decode(m) for m in members]}
    return node


def parse_dynamodb_body(body: bytes | str) -> dict[str, Any]:
    """A DynamoDB data-plane request body as moto's botocore-shape parser returns it (fix 16)."""
    parsed = json.loads(body or b"{}", object_hook=_blobs_decoded)
    return parsed if isinstance(parsed, dict) else {}


def tune_dynamodb_requests(handler: Any, table_cls: Any) -> None:
    """Fixes 16 and 17: DynamoDB requests read without the shape walk, queries answered without copies."""
    from moto.dynamodb.models import table as table_module

    original_parse = handler.parse_parameters

    def parse_parameters(self: Any, request: Any) -> None:
        # 16. moto walks botocore's input shapes over every request body (json.loads, then one Python
        # call per member of every structure and map: ~9% of its DynamoDB CPU in emulator_calls.py's
        # profile); for data-plane calls that walk only decodes blobs, which the object hook does
        if self._get_action() in FAST_PARSED:
            try:
                self.params = parse_dynamodb_body(request.data)
                return
            except ValueError:
                pass  # not JSON: moto's own parser answers as it does
        original_parse(self, request)

    handler.parse_parameters = parse_parameters

    real_deepcopy = copy.deepcopy
    local = threading.local()

    def table_deepcopy(value: Any, memo: Any = None) -> Any:
        # 17. Table.query deep-copies every item it matched before projecting them (1 ms of a 5.5 ms
        # query of ten items). The copy guards nothing here: Item.project and the index's projection
        # build new items, the filter only reads, and DynamoDB requests are serialised (fix 1), so no
        # write can change an item while its answer is built. Every other deep copy is moto's own.
        if getattr(local, "query", False) and isinstance(value, list):
            return list(value)
        return real_deepcopy(value, memo)

    table_module.copy = types.SimpleNamespace(deepcopy=table_deepcopy, copy=copy.copy)  # type: ignore[assignment]
    narrowed_query = table_cls.query

    def query(self: Any, *args: Any, **kwargs: Any) -> Any:
        local.query = True
        try:
            return narrowed_query(self, *args, **kwargs)
        finally:
            local.query = False

    table_cls.query = query


class WeakInstances:
    """``instances_tracked`` that does not keep its instances alive: moto only ``append``s and iterates.

    Keyed by ``id`` (models need not be hashable); a weakref's callback runs before its object's memory
    is freed, so an id is removed before it can be reused."""

    def __init__(self, instances: Iterable[Any] = ()) -> None:
        self._refs: dict[int, weakref.ref[Any]] = {}
        for instance in instances:
            self.append(instance)

    def append(self, instance: Any) -> None:
        key = id(instance)
        refs = self._refs
        with contextlib.suppress(TypeError):  # a model without weakref support (__slots__) goes untracked
            refs[key] = weakref.ref(instance, lambda _ref: refs.pop(key, None))

    def __iter__(self) -> Iterator[Any]:
        # dict.copy runs no Python code, so a callback cannot change the dict while it is copied
        instances = (ref() for ref in self._refs.copy().values())
        return iter([instance for instance in instances if instance is not None])

    def __len__(self) -> int:
        return len(self._refs)


def tune_models() -> None:
    """Track moto's model instances weakly, and keep a bounded tail of SNS messages (idempotent)."""
    from moto.core.common_models import BaseModel
    from moto.sns.models import Topic

    if getattr(BaseModel.__new__, "_bianjie_weak", False):
        return

    def new(cls: type[Any], *args: Any, **kwargs: Any) -> Any:
        instance = object.__new__(cls)
        tracked = cls.__dict__.get("instances_tracked")
        if not isinstance(tracked, WeakInstances):
            # the metaclass, and moto's reset, install plain lists; swap each for a weak one once
            tracked = WeakInstances(tracked or ())
            cls.instances_tracked = tracked
        tracked.append(instance)
        return instance

    new._bianjie_weak = True  # type: ignore[attr-defined]
    BaseModel.__new__ = staticmethod(new)  # type: ignore[method-assign]

    original_init = Topic.__init__

    def topic_init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.sent_notifications = deque(maxlen=SNS_SENT_KEPT)

    Topic.__init__ = topic_init  # type: ignore[method-assign]


def tune_dispatch() -> None:
    """Remember each host's backend and each handler's method names, and stop werkzeug's per-request log
    lines (idempotent)."""
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

    from moto.core import responses

    names_of = responses.method_names_from_class
    names: dict[type[Any], list[str]] = {}

    def method_names_from_class(clazz: type[Any]) -> list[str]:
        # fix 14: the handler classes' methods are fixed once moto is imported (the fixes above replace
        # methods, they add none), so inspect.getmembers need not run on every request
        found = names.get(clazz)
        if found is None:
            found = names[clazz] = names_of(clazz)
        return list(found)

    responses.method_names_from_class = method_names_from_class  # type: ignore[assignment]


def tune_waitress() -> None:
    """Fix 15 (idempotent)."""
    from waitress.channel import HTTPChannel

    original = HTTPChannel.send_continue
    if getattr(original, "_bianjie_complete", False):
        return

    def send_continue(self: Any) -> None:
        if self.request.completed:
            # nothing left to read (Content-Length: 0): no interim answer, the final one comes next
            self.request.expect_continue = False
            return
        original(self)

    send_continue._bianjie_complete = True  # type: ignore[attr-defined]
    HTTPChannel.send_continue = send_continue  # type: ignore[method-assign]


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
    # BIANJIE_EMULATOR_TALLY=<file>: calls and CPU by action, written when the server exits
    return Door(app, os.environ.get("BIANJIE_EMULATOR_TALLY"))


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
    tune_models()
    tune_sqs()
    tune_waitress()
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
