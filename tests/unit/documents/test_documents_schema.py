"""spec_from_template: template.yaml's table resources become the TableSpecs the stores need."""

from __future__ import annotations

from pathlib import Path

import pytest
from bianjie.kit.documents import IndexSpec, TableSpec
from bianjie.kit.documents.schema import spec_from_template, table_resources

ROOT = Path(__file__).resolve().parents[3]

AUDIT = {
    "Type": "AWS::DynamoDB::Table",
    "DeletionPolicy": "Retain",
    "Properties": {
        "TableName": {"Fn::Sub": "${AWS::StackName}-audit"},
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "chain", "AttributeType": "S"},
            {"AttributeName": "seq", "AttributeType": "N"},
            {"AttributeName": "kind", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "chain", "KeyType": "HASH"}, {"AttributeName": "seq", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": "by_kind",
                "KeySchema": [
                    {"AttributeName": "kind", "KeyType": "HASH"},
                    {"AttributeName": "chain", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        "TimeToLiveSpecification": {"AttributeName": "expires_at", "Enabled": True},
    },
}


def test_full_resource() -> None:
    spec = spec_from_template(AUDIT, "stack-AuditTable-1X2Y")
    assert spec == TableSpec(
        name="stack-AuditTable-1X2Y",
        partition_key="chain",
        sort_key="seq",
        key_types={"chain": "S", "seq": "N", "kind": "S"},
        indexes=(IndexSpec("by_kind", "kind", "chain"),),
        ttl_attribute="expires_at",
    )


def test_properties_only_and_hash_only() -> None:
    props = {
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
    }
    assert spec_from_template(props, "nonces") == TableSpec("nonces", "pk", None, {"pk": "S"})


@pytest.mark.parametrize(("enabled", "want"), [(True, "ttl"), ("true", "ttl"), (False, None), ("false", None)])
def test_ttl_only_when_enabled(enabled: object, want: str | None) -> None:
    props = {
        "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        "TimeToLiveSpecification": {"AttributeName": "ttl", "Enabled": enabled},
    }
    assert spec_from_template(props, "t").ttl_attribute == want


def test_local_secondary_indexes_count_as_indexes() -> None:
    props = {
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "at", "AttributeType": "N"},
        ],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "LocalSecondaryIndexes": [
            {
                "IndexName": "by_time",
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "at", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }
    assert spec_from_template(props, "t").indexes == (IndexSpec("by_time", "pk", "at"),)


def test_simple_table() -> None:
    resource = {"Type": "AWS::Serverless::SimpleTable", "Properties": {"PrimaryKey": {"Name": "id", "Type": "Number"}}}
    assert spec_from_template(resource, "t") == TableSpec("t", "id", None, {"id": "N"})
    assert spec_from_template({"Type": "AWS::Serverless::SimpleTable"}, "t") == TableSpec("t", "id", None, {"id": "S"})


@pytest.mark.parametrize(
    "props",
    [
        {  # key attribute not defined
            "AttributeDefinitions": [],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        },
        {  # binary keys are outside the port's contract
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "B"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
        },
        {  # no HASH key
            "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
            "KeySchema": [{"AttributeName": "pk", "KeyType": "RANGE"}],
        },
    ],
)
def test_rejects_what_the_port_cannot_serve(props: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        spec_from_template(props, "t")


def test_every_table_of_the_project_template_converts() -> None:
    from bianjie.runtime.template import load_yaml

    template = load_yaml(ROOT / "template.yaml")
    tables = table_resources(template)
    assert tables, "template.yaml declares no tables"
    for logical_id, resource in tables.items():
        spec = spec_from_template(resource, logical_id)
        assert spec.partition_key in spec.key_types
