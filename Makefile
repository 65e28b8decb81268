# The two commands the README opens with: `make run` and `make test`.
.PHONY: run test lint typecheck setup setup-test clean proto binary wheel test-packaging

VENV := .venv
BIN := $(VENV)/bin
# No arguments: chinwag's chat screen (the TUI). E.g. `make run ARGS="node --store"` for a node.
ARGS ?=
# Test processes for `make test` (pytest-xdist, an idle one takes tests queued for a busy one);
# 0 runs the suite in this process.
PYTEST_WORKERS ?= 2

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

## Set everything up and start chinwag.
run: setup
	@$(BIN)/chinwag $(ARGS)

## Set everything up and run the whole suite: lint, format check, types, tests.
test: setup-test
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy
	@$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist worksteal --durations=25 $(PYTEST_ARGS)

lint: setup-test
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: setup-test
	@$(BIN)/mypy

clean:
	rm -rf $(VENV) tests/interop/*/node_modules .pytest_cache .mypy_cache .ruff_cache

## Regenerate the protobuf modules after editing a .proto file.
proto: setup-test
	@scripts/gen_proto.sh

## The one-file binary dist/chinwag (PyInstaller; packaging/build-binary.sh, 2.5-3.5 min).
binary:
	@packaging/build-binary.sh

## The wheel dist/chinwag-*.whl, for `pipx install` (packaging/build-wheel.sh).
wheel:
	@packaging/build-wheel.sh

## Build the binary and the wheel and run their smoke tests (`make test` skips the slow ones).
test-packaging: setup-test binary
	@CHINWAG_PACKAGING_TESTS=1 CHINWAG_BINARY=dist/chinwag $(BIN)/python -m pytest tests/packaging $(PYTEST_ARGS)
