# One command to set up and run the main job, one to set up and run the tests.
# Each creates .venv with pip when it is missing (or when pyproject.toml changed).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
RUN ?= runs/demo
LINTED := src tests benchmarks scripts

.PHONY: setup demo test lint smoke-py310 clean

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[dev]'
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(BIN)/reslab train --recipe demo --out $(RUN) --force

# The default suite (pyproject's addopts: not slow, the 15 slowest tests listed), then lint.
test: setup
	$(BIN)/python -m pytest -q
	$(MAKE) --no-print-directory lint

lint: setup
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

# The oldest supported Python (3.10): a fresh venv, reslab installed from this tree, the CLI and a
# tiny training run (CI runs it after the tests; 4-5 min: PyTorch is downloaded for 3.10).
smoke-py310:
	bash .ci/run py310

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
