#!/usr/bin/env bash
# Regenerates every *_pb2.py / *_pb2.pyi from the .proto files under chat/.
# Usage: scripts/gen_proto.sh [OUTDIR]   (default: in place; the tests generate into a temp dir
# and compare, so a .proto edited without regenerating fails the suite)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-.}"
py="${PYTHON:-.venv/bin/python}"
mapfile -t protos < <(find chat -name '*.proto' -not -path '*/node_modules/*' | sort)
[ ${#protos[@]} -gt 0 ] || exit 0
"$py" -m grpc_tools.protoc -I . --python_out="$out" --mypy_out="$out" \
  --plugin=protoc-gen-mypy="$(dirname "$py")/protoc-gen-mypy" "${protos[@]}"
