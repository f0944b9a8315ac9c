# Two commands: `make demo` and `make test`. Both build .venv on first use and
# skip the install when pyproject.toml has not changed since the last one.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint docs bench clean browser screenshots

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# PYTHONWARNINGS=ignore: setuptools prints a boxed "Editable installation" warning on
# every editable install that says nothing about this project
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install -q -e '.[test,docs,delta,spark,bench]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/postback-lab demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check postback_lab tests benchmarks
	$(BIN)/mypy

# The browser tests (tests/browser) drive Debian's chromium through its chromedriver:
# installed here when missing and apt is there (as root, or sudo without a password);
# without them those tests are skipped, saying why.
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  sudo=$$([ "$$(id -u)" = 0 ] || echo "sudo -n"); \
	  echo "installing chromium and chromium-driver for the browser tests"; \
	  { $$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y -qq --no-install-recommends chromium chromium-driver; } >/dev/null \
	  || echo "could not install chromium: the browser tests will be skipped"; \
	else echo "no chromium and no apt-get: the browser tests will be skipped"; fi

test: $(VENV)/.installed-test browser
	$(BIN)/ruff check postback_lab tests benchmarks
	$(BIN)/mypy
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site
	$(BIN)/python -m pytest

docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

# the docs' screenshots, from the last browser run of make test (build/browser/docs)
screenshots:
	cp build/browser/docs/*.png docs/

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/bench_plan.py --rows 1000000

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
