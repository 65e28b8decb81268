#!/usr/bin/env bash
# Builds chinwag's wheel (for `pipx install dist/chinwag-*.whl`).
# Usage: packaging/build-wheel.sh [OUT_DIR]   (default dist/; or `make wheel`)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-dist}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/chinwag-*.whl

# Build from a clean copy of the sources (what git tracks, and new files it does not ignore):
# built in place, setuptools would also take files from a stale build/lib or from the
# chinwag.egg-info an editable install left, and hide a gap in pyproject.toml's package-data.
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard -- pyproject.toml README.md chat ui storage |
    while IFS= read -r -d '' file; do [ -f "$file" ] && printf '%s\0' "$file"; done |
    tar -cf - --null -T - | tar -xf - -C "$src"
else
  cp -R pyproject.toml README.md chat ui storage "$src"/
fi

# The wheel holds chinwag alone; its dependencies come from the index when it is installed.
# pip builds it in an isolated environment with the setuptools pyproject.toml asks for.
"$PY" -m pip wheel -q --no-deps -w "$out" "$src"
ls "$out"/chinwag-*.whl
