#!/usr/bin/env bash
# Regenerates requirements.lock (every dependency, dev extras included, pinned with hashes, for every
# platform and Python >= 3.11) from pyproject.toml. Run it after adding or changing a dependency and
# commit both files. Versions already in the lock are kept unless pyproject.toml needs others; pass
# --upgrade (or --upgrade-package NAME) to move to newer releases.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${KVMAINT_LOCK_OUT:-requirements.lock}
uv=.venv/bin/uv
if [ ! -x "$uv" ]; then
  [ -x .venv/bin/python ] || "${PYTHON:-python3}" -m venv .venv
  .venv/bin/python -m pip install -q "$(grep -o '^uv==[^ ]*' requirements.lock)"
fi
[ "$out" = requirements.lock ] || cp requirements.lock "$out"
exec "$uv" pip compile -q pyproject.toml --extra dev --universal --generate-hashes \
  --custom-compile-command scripts/lock.sh -o "$out" "$@"
