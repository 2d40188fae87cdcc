# bianjie: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup web lint unit functional contract integration bench clean

$(STAMP): requirements/dev.txt requirements/local.txt requirements/onprem.txt layers/core/requirements.txt layers/imaging/requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt -r layers/imaging/requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	scripts/ffmpeg.sh >/dev/null
	touch $(STAMP)

setup: $(STAMP) web

## make web: the browser pages, one npm project in web/ (package.json, one Vite): the film viewer
## (web/film -> web/film/dist) and the patient and staff pages (web/pages -> web/pages/dist);
## skipped with a warning where Node is missing
WEB_FILM := web/film/dist/viewer.js
WEB_PAGES := web/pages/dist/.built
WEB_CONTENT := web/content/dist/assets/player.js
web: $(WEB_FILM) $(WEB_PAGES) $(WEB_CONTENT)

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	@if command -v npm >/dev/null; then cd web && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the web pages are not built (pages need Node 20+)"; fi

$(WEB_FILM): web/node_modules/.package-lock.json web/film/vite.config.js $(wildcard web/film/src/*)
	@if command -v npm >/dev/null; then cd web && npm run --silent build:film; fi

$(WEB_PAGES): web/node_modules/.package-lock.json web/pages/vite.config.js $(wildcard web/pages/*.html web/pages/src/*)
	@if command -v npm >/dev/null; then cd web && npm run --silent build:pages && touch pages/dist/.built; fi

$(WEB_CONTENT): web/node_modules/.package-lock.json web/content/vite.config.js $(wildcard web/content/src/*)
	@if command -v npm >/dev/null; then cd web && npm run --silent build:content; fi

## make run: start the local stack (moto on 127.0.0.1:5000, gateway on 127.0.0.1:3000, pump, scheduler)
run: setup
	$(VENV)/bin/bianjie stack run

## make test: lint, template checks, unit, functional, contract (DynamoDB + PostgreSQL), integration
test: setup
	scripts/test.sh

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml functions/*/template.yaml

bench: setup
	@for b in scripts/bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .local .pytest_cache .ruff_cache
