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
if ! command -v redis-sentinel >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  # The Sentinel tests compare kvmaint's endpoint with a real redis-sentinel, field by field.
  echo "setup: installing redis-sentinel with apt-get" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-sentinel) >&2
fi
# The status page's browser tests drive Debian's chromium with its matching chromium-driver.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium and chromium-driver with apt-get" >&2
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >&2
  else
    echo "setup: chromium is missing (browser tests need it): sudo apt-get install -y chromium chromium-driver" >&2
  fi
fi
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.kvmaint-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ requirements.lock -nt "$stamp" ]; then
  # Everything comes from requirements.lock (pinned, with hashes); uv itself is pinned there too.
  uv_req=$(awk '/^uv==/{p=1} p{print} p&&!/\\$/{exit}' requirements.lock)
  .venv/bin/python -m pip install -q --require-hashes -r /dev/stdin <<<"$uv_req" 2>&1 | grep -v -i '^warning' >&2 || true
  .venv/bin/uv pip install -q --python .venv/bin/python --compile-bytecode --require-hashes -r requirements.lock
  .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .
  fresh=$(mktemp)
  KVMAINT_LOCK_OUT=$fresh scripts/lock.sh
  if ! diff -u requirements.lock "$fresh" >&2; then
    rm -f "$fresh"
    echo "setup: requirements.lock does not match pyproject.toml: run scripts/lock.sh and commit requirements.lock" >&2
    exit 1
  fi
  rm -f "$fresh"
  .venv/bin/python -c 'import kvmaint, grpc, redis, sqlite3' # fail loudly if the install did not work
  touch "$stamp"
fi
# Bytecode for the project's own packages (the dependencies' is compiled at install, above). Where
# PYTHONDONTWRITEBYTECODE is set (CI, this machine) nothing caches it otherwise, and every process the
# tests start (schedulers, agents, each `kvmaint` command) compiled ~550 modules from source: 3.1 s of
# CPU per start instead of 0.8 s. Cheap when current (it compares timestamps).
.venv/bin/python -m compileall -q -j 0 server kvmaint agent tests bench >/dev/null
