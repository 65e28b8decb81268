#!/usr/bin/env bash
# Builds chinwag's wheel into dist/ (for `pipx install dist/chinwag-*.whl`).
# Usage: packaging/build-wheel.sh   (or `make wheel`)
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
rm -rf dist/chinwag-*.whl build/lib build/bdist.*  # a stale build/lib would put deleted modules in the wheel
# The wheel holds chinwag alone; its dependencies come from the index when it is installed.
"$PY" -m pip wheel -q --no-deps -w dist .
ls dist/chinwag-*.whl
