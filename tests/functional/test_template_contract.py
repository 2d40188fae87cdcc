"""The templates are the single source of truth: they must lint and translate as AWS would (every stack
well under CloudFormation's resource limit, every function with its own role and environment), every
handler must import, every route a Chalice app defines must be declared with its exact path and method
(and nothing more), and the table manifest functions ship must be what the templates declare."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bianjie.kit.tables import MANIFEST
from bianjie.runtime.invoke import load_handler, load_module
from bianjie.runtime.sam import CLOUDFORMATION_RESOURCE_LIMIT, translate_stack
from bianjie.runtime.tables import render_table_manifest
from bianjie.runtime.template import ApiEvent, load_template

from tests.conftest import FIXTURES, ROOT

TEMPLATES = [ROOT / "template.yaml", FIXTURES / "stack" / "template.yaml"]
# every file of every stack, for cfn-lint (the root's nested applications are linted on their own)
TEMPLATE_FILES = sorted({s.path for t in TEMPLATES for s in load_template(t).stacks})
STACK_BUDGET = 0.6  # of CloudFormation's per-stack limit, so each service can grow
HEAVY_MODULES = {"pydicom", "numpy", "PIL", "aws_xray_sdk"}


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
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


def test_every_stack_translates_well_under_the_resource_limit() -> None:
    template = load_template(ROOT / "template.yaml")
    total = 0
    over = []
    for stack in template.stacks:
        count = len(translate_stack(stack)["Resources"])
        total += count
        print(f"{stack.name:10} {count:4} CloudFormation resources")
        if count > STACK_BUDGET * CLOUDFORMATION_RESOURCE_LIMIT:
            over.append(f"{stack.name}: {count}")
    print(f"{'total':10} {total:4} in {len(template.stacks)} stacks")
    assert not over, f"over {STACK_BUDGET:.0%} of {CLOUDFORMATION_RESOURCE_LIMIT}: {over}"


@pytest.mark.parametrize("stage", ["local", "prod"])
def test_every_function_gets_its_own_role_and_environment(stage: str) -> None:
    template = load_template(ROOT / "template.yaml", {"Stage": stage})
    roles: dict[str, str] = {}
    for stack in template.stacks:
        resources = translate_stack(stack)["Resources"]
        for fn in (f for f in template.functions if (f.stack or "root") == stack.name):
            lam = resources[fn.logical_id]
            assert lam["Type"] == "AWS::Lambda::Function", fn.logical_id
            role = lam["Properties"]["Role"]["Fn::GetAtt"][0]
            assert resources[role]["Type"] == "AWS::IAM::Role", fn.logical_id
            assert role not in roles, f"{fn.logical_id} shares {role} with {roles.get(role)}"
            roles[role] = fn.logical_id
            # what SAM gives the function (its stack's Globals + its own) is what the runtime reads
            assert lam["Properties"]["Environment"]["Variables"] == fn.environment, fn.logical_id
    assert len(roles) == len(template.functions)


def test_stand_ins_exist_only_on_the_local_stage() -> None:
    prod = load_template(ROOT / "template.yaml", {"Stage": "prod"})
    pay = translate_stack(prod.stack("PayApp"))["Resources"]
    assert not [rid for rid in [*pay, *prod.resources] if "Standin" in rid]
    for fn in prod.functions:
        assert not [name for name in fn.environment if "STANDIN" in name], fn.logical_id
    local = load_template(ROOT / "template.yaml")
    assert {"PayStandinTable", "PayStandinNotifierFunction"} <= set(translate_stack(local.stack("PayApp"))["Resources"])


def test_table_manifest_is_what_the_templates_declare() -> None:
    current = render_table_manifest(load_template(ROOT / "template.yaml"))
    assert MANIFEST.read_text(encoding="utf-8") == current, "run `.venv/bin/bianjie tables`"


def test_every_table_variable_a_function_gets_is_in_the_manifest() -> None:
    from bianjie.kit.tables import manifest

    for stage in ("local", "prod"):
        for fn in load_template(ROOT / "template.yaml", {"Stage": stage}).functions:
            for name in fn.environment:
                if name.endswith("_TABLE"):
                    assert name in manifest(), f"{fn.logical_id}: {name}"


# reads of a table's name (a presence check such as os.environ.get("PARTNERS_TABLE") is no read)
TABLE_LOOKUP = re.compile(r"(\brequire_env|\benv|environ)\s*[\(\[]\s*[\"']([A-Z0-9_]+_TABLE)[\"']")


def test_code_reaches_tables_only_through_deps_table() -> None:
    """``deps.table`` registers the table's spec; reading the name straight from the environment would
    leave the DynamoDB adapter to call DescribeTable / DescribeTimeToLive, which the roles do not grant."""
    offenders = []
    for path in [*(ROOT / "layers" / "core" / "python").rglob("*.py"), *(ROOT / "functions").rglob("*.py")]:
        for match in TABLE_LOOKUP.finditer(path.read_text(encoding="utf-8")):
            if path.name != "deps.py":
                offenders.append(f"{path.relative_to(ROOT)}: {match.group(0)}")
    assert not offenders, offenders
