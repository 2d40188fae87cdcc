"""Table specs from template.yaml, the one source of truth for every table's keys, indexes and TTL.

for logical_id, resource in table_resources(template).items():
    store.ensure_table(spec_from_template(resource, physical_names[logical_id]))
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bianjie.kit.documents.port import IndexSpec, KeyType, TableSpec

TABLE_TYPES = ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
_SIMPLE_TYPES: dict[str, KeyType] = {"String": "S", "Number": "N"}


def table_resources(template: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The template's table resources by logical id."""
    resources = template.get("Resources") or {}
    return {name: res for name, res in resources.items() if isinstance(res, Mapping) and res.get("Type") in TABLE_TYPES}


def spec_from_template(resource: Mapping[str, Any], physical_name: str) -> TableSpec:
    """The TableSpec of a table resource (the whole resource, or just its ``Properties``).

    ``physical_name`` is what ``!Ref`` resolves to; any ``TableName`` in the template is not read
    because it may be an intrinsic function.
    """
    kind = resource.get("Type")
    props: Mapping[str, Any] = resource
    if kind is not None or "Properties" in resource:
        props = resource.get("Properties") or {}
    if kind == "AWS::Serverless::SimpleTable":
        return _simple_table(props, physical_name)
    types: dict[str, KeyType] = {}
    for definition in props.get("AttributeDefinitions") or []:
        kind_ = definition["AttributeType"]
        if kind_ not in ("S", "N"):
            raise ValueError(
                f"{physical_name}: key attribute {definition['AttributeName']} has type {kind_}; only S and N"
            )
        types[definition["AttributeName"]] = kind_
    pk, sk = _keys(props.get("KeySchema") or [], physical_name)
    indexes = tuple(
        IndexSpec(idx["IndexName"], *_keys(idx["KeySchema"], f"{physical_name}/{idx['IndexName']}"))
        for idx in [*(props.get("GlobalSecondaryIndexes") or []), *(props.get("LocalSecondaryIndexes") or [])]
    )
    for attr in {pk, sk, *(a for i in indexes for a in (i.partition_key, i.sort_key))} - {None}:
        if attr not in types:
            raise ValueError(f"{physical_name}: key attribute {attr} is missing from AttributeDefinitions")
    ttl = props.get("TimeToLiveSpecification") or {}
    ttl_attribute = ttl.get("AttributeName") if _true(ttl.get("Enabled")) else None
    return TableSpec(physical_name, pk, sk, types, indexes, ttl_attribute)


def _simple_table(props: Mapping[str, Any], physical_name: str) -> TableSpec:
    primary = props.get("PrimaryKey") or {"Name": "id", "Type": "String"}
    name = primary["Name"]
    return TableSpec(physical_name, name, None, {name: _SIMPLE_TYPES[primary.get("Type", "String")]})


def _keys(schema: list[Mapping[str, str]], where: str) -> tuple[str, str | None]:
    by_type = {k["KeyType"]: k["AttributeName"] for k in schema}
    if "HASH" not in by_type:
        raise ValueError(f"{where}: KeySchema has no HASH key")
    return by_type["HASH"], by_type.get("RANGE")


def _true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")
