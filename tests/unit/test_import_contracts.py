"""The layering contracts in pyproject.toml (``lint-imports``, run by ``make test``) break when a rule is broken.

Each test copies the package and the configuration to a scratch directory, adds one forbidden import,
and runs ``lint-imports`` on the copy; the clean copy must pass, so a failure is the import's doing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("layering")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    shutil.copytree(ROOT / "layers/core/python/bianjie", root / "bianjie", ignore=shutil.ignore_patterns("__pycache__"))
    return root


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    # PYTHONPATH puts the copy ahead of the editable install's path entry
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def with_import(root: Path, module: str, statement: str) -> Path:
    """A copy of the scratch tree where ``module`` also runs ``statement``."""
    copy = root.parent / f"{root.name}-{module.replace('.', '_')}"
    shutil.copytree(root, copy)
    path = copy / (module.replace(".", "/") + ".py")
    path.write_text(path.read_text() + f"\n{statement}  # noqa\n")
    return copy


def test_the_tree_as_it_is_keeps_every_contract(scratch: Path) -> None:
    result = lint(scratch)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


@pytest.mark.parametrize(
    ("module", "statement", "broken"),
    [
        ("bianjie.rx.rules", "import boto3", "bianjie.rx is not allowed to import boto3"),
        ("bianjie.pay.charges", "import psycopg", "bianjie.pay is not allowed to import psycopg"),
        ("bianjie.guide.planner", "import urllib.request", "bianjie.guide is not allowed to import urllib"),
        (
            "bianjie.film.links",
            "from bianjie.runtime import apigw",
            "bianjie.film is not allowed to import bianjie.runtime",
        ),
        ("bianjie.rx.states", "import bianjie_dev", "bianjie.rx.states -> bianjie_dev"),
        ("bianjie.pay.states", "from bianjie.rx import states", "bianjie.pay is not allowed to import bianjie.rx"),
        ("bianjie.kit.errors", "from bianjie.guide import kinds", "bianjie.kit is not allowed to import bianjie.guide"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(scratch: Path, module: str, statement: str, broken: str) -> None:
    result = lint(with_import(scratch, module, statement))
    assert result.returncode != 0
    assert broken in result.stdout, result.stdout


def test_a_service_adapter_may_import_the_aws_sdk(scratch: Path) -> None:
    assert lint(with_import(scratch, "bianjie.rx.adapters.center_http", "import boto3")).returncode == 0
