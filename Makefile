# Two commands on a fresh machine: `make run` and `make test`. Each creates .venv and installs into it
# exactly what uv.lock pins (hashes checked, --locked: a lock that disagrees with pyproject.toml fails).
# `make run` installs the runtime only; `make test` adds the dev extra. `make lock` re-resolves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# uv from PATH, or bootstrapped (hash-checked) into .tools/ from deploy/uv-requirements.txt
UV ?= $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
export UV_PYTHON := $(PYTHON)
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)
SYNC := $(UV) sync --locked --inexact --no-dev
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed-dev

.PHONY: run test check bench clean assets lock lock-upgrade secantus-lock

.tools/bin/uv: deploy/uv-requirements.txt
	$(PYTHON) -m venv .tools
	.tools/bin/python -m pip install --quiet --require-hashes --no-deps -r deploy/uv-requirements.txt
	touch $@

$(RUN_STAMP): pyproject.toml uv.lock | $(UV)
	$(SYNC)
	touch $@

$(STAMP): pyproject.toml uv.lock | $(UV)
	$(SYNC) --extra dev
	touch $(RUN_STAMP) $@

# Re-resolve after editing pyproject.toml (keeps every pin that still fits); commit uv.lock with it.
lock: | $(UV)
	$(UV) lock

# Move every pin to the newest release the bounds allow; then `make test` before committing.
lock-upgrade: | $(UV)
	$(UV) lock --upgrade

# SecantusDB, the MongoDB wire-protocol server the store tests also run on (GPL-2.0-only): only ever
# a separate server process from its own venv, never a dependency of the package, never imported.
# Installed hash-checked from tests/secantus-requirements.txt; tests/conftest.py starts it.
SECANTUS := .secantus
SECANTUS_STAMP := $(SECANTUS)/.installed

$(SECANTUS_STAMP): tests/secantus-requirements.txt | $(UV)
	$(UV) venv --quiet --allow-existing $(SECANTUS)
	$(UV) pip install --quiet --python $(SECANTUS)/bin/python --require-hashes --no-deps -r tests/secantus-requirements.txt
	touch $@

# Re-pin SecantusDB and its dependencies (with hashes); the version is the one tried in issue 18.
secantus-lock: | $(UV)
	echo "secantusdb==0.7.0b3" | $(UV) pip compile - --quiet --generate-hashes --universal --python-version 3.11 \
		--custom-compile-command "make secantus-lock" -o tests/secantus-requirements.txt

run: $(RUN_STAMP)
	$(BIN)/insider-selling serve

test: $(STAMP) $(SECANTUS_STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy --no-error-summary insider_selling store gql webhooks tenants scoring ingest research
	$(BIN)/python -m pytest

# Prints findings only (nothing on a clean tree); every tool runs, and the exit status is 1 if any found something.
check: $(STAMP)
	@status=0; \
	$(BIN)/ruff check --quiet . || status=1; \
	$(BIN)/ruff format --check --quiet --output-format concise . || status=1; \
	$(BIN)/mypy --no-error-summary insider_selling store gql webhooks tenants scoring ingest research || status=1; \
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
	rm -rf $(VENV) .tools $(SECANTUS) .pytest_cache .mypy_cache .ruff_cache .hypothesis
