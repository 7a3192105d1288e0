# The README's two commands: `make demo` (the main job, end to end) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The Python trees ruff checks and formats.
LINTED := operator tests bench hack sdk/python

.PHONY: install controlplane demo test test-fast bench down lint node-sdk docs-tools image node

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,test,bench]'
	$(BIN)/pip install --quiet -e sdk/python
	touch $@

# kube-apiserver, etcd, kubectl and helm from Go modules; cached, so only the first run takes minutes.
controlplane: install
	$(BIN)/selfheal dev build
	hack/helm/build.sh >/dev/null

demo: controlplane
	hack/demo.sh

# ruff (lint and format), mypy (strict on core/), the layer contracts.
lint: install
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint controlplane node node-sdk docs-tools
	$(BIN)/pytest
	cd sdk/node && PYTHON=$(abspath $(BIN))/python npm test

# The tests that need no control plane or database: seconds, for the edit-test loop.
test-fast: install
	$(BIN)/pytest -m "not world"

# The Mermaid parser the docs' tests use (tests/docs/mermaid), from its lock file.
docs-tools: tests/docs/mermaid/node_modules/.installed

tests/docs/mermaid/node_modules/.installed: tests/docs/mermaid/package-lock.json
	cd tests/docs/mermaid && npm ci --no-audit --no-fund
	touch $@

# The Node SDK's development tools (typescript, @types/node: types checked by its tests), from its lock file.
node-sdk: sdk/node/node_modules/.installed

sdk/node/node_modules/.installed: sdk/node/package-lock.json
	cd sdk/node && npm ci --no-audit --no-fund
	touch $@

# kubelet, kube-proxy, kube-scheduler, kube-controller-manager (Go modules) and the pause image; cached.
node: controlplane
	$(BIN)/python hack/node/node.py build

# The container image on a Debian base, where no image registry is reachable.
image:
	$(PYTHON) hack/image/build.py

# Every benchmark at a small scale, under 10 minutes on 2 cores (large scale: each one's --help),
# then the README's performance table from bench/results.json. api_bench and reports_bench need wrk.
bench: controlplane
	@command -v wrk >/dev/null || { echo 'make bench needs wrk (Debian package: apt-get install wrk)' >&2; exit 2; }
	$(BIN)/python bench/sync_bench.py --counts 100
	$(BIN)/python bench/api_bench.py --patches 5000 --seconds 3 --rounds 1
	$(BIN)/python bench/reports_bench.py --api-processes 1 2 --seconds 4 --rounds 1
	$(BIN)/python bench/guard_bench.py cycle --rows 1000000 --patches 1000 --seconds 20
	$(BIN)/python bench/deactivation_bench.py --trials 30 --healthy-seconds 5
	$(BIN)/python bench/detection_bench.py --healthy-patch-days 500 --regressed 20
	$(BIN)/python bench/operator_scale.py --objects 200 --settle 5
	$(BIN)/python hack/bench_table.py

down: install
	$(BIN)/selfheal dev down
