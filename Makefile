# nimbus-scenarios: `make test` runs every check, `make demo` runs the local demo.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all venv system-deps test lint typecheck unit demo bench fmt clean

all: test

# The environment is rebuilt when pyproject.toml changes; everything the checks need is in it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the tests use: chromium (the HTML report is opened headless), nginx (bench).
system-deps:
	@if ! command -v chromium >/dev/null || ! test -x /usr/sbin/nginx; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium nginx-light >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# About two minutes: quickstart against a local autoscaled fleet of reference consumers.
demo: $(STAMP)
	$(BIN)/nimbus-scenarios run quickstart --local --monitor

bench: $(STAMP)
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis results dist build
