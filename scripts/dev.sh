#!/usr/bin/env bash
# Sets up (if needed) and runs kvmaint locally: scheduler, two agents, real Redis servers, an example app.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m kvmaint.localfleet "$@"
