# accord: `make run` sets up and starts the demo; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: run test test-unit test-integration test-e2e test-browser tour setup dev lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

setup: $(VENV)/.installed
dev: $(VENV)/.dev-installed

## Seed the demo partnership (idempotent) and serve the API on http://127.0.0.1:8000
run: $(VENV)/.installed
	$(BIN)/accord keys generate
	$(BIN)/accord demo
	$(BIN)/accord serve

## The web application in Debian's chromium (apt-get install chromium)
test-browser: $(VENV)/.dev-installed
	$(BIN)/pytest tests/e2e/browser

## The browser tests again, saving the README's tour screenshots in docs/tour
tour: $(VENV)/.dev-installed
	ACCORD_TOUR=docs/tour $(BIN)/pytest tests/e2e/browser -q

## Run the whole test suite (SQLite, PostgreSQL, Kafka, the browser), on both cores
test: $(VENV)/.dev-installed
	$(BIN)/pytest -n 2

## The fast tier alone: no database, no server, no broker
test-unit: $(VENV)/.dev-installed
	$(BIN)/pytest tests/unit

## Both databases: the application, projections, tamper, crash safety, concurrency, Kafka, keys
test-integration: $(VENV)/.dev-installed
	$(BIN)/pytest tests/integration

## From outside: the API (TestClient and a real uvicorn), the CLI, the access matrix, OpenAPI
test-e2e: $(VENV)/.dev-installed
	$(BIN)/pytest tests/e2e

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: $(VENV)/.dev-installed
	$(BIN)/python bench/append.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache accord.db accord.db-wal accord.db-shm
