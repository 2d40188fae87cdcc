"""template.yaml is the single source of truth: it must lint, every handler must import, and every
route a Chalice app defines must be declared with its exact path and method (and nothing more)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bianjie.runtime.invoke import load_handler, load_module
from bianjie.runtime.template import ApiEvent, load_template

from tests.conftest import FIXTURES, ROOT

TEMPLATES = [ROOT / "template.yaml", FIXTURES / "stack" / "template.yaml"]
HEAVY_MODULES = {"pydicom", "numpy", "PIL", "aws_xray_sdk"}


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.parent.name)
def test_cfn_lint_passes(path: Path) -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.parent.name)
def test_every_handler_imports(path: Path) -> None:
    for fn in load_template(path).functions:
        assert fn.runtime == "python3.11", fn.logical_id
        assert callable(load_handler(fn)), fn.logical_id


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.parent.name)
def test_routes_match_declared_api_events(path: Path) -> None:
    template = load_template(path)
    declared: dict[Path, set[tuple[str, str]]] = {}
    for fn in template.functions:
        events = {(e.path, e.method) for e in fn.events if isinstance(e, ApiEvent)}
        if events:
            assert fn.handler.endswith(".app"), f"{fn.logical_id}: API events need Handler: <module>.app"
        declared.setdefault(fn.module_path, set()).update(events)
    for module_path, events in declared.items():
        app = load_module(module_path).app
        defined = {(route, method) for route, methods in app.routes.items() for method in methods}
        assert events == defined, (
            f"{module_path}: routes not declared in the template: {sorted(defined - events)}; "
            f"declared but not defined: {sorted(events - defined)}"
        )


def test_each_api_route_is_served_by_one_function() -> None:
    seen: dict[tuple[str, str], str] = {}
    for fn in load_template(ROOT / "template.yaml").functions:
        for e in fn.api_events():
            assert (e.path, e.method) not in seen, (
                f"{e.method} {e.path}: {seen.get((e.path, e.method))} and {fn.logical_id}"
            )
            seen[(e.path, e.method)] = fn.logical_id


def test_function_modules_stay_thin_and_light() -> None:
    """Entry modules import no heavy library at top level unless their function has the imaging layer."""
    template = load_template(ROOT / "template.yaml")
    for fn in template.functions:
        tree = ast.parse(fn.module_path.read_text(encoding="utf-8"))
        top = {alias.name.split(".")[0] for node in tree.body if isinstance(node, ast.Import) for alias in node.names}
        top |= {(node.module or "").split(".")[0] for node in tree.body if isinstance(node, ast.ImportFrom)}
        heavy = top & HEAVY_MODULES
        has_imaging = {"Ref": "ImagingLayer"} in fn.layers
        assert not heavy or has_imaging, f"{fn.logical_id} imports {heavy} without the imaging layer"
        assert "boto3" not in top, f"{fn.module_path}: handlers reach AWS through kit adapters, not boto3"


def test_kit_tables_match_the_template() -> None:
    from bianjie.kit.audit import audit_table_spec
    from bianjie.kit.documents.schema import spec_from_template
    from bianjie.kit.idempotency import idempotency_table_spec
    from bianjie.kit.partners import partners_table_spec
    from bianjie.kit.signing import nonces_table_spec

    resources = load_template(ROOT / "template.yaml").resources
    for logical_id, spec_of in [
        ("PartnersTable", partners_table_spec),
        ("NoncesTable", nonces_table_spec),
        ("AuditTable", audit_table_spec),
        ("IdempotencyTable", idempotency_table_spec),
        *_service_table_specs(),
    ]:
        from_template = spec_from_template(resources[logical_id]["Properties"], "t")
        from_code = spec_of("t")
        assert from_template.partition_key == from_code.partition_key, logical_id
        assert from_template.sort_key == from_code.sort_key, logical_id
        assert from_template.ttl_attribute == from_code.ttl_attribute, logical_id
        assert set(from_template.indexes) == set(from_code.indexes), logical_id


def _service_table_specs() -> list[tuple[str, Any]]:
    from bianjie.film.catalog import links_table_spec, studies_table_spec
    from bianjie.guide import store as guide
    from bianjie.pay.standin import standin_table_spec
    from bianjie.pay.store import pay_table_spec
    from bianjie.rx.catalogue import catalogue_table_spec
    from bianjie.rx.repo import auth_table_spec, rx_table_spec

    return [
        ("FilmStudiesTable", studies_table_spec),
        ("FilmLinksTable", links_table_spec),
        ("GuideVisitsTable", guide.visits_table_spec),
        ("GuideNotificationsTable", guide.notifications_table_spec),
        ("GuideOutboxTable", guide.outbox_table_spec),
        ("GuidePatientsTable", guide.patients_table_spec),
        ("PayTable", pay_table_spec),
        ("PayStandinTable", standin_table_spec),
        ("RxCatalogueTable", catalogue_table_spec),
        ("RxTable", rx_table_spec),
        ("RxAuthorizationsTable", auth_table_spec),
    ]
