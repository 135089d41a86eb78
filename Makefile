# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Reinstall when the package's ranges or the lock change.
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
# The lock: exact versions the suite passed with (scripts/upgrade-lock.sh writes it).
LOCK   := constraints.txt
EMULATOR_PORT ?= 4566
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: install versions upgrade-lock demo test dev emulator bench clean

# Installs exactly the locked versions (pip constraints file); PIP_CONSTRAINT also pins the build
# environment pip makes for the editable install.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	PIP_CONSTRAINT=$(CURDIR)/$(LOCK) $(PY) -m pip install --quiet --upgrade pip setuptools wheel
	PIP_CONSTRAINT=$(CURDIR)/$(LOCK) $(PY) -m pip install --quiet -e ".[test,deploy]"
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

# One line of what is installed, checked against the lock (fails if anything drifted).
versions: $(STAMP)
	$(PY) scripts/versions.py $(LOCK)

# Move the lock to the newest releases, then run the whole suite on them (README: when to run it).
upgrade-lock:
	bash scripts/upgrade-lock.sh

# Emulator on loopback, sample inputs into its S3, every asset materialized, a summary printed.
demo: $(STAMP)
	$(PY) -m bedrock_assets.demo

# The whole suite (what .ci/run calls).
test: $(STAMP)
	$(PY) scripts/versions.py $(LOCK)
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
