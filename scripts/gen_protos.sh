#!/usr/bin/env bash
# Regenerates kvmaint/v1/*_pb2*.py(i) from protos/. CI runs it and fails on any diff.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
rm -f kvmaint/v1/*_pb2*.py kvmaint/v1/*_pb2*.pyi
"$PY" -m grpc_tools.protoc -Iprotos \
  --python_out=. --pyi_out=. --grpc_python_out=. \
  protos/kvmaint/v1/*.proto
touch kvmaint/v1/__init__.py
