#!/usr/bin/env bash
# Everything `make test` runs, in order: lint, import contracts, types, template lint, then every test
# tier in parallel.
# Servers the tests need are started by the tests themselves: moto and the local stack by the
# integration fixtures, PostgreSQL by the contract suite (scripts/postgres.sh installs it if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
export SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-cn-north-1}

echo "== ruff (lint and format)"
$VENV/bin/ruff check .
$VENV/bin/ruff format --check .
echo "== import contracts (pyproject.toml [tool.importlinter])"
$VENV/bin/lint-imports
echo "== mypy (pyproject.toml [tool.mypy])"
$VENV/bin/mypy
echo "== cfn-lint"
$VENV/bin/cfn-lint template.yaml functions/*/template.yaml tests/fixtures/stack/template.yaml tests/fixtures/stack/functions/*/template.yaml
echo "== ffmpeg (the content service's transcoder; Debian's package)"
scripts/ffmpeg.sh >/dev/null
echo "== pytest (unit, functional, contract, integration)"
# loadfile keeps a module's tests on one worker, so a module-scoped stack starts once.
$VENV/bin/python -m pytest -n "${BIANJIE_TEST_WORKERS:-3}" --dist loadfile -q "$@"
