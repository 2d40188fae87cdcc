"""The local stack's moto holds only what is alive (bianjie.runtime.motoserver, fix 5).

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
from bianjie.runtime.motoserver import SNS_SENT_KEPT, WeakInstances, tune_dynamodb, tune_models
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

    topic = client("sns").create_topic(Name="events")["TopicArn"]
    for n in range(SNS_SENT_KEPT + 20):
        client("sns").publish(TopicArn=topic, Message=json.dumps({"n": n}))
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
