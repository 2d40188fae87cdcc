"""Fix 16 of ``bianjie_dev.runtime.motoserver``: DynamoDB data-plane bodies read with ``json.loads`` and a
blob-decoding hook give what moto's botocore-shape parser gives, for every kind of body the documents
adapter sends (and blobs, sets and attributes named like AttributeValue members)."""

from __future__ import annotations

from typing import Any

import pytest
from bianjie_dev.runtime.motoserver import FAST_PARSED, parse_dynamodb_body
from botocore.serialize import create_serializer
from moto.core.parse import PROTOCOL_PARSERS
from moto.core.responses import get_service_model

ITEM = {
    "pk": {"S": "study#1.2.3"},
    "sk": {"S": "inst#4#5"},
    "n": {"N": "12.50"},
    "blob": {"B": b"\x00\xffbinary"},
    "blobs": {"BS": [b"a", b"\x01\x02"]},
    "strings": {"SS": ["x", "y"]},
    "numbers": {"NS": ["1", "2.5"]},
    "flag": {"BOOL": False},
    "nothing": {"NULL": True},
    "B": {"S": "an attribute named B"},
    "BS": {"M": {"B": {"B": b"nested"}, "S": {"L": [{"B": b"in a list"}, {"N": "3"}]}}},
    "empty": {"M": {}},
    "list": {"L": []},
    "text": {"S": "患者 \u0000 NUL"},
}
KEY = {"pk": {"S": "p"}, "sk": {"S": "s"}}
VALUES = {":v": {"N": "3"}, ":b": {"B": b"\x10"}, ":m": {"M": {"B": {"S": "b"}}}}

BODIES: list[tuple[str, dict[str, Any]]] = [
    ("PutItem", {"TableName": "t", "Item": ITEM, "ConditionExpression": "attribute_not_exists(pk)"}),
    ("PutItem", {"TableName": "t", "Item": ITEM, "ReturnValues": "ALL_OLD", "ReturnConsumedCapacity": "TOTAL"}),
    ("GetItem", {"TableName": "t", "Key": KEY, "ConsistentRead": True, "ProjectionExpression": "#a, b"}),
    (
        "UpdateItem",
        {
            "TableName": "t",
            "Key": KEY,
            "UpdateExpression": "SET #v = :v, b = :b, m = :m",
            "ConditionExpression": "#v < :v",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": VALUES,
            "ReturnValues": "ALL_NEW",
        },
    ),
    ("DeleteItem", {"TableName": "t", "Key": KEY, "ConditionExpression": "attribute_exists(pk)"}),
    (
        "Query",
        {
            "TableName": "t",
            "IndexName": "by-x",
            "KeyConditionExpression": "pk = :v AND begins_with(sk, :b)",
            "ExpressionAttributeValues": VALUES,
            "ExclusiveStartKey": KEY,
            "Limit": 25,
            "ScanIndexForward": False,
            "Select": "ALL_ATTRIBUTES",
        },
    ),
    (
        "Scan",
        {
            "TableName": "t",
            "Segment": 0,
            "TotalSegments": 2,
            "FilterExpression": "b = :b",
            "ExpressionAttributeValues": VALUES,
        },
    ),
    ("BatchGetItem", {"RequestItems": {"t": {"Keys": [KEY, KEY], "ConsistentRead": True}}}),
    (
        "BatchWriteItem",
        {"RequestItems": {"t": [{"PutRequest": {"Item": ITEM}}, {"DeleteRequest": {"Key": KEY}}]}},
    ),
    ("TransactGetItems", {"TransactItems": [{"Get": {"TableName": "t", "Key": KEY}}]}),
    (
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": "t", "Item": ITEM, "ConditionExpression": "attribute_not_exists(pk)"}},
                {
                    "Update": {
                        "TableName": "u",
                        "Key": KEY,
                        "UpdateExpression": "SET #v = :v",
                        "ExpressionAttributeNames": {"#v": "v"},
                        "ExpressionAttributeValues": VALUES,
                    }
                },
                {"Delete": {"TableName": "t", "Key": KEY}},
                {"ConditionCheck": {"TableName": "t", "Key": KEY, "ConditionExpression": "attribute_exists(pk)"}},
            ],
            "ClientRequestToken": "token-1",
        },
    ),
]


def moto_parse(action: str, body: bytes) -> Any:
    operation = get_service_model("dynamodb").operation_model(action)
    parser = PROTOCOL_PARSERS["json"](operation, map_type=dict)
    request = {"method": "POST", "values": {}, "headers": {}, "body": body, "url_path": "/", "url_params": {}}
    return parser.parse(request)


@pytest.mark.parametrize(("action", "params"), BODIES, ids=[f"{n}-{a}" for n, (a, _) in enumerate(BODIES)])
def test_the_fast_parse_equals_motos_shape_parse(action: str, params: dict[str, Any]) -> None:
    assert action in FAST_PARSED
    operation = get_service_model("dynamodb").operation_model(action)
    body = create_serializer("json").serialize_to_request(params, operation)["body"]  # as boto3 sends it
    assert parse_dynamodb_body(body) == moto_parse(action, body)


def test_every_data_call_the_documents_adapter_makes_is_fast_parsed() -> None:
    import re
    from pathlib import Path

    source = (Path(__file__).parents[3] / "layers/core/python/bianjie/kit/documents/dynamodb.py").read_text()
    called = {"".join(w.title() for w in m.split("_")) for m in re.findall(r"_client\.(\w+)\(", source)}
    data = {c for c in called if not c.startswith(("Describe", "Create", "Update" + "TimeToLive"))}
    assert data, called
    assert data <= FAST_PARSED, data - FAST_PARSED
