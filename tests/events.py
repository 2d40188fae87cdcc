"""The canned events of ``events/`` (the shapes AWS delivers), loaded and adapted for handler tests.

Every builder starts from a file in ``events/`` and changes only what the test names, so a handler test
sees the real keys (attributes, ARNs, the SNS wrapper) rather than a hand-made dict:

- ``api_request(method, path, ...)``: API Gateway REST (payload v1) proxy event (``apigw-rest-health.json``);
- ``scheduled(time)``: EventBridge schedule (``eventbridge-scheduled.json``);
- ``s3_via_sqs(bucket, key)`` / ``s3_direct(bucket, key)``: S3 ObjectCreated through a queue or straight;
- ``envelope(type, version, **data)``: a contract's canned envelope (``events/contracts/<type>.v<N>.json``);
- ``sqs_batch(*bodies, delivery=...)``: SQS records around bodies; envelopes go in as SNS delivers them,
  raw (``sqs-sns-raw-delivery.json``) or notification-wrapped (``sqs-sns-notification.json``);
- ``poison_batch()``: ``sqs-batch-with-poison.json`` (one good record, three that can never succeed).
"""

from __future__ import annotations

import copy
import json
import uuid
from functools import cache
from typing import Any, Literal
from urllib.parse import quote_plus

from tests.conftest import EVENTS

Delivery = Literal["raw", "notification"]


@cache
def _file(name: str) -> str:
    return (EVENTS / name).read_text(encoding="utf-8")


def load(name: str) -> dict[str, Any]:
    """A fresh copy of ``events/<name>`` (tests may change it)."""
    return json.loads(_file(name))


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- HTTP ---------------------------------------------------------------------------------------------


def api_request(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    path_params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
) -> dict[str, Any]:
    event = load("apigw-rest-health.json")
    hdrs = {**event["headers"], **(headers or {})}
    text = body if isinstance(body, str) or body is None else _compact(body)
    event.update(
        resource=resource or path,
        path=path,
        httpMethod=method,
        headers=hdrs,
        multiValueHeaders={k: [v] for k, v in hdrs.items()},
        queryStringParameters=query or None,
        multiValueQueryStringParameters={k: [v] for k, v in query.items()} if query else None,
        pathParameters=path_params or None,
        body=text,
        isBase64Encoded=False,
    )
    event["requestContext"].update(resourcePath=resource or path, httpMethod=method, path=f"/Prod{path}")
    return event


# -- schedules and objects ----------------------------------------------------------------------------


def scheduled(time: str | None = None, rule: str | None = None) -> dict[str, Any]:
    event = load("eventbridge-scheduled.json")
    if time is not None:
        event["time"] = time
    if rule is not None:
        event["resources"] = [f"arn:aws-cn:events:cn-north-1:123456789012:rule/{rule}"]
    return event


def s3_direct(bucket: str, key: str, size: int = 1024, etag: str = "d41d8cd98f00b204e9800998ecf8427e") -> dict:
    """S3's own notification (a SAM ``S3`` event); the key URL-encoded as S3 sends it."""
    event = load("s3-object-created.json")
    obj = event["Records"][0]["s3"]
    obj["bucket"].update(name=bucket, arn=f"arn:aws-cn:s3:::{bucket}")
    obj["object"].update(key=quote_plus(key, safe="/"), size=size, eTag=etag)
    return event


def s3_via_sqs(bucket: str, key: str, size: int = 1024, etag: str = "d41d8cd98f00b204e9800998ecf8427e") -> dict:
    """The bucket -> queue -> function path: an SQS batch whose body is the S3 notification."""
    event = load("sqs-s3-object-created.json")
    event["Records"][0]["body"] = _compact(s3_direct(bucket, key, size, etag))
    return event


# -- domain events on queues --------------------------------------------------------------------------


def envelope(
    event_type: str, version: int = 1, *, id: str | None = None, at: str | None = None, **data: Any
) -> dict[str, Any]:
    """The canned envelope of a contract; ``id`` and ``at`` (its time) replace the envelope's, ``data``
    keys replace (None removes) fields of its data."""
    env = load(f"contracts/{event_type}.v{version}.json")
    if id is not None:
        env["id"] = id
    if at is not None:
        env["time"] = at
    for k, v in data.items():
        if v is None:
            env["data"].pop(k, None)
        else:
            env["data"][k] = v
    return env


def _attrs(env: dict[str, Any]) -> dict[str, str]:
    return {"type": env["type"], "version": str(env.get("dataversion", 1)), "source": env["source"]}


def sns_record(env: dict[str, Any], delivery: Delivery = "raw", message_id: str | None = None) -> dict[str, Any]:
    """One SQS record carrying ``env`` as the SNS subscription delivers it."""
    if delivery == "raw":
        record = load("sqs-sns-raw-delivery.json")["Records"][0]
        record["body"] = _compact(env)
        record["messageAttributes"] = {
            k: {"stringValue": v, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
            for k, v in _attrs(env).items()
        }
    else:
        record = load("sqs-sns-notification.json")["Records"][0]
        wrapper = json.loads(record["body"])
        wrapper["Message"] = _compact(env)
        wrapper["MessageId"] = str(uuid.uuid4())
        wrapper["MessageAttributes"] = {k: {"Type": "String", "Value": v} for k, v in _attrs(env).items()}
        record["body"] = json.dumps(wrapper, ensure_ascii=False)
    record["messageId"] = message_id or str(uuid.uuid4())
    return record


def sqs_batch(*bodies: Any, delivery: Delivery = "raw", queue: str | None = None) -> dict[str, Any]:
    """An SQS batch: envelopes (dicts with ``specversion``) as SNS delivers them, other dicts as JSON
    bodies, strings as they are. Message ids are ``m0``, ``m1``, ..."""
    template = load("sqs-s3-object-created.json")["Records"][0]
    records = []
    for n, body in enumerate(bodies):
        if isinstance(body, dict) and "specversion" in body:
            record = sns_record(body, delivery, f"m{n}")
        else:
            record = copy.deepcopy(template)
            record.update(messageId=f"m{n}", body=body if isinstance(body, str) else _compact(body))
        if queue:
            record["eventSourceARN"] = f"arn:aws-cn:sqs:cn-north-1:123456789012:{queue}"
        records.append(record)
    return {"Records": records}


def poison_batch() -> dict[str, Any]:
    return load("sqs-batch-with-poison.json")


def contract_files() -> list[str]:
    return sorted(p.name for p in (EVENTS / "contracts").glob("*.json"))
