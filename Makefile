# nimbus-scenarios: `make test` runs every check, `make demo` runs the local demo.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: all venv system-deps test-deps test lint typecheck unit demo bench fmt clean manifests dashboard

all: test

# The environment is rebuilt when pyproject.toml changes; everything the checks need is in it.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# What the tests need from the system: headless Chromium, for the HTML report's browser tests.
# Installed with apt-get where that is possible (root on Debian or Ubuntu); otherwise `make test`
# stops before running anything and says what is missing and how to get it.
test-deps:
	@if command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
		|| [ -n "$$NIMBUS_CHROMIUM" ] || [ "$$NIMBUS_SKIP_BROWSER" = 1 ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian's chromium (the HTML report's browser tests need it)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "make test: headless Chromium is missing (the HTML report's browser tests need it)." >&2; \
		echo "  Debian or Ubuntu: sudo apt-get install -y chromium" >&2; \
		echo "  elsewhere: install Chromium or Chrome and set NIMBUS_CHROMIUM=/path/to/it" >&2; \
		echo "  or skip those tests: NIMBUS_SKIP_BROWSER=1 make test" >&2; \
		exit 2; \
	fi

# Also nginx, which bench/ measures against (not needed by the tests).
system-deps: test-deps
	@if ! test -x /usr/sbin/nginx; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null; \
	fi

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Most tests wait on loopback servers and child processes, not on the CPU: four workers finish
# the suite in under half the time even on two cores. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 4

unit: $(STAMP)
	$(BIN)/pytest -n $(TEST_WORKERS)

test: test-deps lint typecheck unit

# The shipped manifests: the scenario copies the ConfigMap generator reads, and every Job and
# CronJob file written from the Job template (tests/deploy fails when either drifts).
manifests: $(STAMP)
	cp scenarios/*.scn manifests/components/load-generator/scenarios/
	$(BIN)/python -m nimbus_scenarios.kube.shipped --write manifests

# The Grafana dashboard JSON, built in code (tests/deploy/test_grafana.py fails on drift).
dashboard: $(STAMP)
	$(BIN)/python tools/dashboard.py manifests/grafana/nimbus-scenarios-dashboard.json

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# About two minutes: quickstart against a local autoscaled fleet of reference consumers.
demo: $(STAMP)
	$(BIN)/nimbus-scenarios run quickstart --local --monitor

bench: $(STAMP)
	$(BIN)/python bench/peers.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis results dist build
