# One command for the demo, one for the tests; each installs what it needs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export PYTHONPATH := $(CURDIR)/layers/sync:$(CURDIR)/client/src:$(CURDIR)/local
ARGS ?=

.PHONY: demo test lint bench layers clean

$(STAMP): requirements-dev.txt client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e client
	touch $(STAMP)

## Run a nightly run end to end on the embedded local stack and read every table back.
demo: $(STAMP)
	$(PY) -m bdc_local.demo $(ARGS)

## Lint, then every test (unit, local-stack end-to-end, template, layer size).
test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest -n 2 --dist loadfile $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

## Benchmarks print figures and ratios (see README); not part of the tests.
bench: $(STAMP)
	$(PY) bench/nightly.py $(ARGS)

## Build the Lambda layers for Python 3.12 / x86_64 and report each function's size.
layers: $(STAMP)
	$(PY) layers/build.py

## Called by `sam build` (template: BuildMethod makefile) with ARTIFACTS_DIR set.
.PHONY: build-DependenciesLayer build-SyncLayer build-DispatcherFunction build-WorkerFunction build-FinalizerFunction build-DecoderFunction
build-DependenciesLayer build-SyncLayer build-DispatcherFunction build-WorkerFunction build-FinalizerFunction build-DecoderFunction:
	$(PYTHON) "$(CURDIR)/layers/build.py" --sam-target $(@:build-%=%) --artifacts-dir "$(ARTIFACTS_DIR)"

clean:
	rm -rf build .pytest_cache
