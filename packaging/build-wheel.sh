#!/usr/bin/env bash
# Builds chinwag's wheel (for `pipx install dist/chinwag-*.whl`).
# Usage: packaging/build-wheel.sh [OUT_DIR]   (default dist/; or `make wheel`)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
mkdir -p "$out"
# A stale build/lib would put modules deleted since into the wheel.
rm -rf "$out"/chinwag-*.whl build/lib build/bdist.*
# The wheel holds chinwag alone; its dependencies come from the index when it is installed.
# pip builds it in an isolated environment with the setuptools pyproject.toml asks for.
"$PY" -m pip wheel -q --no-deps -w "$out" .
ls "$out"/chinwag-*.whl
