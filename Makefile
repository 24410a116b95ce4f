# Two commands matter: `make run` (demo on http://127.0.0.1:8000) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test test-fleet lint bench demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-run: $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt -e .
	@touch $@

# Browser tests also need axe-core from npm (tests/browser/package-lock.json) and Debian's
# Chromium (.ci/run installs it); without them those tests skip, saying why. The single sign-on
# tests run a real OpenID provider (oidc-provider, tests/sso/oidc/package-lock.json) on Node.
$(VENV)/.installed-test: $(VENV)/.installed-run tests/browser/package-lock.json tests/sso/oidc/package-lock.json
	$(PIP) install -c constraints.txt -e '.[test]'
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/browser && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the browser tests will be skipped (they need axe-core)"; fi
	@if command -v npm >/dev/null 2>&1; then \
		cd tests/sso/oidc && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; \
	else echo "npm not found: the single sign-on tests will be skipped (they need oidc-provider)"; fi
	@touch $@

# The demo runs in debug mode (production is the default: OFFBOARD_DEBUG unset means off).
run: export OFFBOARD_DEBUG ?= true
run: $(VENV)/.installed-run
	$(BIN)/offboard demo --host $(HOST) --port $(PORT)
	@echo "Serving on http://$(HOST):$(PORT)/ — log in as alice / offboard-demo (Ctrl-C to stop)"
	$(BIN)/offboard serve --host $(HOST) --port $(PORT)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

# The suite runs on SQLite, then again on PostgreSQL (DATABASE_URL); see scripts/with_postgres.py.
test: lint
	$(BIN)/python -m pytest -n 2 -p no:cacheprovider --durations=25
	$(BIN)/python scripts/with_postgres.py $(BIN)/python -m pytest -n 2 -p no:cacheprovider --durations=25

# The fleet test (tests/fleet): 4 web processes and 2 workers on PostgreSQL and Redis, one of each
# killed mid-run; apart from `make test` (about 2 minutes). docs/deploy.md, Processes.
test-fleet: $(VENV)/.installed-test
	$(BIN)/python -m pytest -m fleet -p no:cacheprovider tests/fleet

# Benchmarks with same-run baselines and ratios (never part of `make test`): bench/README.md
bench: $(VENV)/.installed-test
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var test-artifacts .mypy_cache .ruff_cache tests/browser/node_modules tests/sso/oidc/node_modules
