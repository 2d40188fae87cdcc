"""The local stack's moto does per-request work that does not grow with tables and queues
(bianjie_dev.runtime.motoquery, fixes 11 and 12; bianjie_dev.runtime.motosqs, fix 13).

Each cost test counts the work moto does (comparisons in a sort, passes over a queue's messages), which
the machine's load does not change, and fails without its fix. Each behaviour test checks the answers are
those DynamoDB and SQS document.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from bianjie_dev.runtime.motoserver import tune_dynamodb, tune_models
from bianjie_dev.runtime.motosqs import tune_sqs
from moto import mock_aws

REGION = "cn-north-1"


@pytest.fixture
def aws() -> Iterator[None]:
    tune_dynamodb()
    tune_models()
    tune_sqs()
    with mock_aws():
        yield


def client(service: str) -> Any:
    return boto3.client(service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def make_table(db: Any, name: str = "rx") -> None:
    db.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
            {"AttributeName": "patient", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_patient",
                "KeySchema": [
                    {"AttributeName": "patient", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def fill(db: Any, partitions: int, per_partition: int, name: str = "rx") -> None:
    # in no particular order, as random ids arrive: a sorted insertion order would let Python's sort
    # pass over the table in one linear run and hide its cost
    pairs = [(p, n) for p in range(partitions) for n in range(per_partition)]
    random.Random(7).shuffle(pairs)
    for p, n in pairs:
        item = {"pk": {"S": f"p{p:04d}"}, "sk": {"N": str(n)}, "body": {"S": "x"}}
        if n % 2 == 0:  # half the items carry the index key: the rest are not in the index
            item["patient"] = {"S": f"patient-{p % 7}"}
        db.put_item(TableName=name, Item=item)


def keys(page: dict[str, Any]) -> list[tuple[str, int]]:
    return [(i["pk"]["S"], int(i["sk"]["N"])) for i in page["Items"]]


@pytest.fixture
def comparisons(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many ``DynamoType.__lt__`` calls (sort comparisons) moto makes."""
    from moto.dynamodb.models.dynamo_type import DynamoType

    seen = [0]
    original = DynamoType.__lt__

    def lt(self: Any, other: Any) -> bool:
        seen[0] += 1
        return original(self, other)

    monkeypatch.setattr(DynamoType, "__lt__", lt)
    return seen


def test_a_table_query_does_not_sort_the_table(aws: None, comparisons: list[int]) -> None:
    db = client("dynamodb")
    make_table(db)
    fill(db, partitions=300, per_partition=4)
    comparisons[0] = 0
    page = db.query(TableName="rx", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p0123"}})
    assert keys(page) == [("p0123", n) for n in range(4)]
    # sorting the table's 1,200 items costs ~9,300 comparisons; the partition's four a handful
    assert comparisons[0] < 100


def test_an_index_query_does_not_sort_the_table(aws: None, comparisons: list[int]) -> None:
    db = client("dynamodb")
    make_table(db)
    fill(db, partitions=300, per_partition=4)
    comparisons[0] = 0
    page = db.query(
        TableName="rx",
        IndexName="by_patient",
        KeyConditionExpression="patient = :p",
        ExpressionAttributeValues={":p": {"S": "patient-3"}},
    )
    assert len(page["Items"]) == 2 * len([p for p in range(300) if p % 7 == 3])
    # sorting the table's 1,200 items costs ~9,600 comparisons; its ~86 matching items ~800
    assert comparisons[0] < 2_000


def test_queries_answer_as_dynamodb_documents(aws: None) -> None:
    """Range conditions, order, limits and pages on the table and on the index, against a Python model."""
    db = client("dynamodb")
    make_table(db)
    fill(db, partitions=20, per_partition=10)
    values = {":p": {"S": "p0007"}, ":lo": {"N": "3"}}
    page = db.query(
        TableName="rx",
        KeyConditionExpression="pk = :p AND sk >= :lo",
        ExpressionAttributeValues=values,
        ScanIndexForward=False,
        Limit=4,
    )
    assert keys(page) == [("p0007", n) for n in (9, 8, 7, 6)]
    rest = db.query(
        TableName="rx",
        KeyConditionExpression="pk = :p AND sk >= :lo",
        ExpressionAttributeValues=values,
        ScanIndexForward=False,
        ExclusiveStartKey=page["LastEvaluatedKey"],
    )
    assert keys(rest) == [("p0007", n) for n in (5, 4, 3)]
    assert (
        db.query(TableName="rx", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "absent"}})[
            "Items"
        ]
        == []
    )

    expected = sorted(
        ((f"p{p:04d}", n) for p in range(20) if p % 7 == 2 for n in range(0, 10, 2)), key=lambda k: (k[1], k[0])
    )
    got: list[tuple[str, int]] = []
    start: dict[str, Any] | None = None
    while True:
        params: dict[str, Any] = {
            "TableName": "rx",
            "IndexName": "by_patient",
            "KeyConditionExpression": "patient = :p",
            "ExpressionAttributeValues": {":p": {"S": "patient-2"}},
            "Limit": 3,
        }
        if start:
            params["ExclusiveStartKey"] = start
        page = db.query(**params)
        got += keys(page)
        start = page.get("LastEvaluatedKey")
        if not start:
            break
    assert got == expected  # index order: the index's sort key, then the table's key


