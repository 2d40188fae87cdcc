# bianjie: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup lint unit functional contract integration bench clean

$(STAMP): requirements/dev.txt requirements/local.txt layers/core/requirements.txt layers/imaging/requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt -r layers/imaging/requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

setup: $(STAMP)

## make run: start the local stack (moto on 127.0.0.1:5000, gateway on 127.0.0.1:3000, pump, scheduler)
run: setup
	$(VENV)/bin/bianjie stack run

## make test: lint, template checks, unit, functional, contract (DynamoDB + PostgreSQL), integration
test: setup
	scripts/test.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/cfn-lint template.yaml

bench: setup
	@for b in scripts/bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
