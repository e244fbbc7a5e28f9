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

# Prints findings only (nothing on a clean tree); every tool runs, and the exit status is 1 if any found something.
check: $(STAMP)
	@status=0; \
	$(BIN)/ruff check --quiet . || status=1; \
	$(BIN)/ruff format --check --quiet --output-format concise . || status=1; \
	$(BIN)/mypy --no-error-summary insider_selling store gql tenants scoring ingest || status=1; \
	exit $$status

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
