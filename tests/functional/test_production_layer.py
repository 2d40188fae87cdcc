"""What template.yaml's CoreLayer ships (``ContentUri: layers/core/``) holds the runtime, the kit and the
domains, never the local emulator, the CLI, demos, stand-ins or test data (those live in
``layers/dev/python/bianjie_dev``), and every production module imports without the development package.

The import checks run in a fresh interpreter started with ``-S -I``: no site processing, so the editable
install's finder (which maps ``bianjie_dev``) is absent and ``bianjie`` comes from a copy of the layer only;
a meta-path guard also refuses the emulator's packages, so an import of them anywhere fails the test.
"""

from __future__ import annotations

import ast
import base64
import json
import secrets
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest
from bianjie.kit.crypto import sm2_generate_key
from bianjie.kit.keys import LocalKeyPort
from bianjie.runtime.template import FunctionSpec, Resolver, load_template

from tests.conftest import ROOT

# What production must never import (tooling, the emulator and its server, test libraries).
FORBIDDEN_PACKAGES = ("bianjie_dev", "moto", "waitress", "pytest", "hypothesis")
# Modules of the development package by their names; none of these may appear in the layer.
TOOLING_FILES = {"demo.py", "cli.py", "testdata.py", "examples.py", "standin.py"}
TOOLING_RUNTIME = {"stack.py", "child.py", "motoserver.py", "provision.py", "seed.py", "services.py", "openapi.py"}
# Stand-in modes OFF, as on a production stage.
PRODUCTION_MODES = {"BIANJIE_STAGE": "prod"}  # bianjie.kit.standins then refuses every stand-in

CHILD = r"""
import importlib, importlib.abc, json, os, pkgutil, sys

FORBIDDEN = tuple(sys.argv[1].split(","))


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in FORBIDDEN:
            raise ModuleNotFoundError(f"production imported {name}", name=name)
        return None


sys.meta_path.insert(0, Refuse())
job = json.load(sys.stdin)
done = []
if job["kind"] == "modules":
    import bianjie

    for info in pkgutil.walk_packages(bianjie.__path__, "bianjie."):
        importlib.import_module(info.name)
        done.append(info.name)
elif job["kind"] == "calls":
    os.environ.update(job["env"])
    for target in job["calls"]:
        module, _, function = target.partition(":")
        result = getattr(importlib.import_module(module), function)()
        parts = result if isinstance(result, tuple) else (result,)
        done.append([type(part).__name__ for part in parts])
else:
    from bianjie.runtime.invoke import load_handler
    from bianjie.runtime.template import load_template

    os.environ.update(job["env"])
    specs = {f.logical_id: f for f in load_template(job["template"]).functions}
    for logical_id in job["functions"]:
        load_handler(specs[logical_id])
        done.append(logical_id)
print(json.dumps({"done": done, "loaded": sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)}))
"""


