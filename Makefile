# One entry point for everything: `make run` and `make test` create .venv when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY ?= 0

include mk/ddblocal.mk

.PHONY: setup run events test fuzz test-unit test-store test-integration test-ddblocal test-e2e test-local test-infra lint typecheck build bench openapi clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The whole service on 127.0.0.1:$(PORT) (default 3000), in the foreground; Ctrl-C stops it.
# `make run PERSIST=.local/data` keeps the data across restarts (DynamoDB Local); RUN_ARGS adds options.
run: setup
	$(BIN)/python -m local $(if $(PORT),--port $(PORT)) $(if $(PERSIST),--persist $(PERSIST)) $(RUN_ARGS)

# Prints the running local stack's events as they come (bus and SNS topic); EVENTS_ARGS=--json for all.
events: setup
	$(BIN)/python -m local.events_tail $(EVENTS_ARGS)

lint: setup
	$(BIN)/ruff check layers functions clients scripts local bench tests
	$(BIN)/ruff format --check layers functions clients scripts local bench tests

typecheck: setup
	$(BIN)/mypy layers/core/feedback_core functions clients/python/feedbackctl local

test: lint typecheck ddblocal
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The property tests with freshly drawn examples (make test replays a fixed set); FUZZ_RUNS rounds.
FUZZ_RUNS ?= 5
fuzz: setup ddblocal
	for round in $$(seq $(FUZZ_RUNS)); do \
		HYPOTHESIS_PROFILE=explore $(BIN)/python -m pytest -q -m fuzz $(PYTEST_ARGS) || exit 1; \
	done

test-store: setup ddblocal
	$(BIN)/python -m pytest tests/store $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: setup
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

test-ddblocal: setup ddblocal
	$(BIN)/python -m pytest tests/ddblocal $(PYTEST_ARGS)

test-e2e: setup ddblocal
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

test-local: setup
	$(BIN)/python -m pytest tests/local $(PYTEST_ARGS)

test-infra: setup
	$(BIN)/python -m pytest tests/infra $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m bench.run

openapi: setup
	$(BIN)/python scripts/build_openapi.py

build: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam build --template-file template.yaml

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
