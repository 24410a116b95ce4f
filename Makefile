# Two commands matter: `make run` (demo on http://127.0.0.1:8000) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test lint bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e .
	@touch $@

$(VENV)/.installed-test: $(VENV)/.installed-run
	$(PIP) install -c constraints.txt -e '.[test]'
	@touch $@

run: $(VENV)/.installed-run
	$(BIN)/offboard demo
	@echo "Serving on http://$(HOST):$(PORT)/ — log in as alice / offboard-demo (Ctrl-C to stop)"
	$(BIN)/offboard serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

# The suite runs on SQLite, then again on PostgreSQL (DATABASE_URL); see scripts/with_postgres.py.
test: lint
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider
	$(BIN)/python scripts/with_postgres.py $(BIN)/python -m pytest -n 2 -p no:cacheprovider

# Benchmarks with same-run baselines and ratios (never part of `make test`): bench/README.md
bench: $(VENV)/.installed-test
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var test-artifacts .mypy_cache .ruff_cache
