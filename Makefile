# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
EMULATOR_PORT ?= 4566
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install demo test dev emulator bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,deploy]"
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

# Emulator on loopback, sample inputs into its S3, every asset materialized, a summary printed.
demo: $(STAMP)
	$(PY) -m bedrock_assets.demo

# The whole suite (what .ci/run calls).
test: $(STAMP)
	$(PY) -m pytest -q tests

# Emulator + `dagster dev` (UI on http://127.0.0.1:3000) with a project-local DAGSTER_HOME.
dev: $(STAMP)
	$(PY) -m bedrock_assets.dev

emulator: $(STAMP)
	$(VENV)/bin/bedrock-assets emulator --port $(EMULATOR_PORT)

bench: $(STAMP)
	bash bench/run.sh

clean:
	rm -rf $(VENV) .dagster_home .pytest_cache test-artifacts
