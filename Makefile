# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv and installs.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev

.PHONY: run test check bench clean assets

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/insider-selling serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check --output-format concise .
	$(BIN)/mypy insider_selling store gql tenants scoring ingest

bench: $(STAMP)
	$(BIN)/python bench/scoring.py
	$(BIN)/python bench/auth_ratelimit.py
	$(BIN)/python bench/graphql.py
	$(BIN)/python bench/ingest_cycle.py

# Rebuild gql/static/vendor from web/package-lock.json (needs Node.js; `make run` does not).
# npm ci checks every tarball against the lockfile; the copies must then be unchanged.
assets:
	cd web && npm ci --ignore-scripts --no-audit --no-fund
	$(PYTHON) web/vendor_assets.py
	git status --short -- gql/static/vendor

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
