# One entry point for everything: `make run` and `make test` create .venv when needed.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export AWS_DEFAULT_REGION ?= us-east-1
export SAM_CLI_TELEMETRY ?= 0

include mk/ddblocal.mk

.PHONY: setup run test test-unit test-store test-integration test-ddblocal test-e2e test-infra lint typecheck build openapi clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: setup
	$(BIN)/python -m local $(RUN_ARGS)

lint: setup
	$(BIN)/ruff check layers functions clients scripts tests
	$(BIN)/ruff format --check layers functions clients scripts tests

typecheck: setup
	$(BIN)/mypy layers/core/feedback_core functions clients/python/feedbackctl

test: lint typecheck ddblocal
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-store: setup ddblocal
	$(BIN)/python -m pytest tests/store $(PYTEST_ARGS)

test-unit: setup
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

test-integration: setup
	$(BIN)/python -m pytest tests/integration $(PYTEST_ARGS)

test-ddblocal: setup ddblocal
	$(BIN)/python -m pytest tests/ddblocal $(PYTEST_ARGS)

test-e2e: setup
	$(BIN)/python -m pytest tests/e2e $(PYTEST_ARGS)

test-infra: setup
	$(BIN)/python -m pytest tests/infra $(PYTEST_ARGS)

openapi: setup
	$(BIN)/python scripts/build_openapi.py

build: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/sam build --template-file template.yaml

clean:
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
