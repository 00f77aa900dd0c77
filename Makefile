# Fresh-machine entry points: `make test` and `make demo` create .venv themselves.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A CPU build of torch; on the project's machines pip takes it from local disk.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
# Deterministic, quiet, no network for pip's self-check.
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv test test-all lint format bench demo clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

$(DEMO_STAMP): $(STAMP)
	$(PY) -m pip install -q -e ".[dev,demo]"
	touch $(DEMO_STAMP)

venv: $(STAMP)

test: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks
	$(PY) -m pytest -q --doctest-modules src tests

test-all: $(STAMP)
	$(PY) -m pytest -q --doctest-modules -m "" src tests

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff check --fix src tests benchmarks
	$(VENV)/bin/ruff format src tests benchmarks

bench: $(STAMP)
	$(PY) -m amsnet bench speed

demo: $(DEMO_STAMP)
	$(PY) -m amsnet demo --output demo_output --overwrite

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .hypothesis src/*.egg-info
