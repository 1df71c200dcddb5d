#!/usr/bin/env bash
# Checks the systemd units (default deploy/systemd/) with systemd-analyze: `verify` must print nothing
# (it exits 0 on unknown keys and bad values, which it only warns about), and `security --offline`
# must rate each unit's exposure at most KVMAINT_UNIT_MAX_EXPOSURE (default 2.0, "OK").
# ExecStart's /opt/kvmaint/bin/ is pointed at this checkout's .venv/bin/, so the binaries must exist.
set -euo pipefail
cd "$(dirname "$0")/.."
units=${1:-deploy/systemd}
max=${KVMAINT_UNIT_MAX_EXPOSURE:-2.0}
bin="$(pwd)/.venv/bin/"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "verify_units: systemd-analyze is missing (apt-get install systemd)" >&2
  exit 3
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
status=0
for unit in "$units"/*.service; do
  name=$(basename "$unit")
  sed "s#/opt/kvmaint/bin/#$bin#g" "$unit" > "$work/$name"
  verdict="verify clean"
  if ! out=$(systemd-analyze verify "$work/$name" 2>&1) || [ -n "$out" ]; then
    echo "$name: systemd-analyze verify:"; echo "$out"; status=1; verdict="verify FAILED"
  fi
  line=$(systemd-analyze security --offline=yes "$work/$name" 2>&1 | grep 'Overall exposure level' || true)
  score=$(sed -n 's/.*: \([0-9.]*\) .*/\1/p' <<<"$line")
  if [ -z "$score" ] || ! awk -v s="$score" -v m="$max" 'BEGIN { exit !(s <= m) }'; then
    echo "$name: exposure ${score:-unknown} above $max"; status=1
  else
    echo "$name: $verdict, exposure $score (at most $max)"
  fi
done
for timer in "$units"/*.timer; do
  [ -e "$timer" ] || continue
  name=$(basename "$timer")
  cp "$timer" "$work/$name"
  if ! out=$(systemd-analyze verify "$work/$name" 2>&1) || [ -n "$out" ]; then
    echo "$name: systemd-analyze verify:"; echo "$out"; status=1
  else
    echo "$name: verify clean"
  fi
done
exit $status
