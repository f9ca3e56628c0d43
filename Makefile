# `make demo` and `make test` work from a fresh clone: they create .venv when missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= out/demo

.PHONY: setup test wheel-check demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

test: setup
	$(PY) -m pytest -q

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

clean:
	rm -rf $(VENV) out .pytest_cache
