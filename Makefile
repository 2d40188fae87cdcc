# bianjie: the two commands are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test setup web lint unit functional contract integration bench clean

$(STAMP): requirements/dev.txt requirements/local.txt requirements/onprem.txt layers/core/requirements.txt layers/imaging/requirements.txt layers/wayfinding/requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/dev.txt -r layers/imaging/requirements.txt -r layers/wayfinding/requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	scripts/ffmpeg.sh >/dev/null
	touch $(STAMP)

setup: $(STAMP) web

## make web: the browser pages, one npm project in web/ (package.json, one Vite): web/<service> ->
## web/<service>/dist for film, escort, assistant, wayfinding, consult and content; the patient and staff
## pages web/pages -> web/pages/dist, then the 随申办 entry pages web/identity into the same dist;
## skipped with a warning where Node is missing
WEB_FILM := web/film/dist/viewer.js
WEB_PAGES := web/pages/dist/.built
WEB_ESCORT := web/escort/dist/.built
WEB_ASSISTANT := web/assistant/dist/.built
WEB_WAYFINDING := web/wayfinding/dist/.built
WEB_CONSULT := web/consult/dist/.built
WEB_CONTENT := web/content/dist/assets/player.js
web: $(WEB_FILM) $(WEB_PAGES) $(WEB_ESCORT) $(WEB_ASSISTANT) $(WEB_WAYFINDING) $(WEB_CONSULT) $(WEB_CONTENT)

web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	@if command -v npm >/dev/null; then cd web && npm ci --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the web pages are not built (pages need Node 20+)"; fi

$(WEB_FILM): web/node_modules/.package-lock.json web/film/vite.config.js $(wildcard web/film/src/*)
	@if command -v npm >/dev/null; then cd web && npm run --silent build:film; fi

$(WEB_PAGES): web/node_modules/.package-lock.json web/pages/vite.config.js $(wildcard web/pages/*.html web/pages/src/* web/pages/src/shared/*) \
		web/identity/vite.config.js $(wildcard web/identity/*.html web/identity/src/*)
	@if command -v npm >/dev/null; then cd web && npm run --silent build:pages && npm run --silent build:identity \
		&& touch pages/dist/.built; fi

# 云陪诊's pages (web/escort -> web/escort/dist), sharing web/pages/src/shared; published by escort's demo
$(WEB_ESCORT): web/node_modules/.package-lock.json web/escort/vite.config.js $(wildcard web/escort/*.html web/escort/src/* web/pages/src/shared/*)
	@if command -v npm >/dev/null; then cd web && npm run --silent build:escort && touch escort/dist/.built; fi

$(WEB_ASSISTANT): web/node_modules/.package-lock.json web/assistant/vite.config.js $(wildcard web/assistant/*.html web/assistant/src/*)
	@if command -v npm >/dev/null; then cd web && npm run --silent build:assistant && touch assistant/dist/.built; fi

$(WEB_WAYFINDING): web/node_modules/.package-lock.json web/wayfinding/vite.config.js $(wildcard web/wayfinding/*.html web/wayfinding/src/* web/pages/src/shared/*)
	@if command -v npm >/dev/null; then cd web && npm run --silent build:wayfinding && touch wayfinding/dist/.built; fi

$(WEB_CONSULT): web/node_modules/.package-lock.json web/consult/vite.config.js $(wildcard web/consult/*.html web/consult/src/*) $(wildcard web/pages/src/shared/*)
	@if command -v npm >/dev/null; then cd web && npm run --silent build:consult && touch consult/dist/.built; fi

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
