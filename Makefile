# The two commands the README opens with: `make run` and `make test`.
.PHONY: run test lint typecheck setup setup-test clean proto

VENV := .venv
BIN := $(VENV)/bin
# No arguments: chinwag's chat screen (the TUI). E.g. `make run ARGS="node --store"` for a node.
ARGS ?=

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
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: setup-test
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .

typecheck: setup-test
	@$(BIN)/mypy

clean:
	rm -rf $(VENV) tests/interop/*/node_modules .pytest_cache .mypy_cache .ruff_cache

## Regenerate the protobuf modules after editing a .proto file.
proto: setup-test
	@scripts/gen_proto.sh
