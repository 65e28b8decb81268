#!/usr/bin/env bash
# Builds the one-file `chinwag` binary into dist/chinwag with PyInstaller.
# Usage: packaging/build-binary.sh   (or `make binary`)
# A venv of its own (build/binary-venv) holds chinwag (not editable: what a user installs, no
# test tools) and PyInstaller, so the binary carries the runtime dependencies and nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'binary: %s\n' "$*"; }

PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
venv=build/binary-venv
if [ ! -x "$venv/bin/python" ]; then
  say "creating $venv"
  "$PY" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip
fi
# chinwag from its wheel (built from a clean copy of the sources), reinstalled every time:
# the sources may have changed since the last build.
say "installing chinwag and PyInstaller into $venv"
packaging/build-wheel.sh build/binary-wheel >/dev/null
wheel=$(ls build/binary-wheel/chinwag-*.whl)
"$venv/bin/python" -m pip install -q 'pyinstaller>=6.10,<7' 'pyinstaller-hooks-contrib>=2024.8'
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps "$wheel"
# With the PostgreSQL client: the telemetry collector (and archive) on PostgreSQL.
"$venv/bin/python" -m pip install -q "$wheel[postgres]"

say "running PyInstaller"
"$venv/bin/pyinstaller" --noconfirm --log-level WARN \
  --distpath dist --workpath build/pyinstaller packaging/pyinstaller/chinwag.spec
say "built dist/chinwag ($(du -h dist/chinwag | cut -f1))"
