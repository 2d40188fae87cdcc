"""The local stack's moto holds only what is alive (bianjie_dev.runtime.motoserver, fix 5).

Without ``tune_models`` every table snapshot of a transaction, every overwritten item and every message
stays referenced from moto's ``instances_tracked`` lists for the life of the server: the e-prescription
benchmark's emulator grew past 7.5 GB.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from bianjie_dev.runtime.motoserver import SNS_SENT_KEPT, WeakInstances, tune_dynamodb, tune_models
from moto import mock_aws

REGION = "cn-north-1"


@pytest.fixture
def aws() -> Iterator[None]:
    tune_dynamodb()
    tune_models()
    with mock_aws():
        yield


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def test_transactions_on_a_table_leave_no_snapshot_behind(aws: None) -> None:
    from moto.dynamodb.models.table import Table

    db = client("dynamodb")
    db.create_table(
        TableName="chain",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(60):
        item = {"pk": {"S": "day"}, "sk": {"N": str(n)}, "body": {"S": "x" * 100}}
        db.transact_write_items(TransactItems=[{"Put": {"TableName": "chain", "Item": item}}])
    # a failed transaction restores from its snapshot: the snapshot becomes the table, still one table
    with pytest.raises(db.exceptions.TransactionCanceledException):
        db.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": "chain",
                        "Item": {"pk": {"S": "day"}, "sk": {"N": "0"}},
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                }
            ]
        )
    gc.collect()
    assert len(list(Table.instances_tracked)) == 1
    assert (
        db.query(TableName="chain", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "day"}})[
            "Count"
        ]
        == 60
    )


def test_overwritten_items_are_released(aws: None) -> None:
    from moto.dynamodb.models.dynamo_type import Item

    db = client("dynamodb")
    db.create_table(
        TableName="one",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for n in range(50):
        db.put_item(TableName="one", Item={"pk": {"S": "same"}, "n": {"N": str(n)}})
    gc.collect()
    assert len(list(Item.instances_tracked)) <= 2  # the stored item (and at most one in flight)


def test_sns_keeps_a_bounded_tail_of_published_messages(aws: None) -> None:
    from moto.sns.models import sns_backends

    sns = client("sns")
    topic = sns.create_topic(Name="events")["TopicArn"]
    for n in range(SNS_SENT_KEPT + 20):
        sns.publish(TopicArn=topic, Message=json.dumps({"n": n}))
    sent = sns_backends["123456789012"][REGION].topics[topic].sent_notifications
    assert len(sent) == SNS_SENT_KEPT
    assert json.loads(sent[-1][1]) == {"n": SNS_SENT_KEPT + 19}


def test_the_dashboard_still_sees_every_live_instance(aws: None) -> None:
    from moto.sqs.models import Queue

    sqs = client("sqs")
    urls = [sqs.create_queue(QueueName=f"q{n}")["QueueUrl"] for n in range(3)]
    assert {q.name for q in Queue.instances_tracked} >= {"q0", "q1", "q2"}
    sqs.delete_queue(QueueUrl=urls[0])
    gc.collect()
    assert "q0" not in {q.name for q in Queue.instances_tracked}


def test_weak_instances_forget_the_dead_and_accept_unhashable_models() -> None:
    class Model:
        __hash__ = None  # type: ignore[assignment]  # moto models may define __eq__ without __hash__

    tracked = WeakInstances()
    kept, dropped = Model(), Model()
    tracked.append(kept)
    tracked.append(dropped)
    del dropped
    gc.collect()
    assert list(tracked) == [kept]
    assert len(tracked) == 1


def test_an_item_is_built_in_linear_time_and_the_size_limit_still_holds(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    db = client("dynamodb")
    db.create_table(
        TableName="wide",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    sizes = [0]
    size = DynamoType.size

    def counted(self: Any) -> int:
        sizes[0] += 1
        return size(self)

    monkeypatch.setattr(DynamoType, "size", counted)
    wide = {"pk": {"S": "w"}, **{f"a{n}": {"S": "v"} for n in range(300)}}
    db.put_item(TableName="wide", Item=wide)
    assert sizes[0] < 1000  # one size per attribute (moto alone: ~45,000 for 301 attributes)
    assert len(db.get_item(TableName="wide", Key={"pk": {"S": "w"}})["Item"]) == 301

    with pytest.raises(db.exceptions.ClientError, match="Item size has exceeded the maximum allowed size"):
        db.put_item(TableName="wide", Item={"pk": {"S": "big"}, **{f"b{n}": {"S": "x" * 100_000} for n in range(5)}})
    db.put_item(TableName="wide", Item={"pk": {"S": "fits"}, **{f"b{n}": {"S": "x" * 100_000} for n in range(3)}})


RICH_ITEM = {
    "pk": {"S": "k"},
    "empty": {"S": ""},
    "n": {"N": "1.5"},
    "b": {"B": b"\x00\xff"},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"x", b"y"]},
    "t": {"BOOL": True},
    "f": {"BOOL": False},
    "z": {"NULL": True},
    "m": {"M": {"a": {"L": [{"S": "x"}, {"M": {}}, {"N": "3"}, {"BOOL": False}, {"B": b"q"}]}, "e": {"L": []}}},
}


@pytest.mark.parametrize(
    ("operation", "result"),
    [
        ("GetItem", {"Item": RICH_ITEM}),
        ("Query", {"Items": [RICH_ITEM, {"pk": {"S": "2"}}], "Count": 2, "LastEvaluatedKey": {"pk": {"S": "2"}}}),
        ("PutItem", {"Attributes": RICH_ITEM}),
    ],
)
def test_items_are_serialised_byte_for_byte_as_moto_does(
    aws: None, monkeypatch: pytest.MonkeyPatch, operation: str, result: dict[str, Any]
) -> None:
    from moto.core.serialize import JSONSerializer, XFormedAttributePicker
    from moto.core.utils import get_service_model

    def body() -> str:
        model = get_service_model("dynamodb").operation_model(operation)
        serializer = JSONSerializer(operation_model=model, pretty_print=False, value_picker=XFormedAttributePicker())
        return str(serializer.serialize(result)["body"])

    direct = body()
    monkeypatch.setattr(
        JSONSerializer, "_serialize_type_structure", JSONSerializer._serialize_type_structure._bianjie_original
    )
    assert direct == body()


def test_every_attribute_type_round_trips(aws: None) -> None:
    db = client("dynamodb")
    db.create_table(
        TableName="rich",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    db.put_item(TableName="rich", Item=RICH_ITEM)
    assert db.get_item(TableName="rich", Key={"pk": {"S": "k"}})["Item"] == RICH_ITEM


def test_a_condition_expression_is_lexed_once_and_judged_with_each_requests_values(
    aws: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    db = client("dynamodb")
    db.create_table(
        TableName="versions",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    lexed = [0]
    lex_one = ConditionExpressionParser._lex_one_node

    def counted(self: Any, remaining: str) -> Any:
        lexed[0] += 1
        return lex_one(self, remaining)

    monkeypatch.setattr(ConditionExpressionParser, "_lex_one_node", counted)
    condition = "attribute_not_exists(pk) OR (#v = :expected AND #v < :limit)"  # a shape never sent before
    db.put_item(TableName="versions", Item={"pk": {"S": "a"}, "v": {"N": "1"}})

    def put(version: int, expected: int) -> None:
        db.put_item(
            TableName="versions",
            Item={"pk": {"S": "a"}, "v": {"N": str(version)}},
            ConditionExpression=condition,
            ExpressionAttributeNames={"#v": "v"},
            ExpressionAttributeValues={":expected": {"N": str(expected)}, ":limit": {"N": "10"}},
        )

    put(2, expected=1)
    first = lexed[0]
    assert first > 0
    with pytest.raises(db.exceptions.ConditionalCheckFailedException):
        put(3, expected=1)  # the stored version is 2 now
    put(3, expected=2)
    assert lexed[0] == first  # the tokens were remembered; the values were each request's own
    assert db.get_item(TableName="versions", Key={"pk": {"S": "a"}})["Item"]["v"] == {"N": "3"}