def test_a_failed_transaction_undoes_each_of_its_writes(aws: None) -> None:
    from moto.dynamodb.models.table import Table

    db = client("dynamodb")
    make_table(db)
    db.put_item(TableName="rx", Item={"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "old"}})
    db.put_item(TableName="rx", Item={"pk": {"S": "d"}, "sk": {"N": "1"}, "v": {"S": "kept"}})
    db.put_item(TableName="rx", Item={"pk": {"S": "u"}, "sk": {"N": "1"}, "n": {"N": "1"}})
    before = db.scan(TableName="rx")["Items"]
    with pytest.raises(db.exceptions.TransactionCanceledException):
        db.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": "rx", "Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "new"}}}},
                {"Put": {"TableName": "rx", "Item": {"pk": {"S": "fresh"}, "sk": {"N": "1"}}}},
                {"Delete": {"TableName": "rx", "Key": {"pk": {"S": "d"}, "sk": {"N": "1"}}}},
                {
                    "Update": {
                        "TableName": "rx",
                        "Key": {"pk": {"S": "u"}, "sk": {"N": "1"}},
                        "UpdateExpression": "SET n = n + :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": "rx",
                        "Key": {"pk": {"S": "nobody"}, "sk": {"N": "1"}},
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    assert db.scan(TableName="rx")["Items"] == before
    assert len(list(Table.instances_tracked)) == 1  # the table itself, no copy
    # and a transaction that succeeds keeps all of its writes
    db.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": "rx", "Item": {"pk": {"S": "a"}, "sk": {"N": "1"}, "v": {"S": "new"}}}},
            {"Delete": {"TableName": "rx", "Key": {"pk": {"S": "d"}, "sk": {"N": "1"}}}},
        ]
    )
    assert {i["pk"]["S"]: i.get("v", {}).get("S") for i in db.scan(TableName="rx")["Items"]} == {"a": "new", "u": None}


class CountingList(list[Any]):
    """A queue's message list that counts the passes over it."""

    passes = 0

    def __iter__(self) -> Iterator[Any]:
        CountingList.passes += 1
        return super().__iter__()


def test_sends_and_receives_do_not_count_the_queue(aws: None) -> None:
    from moto.sqs.models import sqs_backends

    sqs = client("sqs")
    url = sqs.create_queue(QueueName="events")["QueueUrl"]
    for n in range(200):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    queue = sqs_backends["123456789012"][REGION].queues["events"]
    queue._messages = CountingList(queue._messages)
    CountingList.passes = 0
    for n in range(10):
        sqs.send_message(QueueUrl=url, MessageBody=f"late{n}")
    assert CountingList.passes == 0  # moto counted the queue three times per send
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert len(got) == 10
    assert CountingList.passes <= 2  # one pass to find visible messages; moto added three per message


def test_queue_counts_and_deletes_answer_as_sqs_documents(aws: None) -> None:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="events", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for n in range(5):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2)["Messages"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["ApproximateNumberOfMessages"] == "3"
    assert attrs["ApproximateNumberOfMessagesNotVisible"] == "2"
    assert attrs["ApproximateNumberOfMessagesDelayed"] == "1"
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=got[0]["ReceiptHandle"])  # again: accepted
    with pytest.raises(sqs.exceptions.ReceiptHandleIsInvalid):
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-handle")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"
