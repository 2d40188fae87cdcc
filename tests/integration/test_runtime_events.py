"""The runtime over real HTTP and a real moto server: gateway, S3 -> queue -> handler, SQS retries and
dead-lettering, S3 events, and schedules (manual and timed), using the fixture template."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from bianjie_dev.runtime.child import StackProcess

from tests.conftest import FIXTURES


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackProcess]:
    s = StackProcess(
        tmp_path_factory.mktemp("runtime"),
        FIXTURES / "stack" / "template.yaml",
        seed=False,
        env={"BIANJIE_RETRY_DELAY": "0"},
    )
    yield s
    s.stop()


def http(
    stack: StackProcess, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(stack.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def probes(stack: StackProcess, kind: str) -> list[dict[str, Any]]:
    items = stack.client("dynamodb").query(
        TableName=stack.ref("ProbeTable"),
        KeyConditionExpression="pk = :k",
        ExpressionAttributeValues={":k": {"S": kind}},
    )["Items"]
    return [json.loads(i["payload"]["S"]) for i in items]


def wait_for(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_gateway_routes_path_params_query_and_body(stack: StackProcess) -> None:
    status, headers, body = http(
        stack, "POST", "/echo/%E5%BC%A0?b=2&a=1&a=3", b'{"x": 1}', {"Content-Type": "application/json"}
    )
    assert status == 200, body
    data = json.loads(body)
    assert data["name"] == data["seen_name"]
    assert data["query"] == {"b": ["2"], "a": ["1", "3"]}
    assert data["body"] == '{"x": 1}'
    assert data["source_ip"] == "127.0.0.1"
    assert {k.lower(): v for k, v in headers.items()}.get("x-request-id")


def test_literal_route_wins_over_variable(stack: StackProcess) -> None:
    status, _, body = http(stack, "POST", "/echo/fixed", b"", {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body) == {"fixed": True}


def test_chalice_errors_are_reshaped(stack: StackProcess) -> None:
    status, _, body = http(stack, "POST", "/echo/fixed", b"a=1", {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 415 and json.loads(body)["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_unknown_route_and_wrong_method_have_error_codes(stack: StackProcess) -> None:
    status, _, body = http(stack, "GET", "/nowhere")
    assert status == 404 and json.loads(body)["error"]["code"] == "ROUTE_NOT_FOUND"
    status, headers, body = http(stack, "GET", "/echo/x")
    assert status == 405 and json.loads(body)["error"]["code"] == "METHOD_NOT_ALLOWED"
    assert "POST" in {k.lower(): v for k, v in headers.items()}["allow"]


def test_app_errors_and_crashes_use_the_error_shape(stack: StackProcess) -> None:
    status, _, body = http(stack, "GET", "/boom")
    error = json.loads(body)["error"]
    assert status == 409 and error["code"] == "PROBE_CONFLICT" and error["request_id"]
    status, _, body = http(stack, "GET", "/crash")
    error = json.loads(body)["error"]
    assert status == 500 and error["code"] == "INTERNAL" and "unexpected" not in body.decode()


def test_body_over_10_mb_is_refused(stack: StackProcess) -> None:
    status, _, body = http(
        stack, "POST", "/echo/big", b"x" * (10 * 1024 * 1024 + 1), {"Content-Type": "application/json"}
    )
    assert status == 413 and json.loads(body)["error"]["code"] == "PAYLOAD_TOO_LARGE"


def test_concurrent_requests_see_their_own_request(stack: StackProcess) -> None:
    results: dict[int, Any] = {}

    def call(i: int) -> None:
        results[i] = json.loads(http(stack, "POST", f"/echo/n{i}", b"", {"Content-Type": "application/json"})[2])

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(results[i]["seen_name"] == f"n{i}" for i in range(40))


def test_s3_object_reaches_handler_through_queue(stack: StackProcess) -> None:
    s3 = stack.client("s3")
    bucket = stack.ref("UploadsBucket")
    s3.put_object(Bucket=bucket, Key="incoming/study 1/img+1.dcm", Body=b"DICM")
    s3.put_object(Bucket=bucket, Key="elsewhere/ignored.dcm", Body=b"DICM")  # outside the prefix filter
    got = wait_for(lambda: probes(stack, "upload"))
    assert got == [{"key": "incoming/study 1/img+1.dcm", "bucket": bucket}]
    time.sleep(1.5)
    assert all(p["key"].startswith("incoming/") for p in probes(stack, "upload"))


def test_reported_batch_failures_end_in_the_dead_letter_queue(stack: StackProcess) -> None:
    s3 = stack.client("s3")
    s3.put_object(Bucket=stack.ref("UploadsBucket"), Key="incoming/fail-me.dcm", Body=b"x")
    sqs = stack.client("sqs")
    dlq = stack.ref("UploadsQueueDLQ")

    def dead() -> list[dict[str, Any]]:
        return sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])

    messages = wait_for(dead, timeout=30)
    assert "fail-me" in messages[0]["Body"]


def test_handler_exception_retries_then_dead_letters(stack: StackProcess) -> None:
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=stack.ref("JobsQueue"), MessageBody="good")
    wait_for(lambda: probes(stack, "job"))
    sqs.send_message(QueueUrl=stack.ref("JobsQueue"), MessageBody="poison")

    def dead() -> list[dict[str, Any]]:
        return sqs.receive_message(QueueUrl=stack.ref("JobsDLQ"), WaitTimeSeconds=1).get("Messages", [])

    assert wait_for(dead, timeout=30)[0]["Body"] == "poison"
    assert probes(stack, "job") == [{"body": "good"}]


def test_sam_s3_event_invokes_with_one_record(stack: StackProcess) -> None:
    s3 = stack.client("s3")
    bucket = stack.ref("DirectBucket")
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"skip")  # suffix filter excludes it
    s3.put_object(Bucket=bucket, Key="a/b.dcm", Body=b"x")
    got = wait_for(lambda: probes(stack, "direct"))
    assert got == [{"key": "a/b.dcm", "bucket": bucket}]


def test_schedule_fired_by_cli_gets_its_input(stack: StackProcess) -> None:
    result = stack.cli("stack", "fire", "TickFunction.WithInput", "--stack", str(stack.state_dir / "stack.json"))
    assert result.returncode == 0, result.stderr
    assert {"detail_type": None, "kind": "nightly"} in probes(stack, "tick")
    missing = stack.cli("stack", "fire", "NoSuch", "--stack", str(stack.state_dir / "stack.json"))
    assert missing.returncode == 1 and "SCHEDULE_NOT_FOUND" in missing.stderr


def test_domain_events_reach_only_subscribed_consumers(stack: StackProcess) -> None:
    from typing import ClassVar

    from bianjie.kit.events import EventContract, Publisher, SnsSink

    class Other(EventContract):
        event_type: ClassVar[str] = "x.other"
        n: int

    class Wanted(Other):
        event_type: ClassVar[str] = "x.wanted"

    publisher = Publisher(SnsSink(stack.client("sns"), stack.ref("EventsTopic")), "bianjie.test")
    publisher.publish(Other(n=1), event_id="e1")
    publisher.publish(Wanted(n=2), subject="thing-2", event_id="e2")
    got = wait_for(lambda: probes(stack, "event"))
    time.sleep(1.0)
    assert probes(stack, "event") == got == [{"type": "x.wanted", "data": {"n": 2}}]


def test_state_file_names_every_resource(stack: StackProcess) -> None:
    dep = stack.deployment
    for logical in ("ProbeTable", "UploadsQueue", "UploadsQueueDLQ", "UploadsBucket", "EchoFunction"):
        assert logical in dep["resources"]
    assert dep["aws_endpoint_url"] == stack.aws_url and dep["gateway_url"] == stack.url
    cors = stack.client("s3").get_bucket_cors(Bucket=stack.ref("UploadsBucket"))["CORSRules"]
    assert cors[0]["AllowedMethods"] == ["GET"]


# Last in the module: the minute it waits for since the stack started is spent by the tests above.
def test_rate_schedule_fires_on_its_own(stack: StackProcess) -> None:
    """rate(1 minute) fires a minute after start without anyone asking."""
    got = wait_for(lambda: [p for p in probes(stack, "tick") if p["detail_type"] == "Scheduled Event"], timeout=75)
    assert got[0] == {"detail_type": "Scheduled Event", "kind": None}
    status = stack.status()
    assert any(j["name"] == "TickFunction.EveryMinute" and j["runs"] >= 1 for j in status["schedules"])
