#!/usr/bin/env bash
# Installs kvmaint with the LOWEST versions pyproject.toml allows for its direct dependencies, into a
# venv of its own (.venv-lowest), and runs there the smoke test (imports, dev certificates, a real
# scheduler, one RPC, the CLI, kvmaint.client on a real redis-server) and the tests of the parts that
# lean hardest on those libraries (notifications: aiohttp, aiosmtplib; the agent's Redis facade: redis).
# The Sentinel endpoint: hiredis. Shell completion: shtab. The storage contract on both stores:
# sqlite3 (the standard library), asyncpg.
# A declared floor is a tested floor. CI runs it; run it yourself after changing a floor.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
uv=.venv/bin/uv
PYTHON=${PYTHON:-python3}
rm -rf .venv-lowest
"$uv" venv -q --python "$PYTHON" .venv-lowest
"$uv" pip install -q --python .venv-lowest/bin/python --compile-bytecode --resolution lowest-direct -e .
# The test tools at their locked versions (they are not what the floors are about).
"$uv" pip install -q --python .venv-lowest/bin/python --compile-bytecode -c requirements.lock \
  pytest pytest-asyncio pytest-timeout pytest-xdist aiosmtpd hypothesis standardwebhooks
.venv-lowest/bin/python -m tests.smoke.run
exec .venv-lowest/bin/python -m pytest -q -p no:cacheprovider -n "${KVMAINT_TEST_WORKERS:-3}" tests/notify tests/agent/test_redisnode.py tests/sentinel \
  tests/cli/test_completion.py tests/storage
