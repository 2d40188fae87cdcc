"""Table specs (keys, indexes, TTL) by the environment variable a function reads the table's name from.

The templates declare every table once. A Lambda function has no template to read, so
``bianjie tables`` (``bianjie.runtime.tables``) writes the specs into ``bianjie/tables.json``, which
ships in the core layer beside this module; a test fails when it differs from what the templates
declare. ``deps.table("RX_TABLE")`` registers the spec with the documents store (so the DynamoDB
adapter never needs DescribeTable / DescribeTimeToLive), and unit tests build their in-memory stores
from the same specs: ``MemoryDocumentStore(table_spec("RX_TABLE", "rx"))``.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from bianjie.kit.documents.port import IndexSpec, TableSpec

MANIFEST = Path(__file__).resolve().parent.parent / "tables.json"


@cache
def manifest() -> dict[str, dict[str, Any]]:
    return json.loads(MANIFEST.read_text(encoding="utf-8"))


def table_spec(env_name: str, name: str) -> TableSpec:
    """The spec of the table a function finds in ``env_name``, under the physical ``name``."""
    entry = manifest().get(env_name)
    if entry is None:
        raise KeyError(
            f"{env_name}: no table of the templates is passed in this variable "
            "(declare it on the function as !Ref <Table>, then run `bianjie tables`)"
        )
    return spec_of_entry(entry, name)


def spec_of_entry(entry: dict[str, Any], name: str) -> TableSpec:
    return TableSpec(
        name=name,
        partition_key=entry["partition_key"],
        sort_key=entry.get("sort_key"),
        key_types=dict(entry.get("key_types") or {}),
        indexes=tuple(IndexSpec(i["name"], i["partition_key"], i.get("sort_key")) for i in entry.get("indexes") or []),
        ttl_attribute=entry.get("ttl_attribute"),
    )


def entry_of_spec(spec: TableSpec, logical_id: str) -> dict[str, Any]:
    return {
        "logical_id": logical_id,
        "partition_key": spec.partition_key,
        "sort_key": spec.sort_key,
        "key_types": dict(sorted(spec.key_types.items())),
        "indexes": [{"name": i.name, "partition_key": i.partition_key, "sort_key": i.sort_key} for i in spec.indexes],
        "ttl_attribute": spec.ttl_attribute,
    }
