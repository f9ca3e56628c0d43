# `make demo` and `make test` work from a fresh clone: they create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= out/demo

.PHONY: setup test lint format wheel-check demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,lint]'
	touch $(STAMP)

setup: $(STAMP)

# Coverage of reirrad/ (the CLI tests' subprocesses included) is measured and must stay >= 90 %.
# The tests run on every core (pytest-xdist); each test is independent of the others.
test: setup
	rm -f .coverage .coverage.*
	$(PY) -m coverage run -m pytest -q -n auto
	$(PY) -m coverage combine -q
	$(PY) -m coverage report

# ruff (lint and format check) and mypy; CI runs this before the tests.
lint: setup
	$(VENV)/bin/ruff check reirrad tests benchmarks sample_plans
	$(VENV)/bin/ruff format --check reirrad tests benchmarks sample_plans
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff check --fix reirrad tests benchmarks sample_plans
	$(VENV)/bin/ruff format reirrad tests benchmarks sample_plans

# Build the wheel, install it (not editable) into a fresh venv, run every command outside the repo.
wheel-check:
	.ci/wheel-check $(PYTHON)

demo: setup
	$(VENV)/bin/reirrad demo --output-dir $(DEMO_OUT)

bench: setup
	$(PY) benchmarks/dvh_accuracy.py
	$(PY) benchmarks/dvh_speed.py
	$(PY) benchmarks/sum_speed.py
	$(PY) benchmarks/batch_speed.py
	$(PY) benchmarks/large_structure.py
	$(PY) benchmarks/scale.py --sizes 2.5 10

clean:
	rm -rf $(VENV) out .pytest_cache .coverage .coverage.*
