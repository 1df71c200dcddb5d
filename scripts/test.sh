#!/usr/bin/env bash
# Sets up (if needed) and runs the whole test suite against real redis-server processes and gRPC on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# Three workers on two cores: most tests wait on real servers and sockets, not on the CPU.
# KVMAINT_TEST_WORKERS=0 runs them in one process.
# --faults-full: the whole fault matrix of tests/faults (docs/reliability.md) instead of CI's subset.
if [ "${1:-}" = "--faults-full" ]; then
  shift
  export KVMAINT_FAULTS_FULL=1
  exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${KVMAINT_TEST_WORKERS:-3}" tests/faults "$@"
fi
exec .venv/bin/python -m pytest -q -p no:cacheprovider -n "${KVMAINT_TEST_WORKERS:-3}" "$@"
