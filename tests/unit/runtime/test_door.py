"""What the emulator's door takes a call to do: IAM actions and resource ARNs per service."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bianjie_dev.runtime.door import Call, dynamodb_checks, refusal, s3_checks, sns_checks, sqs_checks, sts_checks

ARN = "arn:aws-cn:dynamodb:cn-north-1:123456789012:table/"


def call(
    service: str,
    *,
    target: str = "",
    body: bytes = b"",
    method: str = "POST",
    path: str = "/",
    query: dict[str, list[str]] | None = None,
    headers: dict[str, str] | None = None,
) -> Call:
    hdrs = {"x-amz-target": target} if target else {}
    hdrs.update(headers or {})
    return Call(service, "cn-north-1", "ASIAX", False, method, path, query or {}, hdrs, body)


def dynamo(op: str, body: dict[str, object]) -> list[tuple[str, str]]:
    return dynamodb_checks(call("dynamodb", target=f"DynamoDB_20120810.{op}", body=json.dumps(body).encode()))


def test_dynamodb_single_item_and_index_calls() -> None:
    assert dynamo("PutItem", {"TableName": "t"}) == [("dynamodb:PutItem", ARN + "t")]
    assert dynamo("Query", {"TableName": "t", "IndexName": "by_x"}) == [("dynamodb:Query", ARN + "t/index/by_x")]
    assert dynamo("ListTables", {}) == [("dynamodb:ListTables", "*")]


def test_dynamodb_transactions_are_authorised_item_by_item_as_aws_does() -> None:
    items = [
        {"Put": {"TableName": "a"}},
        {"ConditionCheck": {"TableName": "b"}},
        {"Update": {"TableName": "c"}},
        {"Delete": {"TableName": "d"}},
    ]
    assert dynamo("TransactWriteItems", {"TransactItems": items}) == [
        ("dynamodb:PutItem", ARN + "a"),
        ("dynamodb:ConditionCheckItem", ARN + "b"),
        ("dynamodb:UpdateItem", ARN + "c"),
        ("dynamodb:DeleteItem", ARN + "d"),
    ]
    assert dynamo("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "a"}}]}) == [
        ("dynamodb:GetItem", ARN + "a")
    ]
    assert dynamo("BatchWriteItem", {"RequestItems": {"a": [], "b": []}}) == [
        ("dynamodb:BatchWriteItem", ARN + "a"),
        ("dynamodb:BatchWriteItem", ARN + "b"),
    ]


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", "/b/k/x.dcm", {}, [("s3:GetObject", "arn:aws-cn:s3:::b/k/x.dcm")]),
        ("HEAD", "/b/k", {}, [("s3:GetObject", "arn:aws-cn:s3:::b/k")]),
        ("PUT", "/b/k", {}, [("s3:PutObject", "arn:aws-cn:s3:::b/k")]),
        ("DELETE", "/b/k", {}, [("s3:DeleteObject", "arn:aws-cn:s3:::b/k")]),
        ("GET", "/b", {"list-type": ["2"]}, [("s3:ListBucket", "arn:aws-cn:s3:::b")]),
        ("PUT", "/b", {"cors": [""]}, [("s3:PutBucketCORS", "arn:aws-cn:s3:::b")]),
        ("POST", "/b/k", {"uploads": [""]}, [("s3:PutObject", "arn:aws-cn:s3:::b/k")]),
        ("DELETE", "/b/k", {"uploadId": ["u"]}, [("s3:AbortMultipartUpload", "arn:aws-cn:s3:::b/k")]),
        ("GET", "/", {}, [("s3:ListAllMyBuckets", "*")]),
    ],
)
def test_s3_actions(method: str, path: str, query: dict[str, list[str]], expected: list[tuple[str, str]]) -> None:
    assert s3_checks(call("s3", method=method, path=path, query=query)) == expected


def test_s3_copy_needs_read_on_the_source_and_batch_delete_each_key() -> None:
    copy = call("s3", method="PUT", path="/b/new", headers={"x-amz-copy-source": "/a/old%20key"})
    assert s3_checks(copy) == [("s3:PutObject", "arn:aws-cn:s3:::b/new"), ("s3:GetObject", "arn:aws-cn:s3:::a/old key")]
    body = b"<Delete><Object><Key>x</Key></Object><Object><Key>y&amp;z</Key></Object></Delete>"
    assert s3_checks(call("s3", method="POST", path="/b", query={"delete": [""]}, body=body)) == [
        ("s3:DeleteObject", "arn:aws-cn:s3:::b/x"),
        ("s3:DeleteObject", "arn:aws-cn:s3:::b/y&z"),
    ]


def test_sqs_json_and_query_protocols_name_the_queue() -> None:
    queue = "arn:aws-cn:sqs:cn-north-1:123456789012:q1"
    body = json.dumps({"QueueUrl": "http://127.0.0.1:5000/123456789012/q1"}).encode()
    assert sqs_checks(call("sqs", target="AmazonSQS.SendMessageBatch", body=body)) == [("sqs:SendMessage", queue)]
    assert sqs_checks(call("sqs", body=b"Action=GetQueueUrl&QueueName=q1")) == [("sqs:GetQueueUrl", queue)]


def test_sns_and_sts() -> None:
    topic = "arn:aws-cn:sns:cn-north-1:123456789012:t"
    assert sns_checks(call("sns", body=f"Action=Publish&TopicArn={topic}".encode())) == [("sns:Publish", topic)]
    assert sns_checks(call("sns", body=f"Action=PublishBatch&TopicArn={topic}".encode())) == [("sns:Publish", topic)]
    assert sts_checks(call("sts", body=b"Action=GetCallerIdentity")) == []  # allowed to everyone
    assert sts_checks(call("sts", body=b"Action=AssumeRole&RoleArn=arn:r")) == [("sts:AssumeRole", "arn:r")]


def test_refusals_have_each_services_own_shape() -> None:
    import botocore.session
    from botocore.parsers import create_parser

    session = botocore.session.get_session()
    for service, protocol in (
        ("dynamodb", "json"),
        ("kms", "json"),
        ("s3", "rest-xml"),
        ("sns", "query"),
        ("sts", "query"),
    ):
        status, headers, body = refusal(service, call(service), "no")
        model = session.get_service_model(service)
        parsed = create_parser(model.metadata["protocol"]).parse(
            {"status_code": int(status.split()[0]), "headers": dict(headers), "body": body}, None
        )
        expected = {"dynamodb": "AccessDeniedException", "kms": "AccessDeniedException", "sns": "AuthorizationError"}
        assert parsed["Error"]["Code"] == expected.get(service, "AccessDenied"), (service, protocol)


def test_the_tally_counts_calls_and_cpu_by_action_and_table(tmp_path: Any) -> None:
    from bianjie_dev.runtime.door import Tally, _action_of

    def call(service: str, target: str = "", body: bytes = b"") -> Call:
        headers = {"x-amz-target": target} if target else {}
        return Call(service, "cn-north-1", "AKIA", False, "POST", "/", {}, headers, body)

    put = call("dynamodb", "DynamoDB_20120810.PutItem", json.dumps({"TableName": "bianjie-RxTable"}).encode())
    transact = call(
        "dynamodb",
        "DynamoDB_20120810.TransactWriteItems",
        json.dumps(
            {"TransactItems": [{"Put": {"TableName": "bianjie-RxTable"}}, {"Update": {"TableName": "bianjie-Outbox"}}]}
        ).encode(),
    )
    send = call("sqs", body=b"Action=SendMessage&QueueUrl=x")
    assert [_action_of(c) for c in (put, transact, send)] == [
        "PutItem bianjie-RxTable",
        "TransactWriteItems bianjie-Outbox+bianjie-RxTable",
        "SendMessage",
    ]
    path = tmp_path / "tally.json"
    tally = Tally(str(path))
    tally.add("dynamodb:PutItem bianjie-RxTable", 0.002)
    tally.add("dynamodb:PutItem bianjie-RxTable", 0.001)
    tally.write()
    assert json.loads(path.read_text()) == {"dynamodb:PutItem bianjie-RxTable": {"calls": 2, "cpu_s": 0.003}}
