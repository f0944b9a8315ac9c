# Two commands: `make demo` and `make test`. Both build .venv on first use and
# skip the install when pyproject.toml has not changed since the last one.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test,delta,spark]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/postback-lab demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check postback_lab tests benchmarks
	$(BIN)/mypy

test: $(VENV)/.installed-test
	$(BIN)/ruff check postback_lab tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_plan.py --rows 1000000

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
