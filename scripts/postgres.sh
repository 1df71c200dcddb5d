#!/usr/bin/env bash
# Makes the PostgreSQL the tests use reachable: KVMAINT_TEST_POSTGRES, by default the machine's own
# (postgresql://postgres@127.0.0.1:5432/postgres, trust auth on loopback). Starts its cluster when it is
# down (pg_ctlcluster), installs it through apt when it is missing (then allows trust on loopback, as the
# tests connect without a password). A server named by KVMAINT_TEST_POSTGRES is only checked, never
# started. Each test makes a database of its own there and drops it (tests/support/pg.py).
set -euo pipefail
url=${KVMAINT_TEST_POSTGRES:-postgresql://postgres@127.0.0.1:5432/postgres}
ready() { command -v pg_isready >/dev/null 2>&1 && pg_isready -q -d "$url" >/dev/null 2>&1; }
ready && exit 0
if [ -n "${KVMAINT_TEST_POSTGRES:-}" ]; then
  echo "postgres: $url is not reachable (KVMAINT_TEST_POSTGRES names a server this script does not start)" >&2
  exit 1
fi
fresh=0
if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(ls /usr/lib/postgresql 2>/dev/null)" ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "postgres: PostgreSQL is missing; install it with: sudo apt-get install -y postgresql" >&2
    exit 1
  fi
  echo "postgres: installing postgresql with apt-get" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >&2
  fresh=1
fi
cluster=$(pg_lsclusters -h | awk '$3 == 5432 { print $1, $2; exit }')
if [ -z "$cluster" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -1)
  echo "postgres: creating cluster $version/main on port 5432" >&2
  pg_createcluster "$version" main --port 5432 >&2
  cluster="$version main"
  fresh=1
fi
read -r version name <<<"$cluster"
if [ "$fresh" = 1 ]; then
  hba=/etc/postgresql/$version/$name/pg_hba.conf
  # The first matching line wins: loopback connections need no password (a test machine's cluster).
  grep -qE '^host[[:space:]]+all[[:space:]]+all[[:space:]]+127\.0\.0\.1/32[[:space:]]+trust' "$hba" \
    || sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
fi
echo "postgres: starting cluster $version/$name" >&2
pg_ctlcluster "$version" "$name" start >&2 || pg_ctlcluster "$version" "$name" reload >&2
for _ in $(seq 1 60); do
  ready && exit 0
  sleep 0.5
done
echo "postgres: $url is still not reachable after starting $version/$name" >&2
exit 1
