#!/usr/bin/env bash
# Idempotent setup: a venv with kvmaint and its dev tools, and redis-server (installed where it can be).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if ! command -v redis-server >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing redis-server with apt-get" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server redis-sentinel) >&2
  else
    echo "setup: redis-server is missing; install it with: sudo apt-get install -y redis-server redis-sentinel" >&2
    exit 1
  fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.kvmaint-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/pip install -q --upgrade pip >/dev/null 2>&1 || true
  .venv/bin/pip install -q -e '.[dev]' 2>&1 | grep -v -i '^warning' >&2 || true
  .venv/bin/python -c 'import kvmaint, grpc, redis, aiosqlite' # fail loudly if the install did not work
  touch "$stamp"
fi
