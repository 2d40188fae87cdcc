"""Every handler the template declares, invoked with the canned event of its trigger (events/): HTTP
functions answer the API Gateway v1 event without a server error, schedules run on the EventBridge
event, and every SQS handler dead-letters a poison record at once, with its reason, and acknowledges it."""

from __future__ import annotations

import re
from typing import Any

import pytest
from bianjie.runtime.invoke import load_module
from bianjie.runtime.template import ApiEvent, ScheduleEvent, SqsEvent, load_template

from tests import events as canned
from tests.conftest import ROOT

TEMPLATE = load_template(ROOT / "template.yaml")


def _of(kind: type) -> list[Any]:
    return [f for f in TEMPLATE.functions if any(isinstance(e, kind) for e in f.events)]


def _logical(intrinsic: Any) -> str:
    """``!GetAtt Queue.Arn`` as the template reader keeps it -> "Queue"."""
    if isinstance(intrinsic, dict) and "Fn::GetAtt" in intrinsic:
        target = intrinsic["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    raise AssertionError(f"not a GetAtt: {intrinsic!r}")


def handler_of(fn: Any) -> Any:
    return getattr(load_module(fn.module_path), fn.attribute)


@pytest.mark.parametrize("fn", _of(SqsEvent), ids=lambda f: f.logical_id)
def test_every_sqs_handler_dead_letters_poison_at_once(aws_stack: Any, fn: Any) -> None:
    import boto3

    event = next(e for e in fn.events if isinstance(e, SqsEvent))
    queue = _logical(event.queue)
    redrive = TEMPLATE.resources[queue].get("Properties", {}).get("RedrivePolicy")
    answer = handler_of(fn)(canned.sqs_batch("{not json", queue=queue), None)
    assert answer["batchItemFailures"] == [], answer  # poison is not retried
    if redrive is None:
        return  # a DLQ's own consumer: the last stop logs and drops it
    dlq = aws_stack.ref(_logical(redrive["deadLetterTargetArn"]))
    sqs = boto3.client("sqs", region_name="cn-north-1")
    got = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])
    assert [m["Body"] for m in got] == ["{not json"], f"{fn.logical_id} did not dead-letter to {dlq}"
    assert got[0]["MessageAttributes"]["reason"]["StringValue"]


@pytest.mark.parametrize("fn", _of(ApiEvent), ids=lambda f: f.logical_id)
def test_every_http_function_answers_the_api_gateway_event(aws_stack: Any, fn: Any) -> None:
    for api in fn.api_events():
        path = re.sub(r"\{[^}]+\}", "x", api.path)
        params = dict.fromkeys(re.findall(r"\{([^}]+)\}", api.path), "x")
        method = "GET" if api.method == "ANY" else api.method
        body = None if method in ("GET", "DELETE") else {}
        event = canned.api_request(method, path, resource=api.path, path_params=params, body=body)
        answer = handler_of(fn)(event, None)
        assert 200 <= answer["statusCode"] < 500, (fn.logical_id, api.path, answer)


@pytest.mark.parametrize("fn", _of(ScheduleEvent), ids=lambda f: f.logical_id)
def test_every_schedule_runs_on_the_eventbridge_event(aws_stack: Any, fn: Any) -> None:
    result = handler_of(fn)(canned.scheduled(rule=fn.logical_id), None)
    assert isinstance(result, dict), (fn.logical_id, result)
