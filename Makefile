# `make run` serves Tautan on 127.0.0.1:8000 (`make run PORT=8011` on another port);
# `make test` runs the suite. Every install takes the versions pinned in constraints.txt.
VENV ?= .venv
PY := $(VENV)/bin/python
INSTALL := $(PY) -m pip install --quiet -c constraints.txt
HOST ?= 127.0.0.1
PORT ?= 8000
# Short URLs and QR codes are built on TAUTAN_BASE_URL: unless you set it (in the
# environment or as `make run TAUTAN_BASE_URL=…`), the address `make run` serves on.
TAUTAN_BASE_URL ?= http://127.0.0.1:$(PORT)
# Installs are redone when pyproject.toml or constraints.txt change.
KEY := $(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
RUNTIME := $(VENV)/.installed-runtime-$(KEY)
DEV := $(VENV)/.installed-dev-$(KEY)

.PHONY: run test lint format constraints

# What the server needs, and nothing more.
$(RUNTIME): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(INSTALL) -e .
	rm -f $(VENV)/.installed-* && touch $@

# Also the test and lint tools (pytest, ruff, schemathesis, playwright …).
$(DEV): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(INSTALL) -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(RUNTIME) $@

run: $(RUNTIME)
	TAUTAN_BASE_URL='$(TAUTAN_BASE_URL)' $(VENV)/bin/tautan serve --host '$(HOST)' --port '$(PORT)'

# Tests run on every core (pytest-xdist); tests sharing one outside resource (Redis) are
# grouped onto one worker.
test: $(DEV)
	$(PY) -m pytest -n auto --dist loadgroup $(PYTEST_ARGS)

lint: $(DEV)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: $(DEV)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Pins a dependency added to pyproject.toml, keeping the other pins; `make constraints
# UPGRADE=1` moves every pin to the newest release pyproject.toml allows. Then `make test`.
# pip-tools runs from a venv of its own, inside $(VENV).
constraints:
	test -x $(VENV)/tools/bin/pip-compile || \
	  (python3 -m venv $(VENV)/tools && $(VENV)/tools/bin/pip install --quiet pip-tools)
	CUSTOM_COMPILE_COMMAND='make constraints' $(VENV)/tools/bin/pip-compile --quiet \
	  --extra dev --strip-extras --no-emit-index-url --no-emit-find-links \
	  $(if $(UPGRADE),--upgrade) --output-file constraints.txt pyproject.toml
