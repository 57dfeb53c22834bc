# The mesh's entry points. `make demo` and `make test` work on a fresh machine with Python 3.11, 3.12 or
# 3.13: `make test PYTHON=/path/to/python3.13` builds the venv with that interpreter.
SHELL := /bin/bash
PYTHON ?= python3
MESH_HOME ?= $(CURDIR)/.mesh
SCALE ?= 1
UI_HOST ?= 127.0.0.1
UI_PORT ?= 3000
# test workers: the end-to-end tests wait on servers and subprocesses much of the time, so three
# workers keep a 2-core machine busy where two left it half idle
TEST_WORKERS ?= 3
export MESH_HOME
export DAGSTER_HOME := $(MESH_HOME)/dagster
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
# `make test-fast PYTHON=... VENV=.venv-3.13` keeps a second interpreter's venv beside the default one
VENV := .venv
MESH := $(VENV)/bin/mesh
# the venv's stamp is named after the interpreter that built it (e.g. .installed-cpython-3.13.0), so
# switching PYTHON rebuilds the venv instead of reusing one built by another Python
PYTHON_ID := $(shell $(PYTHON) -c 'import sys; print(sys.implementation.name + "-" + ".".join(map(str, sys.version_info[:3])))' 2>/dev/null)
INSTALLED := $(VENV)/.installed-$(PYTHON_ID)
python_runs = $(if $(PYTHON_ID),,$(error PYTHON=$(PYTHON) does not run; give a Python 3.11, 3.12 or 3.13 interpreter))

.PHONY: install demo ui test test-fast lint format clean docs bench screenshot

$(CURDIR)/.tools/bin/uv:
	$(python_runs)
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

$(INSTALLED): pyproject.toml uv.lock | $(UV)
	$(python_runs)
	rm -f $(VENV)/.installed*
	UV_PROJECT_ENVIRONMENT=$(VENV) $(UV) sync --frozen --python $(PYTHON)
	touch $@

install: $(INSTALLED)  ## build .venv/ (with .venv/bin/mesh) and prepare dbt manifests
	$(MESH) prepare

# the Dagster UI, the recipe of `make ui` and the end of `make demo` (which runs it itself rather than
# `$(MAKE) ui`, so that `install`, and its `mesh prepare`, runs once).
# --use-legacy-code-server-behavior: the webserver and the daemon read workspace.yaml themselves, so a
# domain `mesh new-domain` adds appears on "Reload all" (plain `dagster dev` serves the locations it
# started with until it is restarted)
define serve_ui
mkdir -p $(DAGSTER_HOME)
$(VENV)/bin/dagster dev -w workspace.yaml --use-legacy-code-server-behavior -h $(UI_HOST) -p $(UI_PORT)
endef

demo: install  ## seed, materialize the whole mesh, then serve the Dagster UI on 127.0.0.1
	$(MESH) seed --scale $(SCALE)
	$(MESH) run
	$(if $(MESH_NO_UI),,$(serve_ui))

ui: install  ## the Dagster UI over every domain (loopback only unless UI_HOST is changed)
	$(serve_ui)

test: install  ## the whole suite, slow end-to-end tests included
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

test-fast: install
	$(VENV)/bin/pytest -m "not slow"

lint:
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .

format:
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(MESH_HOME) dbt_projects/*/target dbt_projects/*/logs

docs: install  ## regenerate the README's lineage diagram from the code
	$(VENV)/bin/python -m devtools.readme

screenshot: install  ## docs/lineage.png: the UI's global lineage graph of a small temporary mesh, in Debian's chromium
	$(VENV)/bin/python -m devtools.ui_screenshot

bench: install  ## benchmarks: mesh vs plain DuckDB at scales 1, 5, 20; `make bench QUICK=1` for the quick mode
	$(VENV)/bin/python -m bench $(if $(QUICK),--quick,)
