"""Writes ``bianjie/tables.json``: the spec of every table a function of the templates reaches.

A function reaches a table through an environment variable set to ``!Ref <Table>`` (the project's
rule: one variable name means one table everywhere), so the manifest is keyed by that name. It is
built from the template read with its defaults (Stage=local, where every table exists) and checked
current by ``tests/functional/test_template_contract.py``; ``bianjie tables`` regenerates it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bianjie.kit.documents.schema import TABLE_TYPES, spec_from_template
from bianjie.kit.tables import entry_of_spec
from bianjie.runtime.template import Template


def table_variables(template: Template) -> dict[str, str]:
    """Environment variable -> logical id of the table it names, over every function."""
    tables = {rid for rid, res in template.resources.items() if res.get("Type") in TABLE_TYPES}
    found: dict[str, str] = {}
    for fn in template.functions:
        for name, value in fn.environment.items():
            if not (isinstance(value, dict) and set(value) == {"Ref"} and value["Ref"] in tables):
                continue
            if found.setdefault(name, value["Ref"]) != value["Ref"]:
                raise ValueError(f"{name} names {found[name]} in one function and {value['Ref']} in {fn.logical_id}")
    return found


def build_table_manifest(template: Template) -> dict[str, dict[str, Any]]:
    manifest = {}
    for name, logical_id in sorted(table_variables(template).items()):
        spec = spec_from_template(template.resources[logical_id], logical_id)
        manifest[name] = entry_of_spec(spec, logical_id)
    return manifest


def render_table_manifest(template: Template) -> str:
    return json.dumps(build_table_manifest(template), indent=2, ensure_ascii=False) + "\n"


def write_table_manifest(template: Template, out: Path) -> None:
    out.write_text(render_table_manifest(template), encoding="utf-8")
