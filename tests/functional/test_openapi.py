"""docs/openapi.yaml describes every HTTP function, is valid OpenAPI 3, and is current."""

from __future__ import annotations

import yaml
from bianjie.runtime.template import load_template
from bianjie_dev.runtime.openapi import build_openapi
from openapi_spec_validator import validate

from tests.conftest import ROOT


def test_openapi_is_valid_and_current() -> None:
    template = load_template(ROOT / "template.yaml")
    generated = build_openapi(template)
    validate(generated)
    committed = yaml.safe_load((ROOT / "docs" / "openapi.yaml").read_text(encoding="utf-8"))
    assert committed == generated, "docs/openapi.yaml is stale: run `.venv/bin/bianjie openapi`"
    operations = {(path, method.upper()) for path, ops in generated["paths"].items() for method in ops}
    declared = {(e.path, e.method) for fn in template.functions for e in fn.api_events()}
    assert operations == declared
    for ops in generated["paths"].values():
        for op in ops.values():
            assert op["summary"], op["operationId"]
