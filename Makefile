# dx-gateway: two commands on a fresh machine with Python 3.11+ and make: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ROWS ?= 100000
BENCH_ROWS ?= 1000000

.PHONY: run test lint bench bench-smoke clean venv

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (found " + sys.version.split()[0] + ")")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/gateway demo --rows $(ROWS) --data-dir var/demo

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check gateway policies transforms keys tlog
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@command -v wrk >/dev/null || echo "note: wrk is not installed (apt-get install wrk); the single-record load test will be skipped"
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(PY) -m bench --rows $(BENCH_ROWS) --out docs/benchmarks.md

bench-smoke: $(BENCH_STAMP)
	$(PY) -m bench --rows 5000 --runs 1 --strict --out var/bench-smoke.md

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
