# sessionauth: the two commands are `make run` and `make test`.
# Everything lives in .venv (created when missing); nothing is installed system-wide except,
# for the browser tests, Debian's chromium (installed by .ci/run or `make browser`).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SERVER := $(VENV)/.installed-server
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test install lint typecheck pytest docs services browser bench compiled clean

## run: serve http://127.0.0.1:8000 on SQLite (users and sessions in ./sessionauth.db)
run: $(SERVER)
	$(BIN)/sessionauth serve --host $(HOST) --port $(PORT)

## test: install everything, check the services, lint, type-check, build the docs, run the suite
test: $(STAMP) services lint typecheck docs pytest

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# `make run` needs only the server extra; `make test` adds every backend and the dev tools.
$(SERVER): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[server]'
	touch $(SERVER)

$(STAMP): pyproject.toml | $(VENV)/bin/python
	$(BIN)/python -m pip install --quiet -e '.[all]' --group dev
	touch $(STAMP) $(SERVER)

install: $(STAMP)

## services: Redis and PostgreSQL must answer (the suite starts its own extra servers)
services: $(STAMP)
	$(BIN)/python -m tests.support.check_services

# examples/ and docs/snippets/ are code users copy, docs/hooks/ builds the site: all linted.
CHECKED := src tests benchmarks examples docs/snippets docs/hooks tools

lint: $(STAMP)
	$(BIN)/ruff format --check $(CHECKED)
	$(BIN)/ruff check $(CHECKED)
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

## docs: the documentation site, into site/ (open site/index.html); --strict fails on any warning
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

## browser: Debian's chromium for the Playwright tests (Playwright's own download cannot work here)
browser:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

## bench: the headline comparison (see benchmarks/README.md)
bench: $(STAMP)
	../shared/bench/setup.sh
	../shared/bench/compare.sh baseline ./benchmarks/library starsessions express

## compiled: the optional compiled hot path (mypyc) into build/compiled; run it with
## PYTHONPATH=build/compiled (the suite then tests it too; see the README's performance section)
compiled: $(STAMP)
	$(BIN)/python tools/build_compiled.py

clean:
	rm -rf build $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage htmlcov site
