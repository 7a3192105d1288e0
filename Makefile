# The README's two commands: `make demo` (the main job, end to end) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install controlplane demo test bench down lint

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,bench]'
	$(BIN)/pip install --quiet -e sdk/python
	touch $@

# kube-apiserver, etcd and kubectl from Go modules; cached, so only the first run takes minutes.
controlplane: install
	$(BIN)/selfheal dev build

demo: controlplane
	hack/demo.sh

test: controlplane
	$(BIN)/lint-imports
	$(BIN)/pytest

bench: controlplane
	$(BIN)/python bench/sync_bench.py
	$(BIN)/python bench/guard_bench.py

down: install
	$(BIN)/selfheal dev down
