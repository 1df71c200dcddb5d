#!/usr/bin/env bash
# Sets up (if needed) and runs the whole test suite against real redis-server processes and gRPC on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