@pytest.fixture(scope="module")
def layer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The layer as SAM builds it: ``layers/core/`` copied, its ``python/`` folder put on the path."""
    out = tmp_path_factory.mktemp("core-layer") / "core"
    shutil.copytree(ROOT / "layers" / "core", out, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return out / "python"


def site_packages() -> list[str]:
    return sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]})


def run_child(layer: Path, job: dict[str, Any]) -> dict[str, Any]:
    path = [str(layer), *site_packages()]
    code = f"import sys; sys.path[:0] = {path!r}\n" + CHILD
    proc = subprocess.run(
        [sys.executable, "-S", "-I", "-c", code, ",".join(FORBIDDEN_PACKAGES)],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=layer.parent,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "AWS_REGION": "cn-north-1", "AWS_DEFAULT_REGION": "cn-north-1"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


class Placeholders(Resolver):
    """Every resource resolves to a made-up physical name: enough for code that reads names at import."""

    def ref(self, name: str) -> Any:
        return self.refs.get(name, f"bianjie-{name}")

    def get_att(self, logical_id: str, attribute: str) -> Any:
        return f"bianjie-{logical_id}-{attribute}"


def production_environment(spec: FunctionSpec, parameters: dict[str, Any]) -> dict[str, str]:
    resolver = Placeholders(parameters, {})
    env = {name: str(value) for name, raw in spec.environment.items() if (value := resolver.resolve(raw)) is not None}
    env.pop("PAY_STANDINS", None)
    return {**env, **PRODUCTION_MODES, "AWS_LAMBDA_FUNCTION_NAME": spec.logical_id}


SWITCH = Path("bianjie/kit/standins.py")


def test_layer_holds_no_tooling(layer: Path) -> None:
    found = []
    for path in sorted(layer.rglob("*")):
        rel = path.relative_to(layer)
        if path.is_dir():
            if path.name in ("cli", "bianjie_dev"):
                found.append(f"{rel}/ (a tooling package)")
            continue
        if path.suffix != ".py":
            continue
        if rel == SWITCH:  # the switch that refuses stand-ins outside the local stage is production code
            pass
        elif path.name in TOOLING_FILES or "standin" in path.name or "stand_in" in path.name:
            found.append(f"{rel} (demo, CLI, stand-in or test data)")
        if rel.parts[:2] == ("bianjie", "runtime") and path.name in TOOLING_RUNTIME:
            found.append(f"{rel} (the local emulator)")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if rel != SWITCH and isinstance(node, ast.ClassDef) and "standin" in node.name.lower().replace("_", ""):
                found.append(f"{rel}: class {node.name} (a stand-in)")
        for node in tree.body:  # module scope: what runs at import time
            for name in _imported(node):
                if name.split(".")[0] in FORBIDDEN_PACKAGES:
                    found.append(f"{rel}: imports {name} at module scope")
    assert found == []


def test_function_code_imports_no_tooling_at_module_scope() -> None:
    """Function code ships too (CodeUri); a handler that is itself a stand-in imports it inside its body."""
    found = [
        f"{path.relative_to(ROOT)}: imports {name}"
        for path in sorted((ROOT / "functions").rglob("*.py"))
        for node in ast.parse(path.read_text(encoding="utf-8")).body
        for name in _imported(node)
        if name.split(".")[0] in FORBIDDEN_PACKAGES
    ]
    assert found == []


def _imported(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module]
    if isinstance(node, ast.If | ast.Try):  # TYPE_CHECKING blocks never run, so they may name tooling
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return []
        children = [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
        children += [s for h in getattr(node, "handlers", []) for s in h.body]
        return [name for child in children for name in _imported(child)]
    return []


def test_layer_requirements_hold_no_tooling() -> None:
    lines = (ROOT / "layers" / "core" / "requirements.txt").read_text().splitlines()
    names = {line.split("==")[0].split("[")[0].strip().lower() for line in lines if line and not line.startswith("#")}
    assert names and not names & {"moto", "waitress", "pytest", "hypothesis", "boto3", "uvicorn"}


def test_every_layer_module_imports_without_the_dev_package(layer: Path) -> None:
    result = run_child(layer, {"kind": "modules"})
    assert result["loaded"] == []
    assert "bianjie.runtime.serve" in result["done"] and "bianjie.kit.web" in result["done"]
    assert len(result["done"]) > 100


def test_every_entry_module_imports_with_its_environment_and_stand_ins_off(layer: Path) -> None:
    template = load_template(ROOT / "template.yaml")
    parameters = template.parameter_defaults()
    by_module: dict[Path, list[FunctionSpec]] = {}
    for spec in template.functions:
        by_module.setdefault(spec.module_path, []).append(spec)
    assert {p.parent.name for p in by_module} >= {"platform", "film", "rx", "pay", "guide"}
    for module, specs in sorted(by_module.items()):
        job = {
            "kind": "handlers",
            "template": str(template.path),
            "env": production_environment(specs[0], parameters),
            "functions": [s.logical_id for s in specs],
        }
        result = run_child(layer, job)
        assert result == {"done": [s.logical_id for s in specs], "loaded": []}, module


def test_the_child_cannot_reach_the_dev_package(layer: Path, tmp_path: Path) -> None:
    """Without the guard too: in the child's interpreter a module importing the dev package fails, so the
    checks above would catch a production module that needs it."""
    (tmp_path / "leaky.py").write_text("import bianjie_dev.runtime.stack\n")
    code = f"import sys; sys.path[:0] = {[str(layer), str(tmp_path), *site_packages()]!r}\nimport leaky\n"
    proc = subprocess.run([sys.executable, "-S", "-I", "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "No module named 'bianjie_dev'" in proc.stderr


def test_real_systems_are_wired_without_the_dev_package(layer: Path, tmp_path: Path) -> None:
    """With stand-in modes off, the wiring builds the real clients (NHSA center, WeChat, Aliyun SMS) and
    never reaches for a stand-in: the stand-in imports sit inside the branches that select them."""
    master = secrets.token_bytes(16)
    (tmp_path / "master.key").write_text(master.hex())
    port = LocalKeyPort(master)

    def wrapped(value: bytes) -> str:
        return base64.b64encode(port.wrap(value)).decode()

    center_key = sm2_generate_key()
    env = {
        **PRODUCTION_MODES,
        "BIANJIE_KEYS": "local",
        "BIANJIE_MASTER_KEY_FILE": str(tmp_path / "master.key"),
        "RX_CENTER_APP_ID": "app-1",
        "RX_CENTER_APP_SECRET": wrapped(b"center-secret"),
        "RX_CENTER_PRIVATE_KEY": wrapped(center_key.to_hex().encode()),
        "RX_CENTER_PUBLIC_KEY": sm2_generate_key().public_key.to_hex(),
        "RX_CENTER_URL": "https://center.example.invalid",
        "GUIDE_WECHAT_APP_ID": "wx-app",
        "GUIDE_WECHAT_SECRET": wrapped(b"wx-secret"),
        "GUIDE_SMS_ACCESS_KEY_ID": "sms-key",
        "GUIDE_SMS_ACCESS_KEY_SECRET": wrapped(b"sms-secret"),
    }
    calls = ["bianjie.rx.wiring:rx_center", "bianjie.guide.wiring:guide_channels"]
    result = run_child(layer, {"kind": "calls", "env": env, "calls": calls})
    assert result == {"done": [["NhsaCenterClient"], ["WeChatClient", "AliyunSmsClient"]], "loaded": []}
