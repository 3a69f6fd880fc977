# One command for the demo, one for the tests; each installs what it needs.
# The repository root is where this Makefile is, not $(CURDIR): `sam build` runs the
# build-* targets with `--makefile <root>/Makefile` from a copy of each resource's
# CodeUri/ContentUri.
ROOT := $(patsubst %/,%,$(dir $(abspath $(firstword $(MAKEFILE_LIST)))))
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The deployer's tools (SAM CLI, checkov) need pydantic >= 2.13, which cannot share a
# venv with aind-data-access-api (pydantic < 2.12); SAM CLI and checkov also pin
# conflicting libraries, so each has a venv of its own (versions in requirements-tools/).
TOOLS := $(ROOT)/.venv-tools
SAM := $(TOOLS)/sam/bin/sam
CHECKOV := $(TOOLS)/checkov/bin/checkov
export PYTHONPATH := $(ROOT)/layers/sync:$(ROOT)/client/src:$(ROOT)/local
# The SAM CLI sends usage data unless told not to.
export SAM_CLI_TELEMETRY ?= 0
ARGS ?=

.PHONY: demo test lint stubs bench goals layers clean tools sam-build sam-validate checkov fault-report

$(STAMP): requirements-dev.txt client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet -e client
	touch $(STAMP)

## Run a nightly run end to end on the embedded local stack and read every table back.
demo: $(STAMP)
	$(PY) -m bdc_local.demo $(ARGS)

$(SAM): requirements-tools/sam.txt
	$(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet --disable-pip-version-check -r requirements-tools/sam.txt
	touch $(SAM)

$(CHECKOV): requirements-tools/checkov.txt
	$(PYTHON) -m venv $(TOOLS)/checkov
	$(TOOLS)/checkov/bin/pip install --quiet --disable-pip-version-check -r requirements-tools/checkov.txt
	touch $(CHECKOV)

## The SAM CLI and checkov, each in its own venv under .venv-tools/.
tools: $(SAM) $(CHECKOV)

## Lint and type-check, then every test (unit, local-stack end-to-end, template, sam build,
## checkov, layer size).
test: $(STAMP) $(SAM) $(CHECKOV)
	$(PY) -m ruff check .
	$(PY) -m mypy
	$(PY) -m pytest -n 2 --dist loadfile $(ARGS)

## ruff, and mypy over layers/sync and client/src (settings in pyproject.toml).
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

## Rewrite the type stub of the tables' client functions from the catalog (a test checks it is current).
stubs: $(STAMP)
	$(PY) -m biodata_cache._table_functions

## Benchmarks print figures and ratios (see README); not part of the tests.
bench: $(STAMP)
	$(PY) bench/nightly.py $(ARGS)

## The goals' figures from the results files into bench/results/nightly.json (no run).
goals: $(STAMP)
	$(PY) bench/goals.py

## Build the Lambda layers for Python 3.12 / x86_64 and report each function's size.
layers: $(STAMP)
	$(PY) layers/build.py

## What a deployer runs: sam build (into .aws-sam/) and the template checks.
sam-build: $(SAM)
	$(SAM) build $(ARGS)

sam-validate: $(SAM)
	$(SAM) validate --lint

checkov: $(CHECKOV)
	$(CHECKOV) -f template.yaml --framework cloudformation --compact

## Refresh the committed fault report (docs/fault-report.md, README's table); `make test`
## writes it only to build/fault-report/.
fault-report: $(STAMP)
	BDC_FAULT_REPORT_PUBLISH=1 $(PY) -m pytest -n 2 --dist loadfile tests/e2e/test_faults.py \
		tests/e2e/test_nightly.py::test_bad_manual_requests_enqueue_nothing $(ARGS)

## Called by `sam build` (template: BuildMethod makefile) with ARTIFACTS_DIR set, once per
## layer and function: build-DependenciesLayer, build-SyncLayer, build-<Name>Function (the
## code in functions/<name>/). A new function needs only its resource in template.yaml.
build-%:
	$(PYTHON) "$(ROOT)/layers/build.py" --out "$(ROOT)/build/lambda" --sam-target $* --artifacts-dir "$(ARTIFACTS_DIR)"

clean:
	rm -rf build .pytest_cache .aws-sam
