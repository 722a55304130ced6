#!/usr/bin/env bash
# test-timeout: 180
# A full restart of an ActorNvme cluster from PostgreSQL: a throwaway PostgreSQL 15 server (Debian's
# postgresql-15, installed by scripts/ensure-deps.sh) in a temporary directory, run by an unprivileged
# user on a free loopback port; the cluster spec's PostgreSQL case (ClusterRestartSpec: two nodes given a
# discovery and attaches at run time, every node stopped, fresh nodes on the same store attach everything
# again) runs against it; the server is stopped and its directory removed, whatever happened.
# Log in artifacts/cluster-restart-postgresql/. Exit: 0 passed, 1 failed, 77 skipped (no PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=cluster-restart-postgresql
pg_bin=${ACTORNVME_PG_BIN:-/usr/lib/postgresql/15/bin}
test_dll=tests/ActorNvme.Cluster.Tests/bin/Release/net10.0/ActorNvme.Cluster.Tests.dll
# shellcheck source=lib/preflight.sh
. tests/shell/lib/preflight.sh
require_built "$test_dll"
if [ ! -x "$pg_bin/initdb" ] || [ ! -x "$pg_bin/pg_ctl" ]; then
  echo "$me: SKIP (PostgreSQL 15 is not installed; scripts/ensure-deps.sh installs it as root)"
  exit 77
fi

logs=artifacts/cluster-restart-postgresql
mkdir -p "$logs"
log=$logs/test.log
data=$(mktemp -d "${TMPDIR:-/tmp}/actornvme-pg.XXXXXX")

# PostgreSQL refuses to run as root: as root, the server belongs to the package's postgres user.
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  owner=postgres
  id "$owner" >/dev/null 2>&1 || owner=nobody
  chown "$owner" "$data"
  chmod 700 "$data"
  as_owner=(runuser -u "$owner" --)
fi

stop_server() {
  "${as_owner[@]}" "$pg_bin/pg_ctl" -D "$data/db" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$data"
}
trap stop_server EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null || shuf -i 20000-60000 -n 1)
"${as_owner[@]}" "$pg_bin/initdb" -D "$data/db" -U actornvme --auth=trust -E UTF8 --no-sync >"$logs/initdb.log" 2>&1 || {
  echo "$me: FAIL (initdb failed; see $logs/initdb.log)"
  exit 1
}
"${as_owner[@]}" "$pg_bin/pg_ctl" -D "$data/db" -l "$data/server.log" -w -t 60 \
  -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$data -c fsync=off" start >"$logs/pg_ctl.log" 2>&1 || {
  cp "$data/server.log" "$logs/" 2>/dev/null || true
  echo "$me: FAIL (the PostgreSQL server did not start; see $logs/)"
  exit 1
}
psql_bin=$pg_bin/psql
[ -x "$psql_bin" ] || psql_bin=psql
"${as_owner[@]}" "$psql_bin" -h 127.0.0.1 -p "$port" -U actornvme -d postgres -qc 'CREATE DATABASE actornvme' >>"$logs/pg_ctl.log" 2>&1 || {
  echo "$me: FAIL (could not create the database; see $logs/pg_ctl.log)"
  exit 1
}

rc=0
ACTORNVME_TEST_POSTGRES="Host=127.0.0.1;Port=$port;Username=actornvme;Database=actornvme" \
  timeout 150 dotnet test "$test_dll" --nologo \
  --filter 'FullyQualifiedName~ClusterRestartSpec.Every_attachment_comes_back_after_a_full_restart_from_PostgreSQL' \
  --logger 'console;verbosity=detailed' >"$log" 2>&1 || rc=$?
cp "$data/server.log" "$logs/" 2>/dev/null || true

# The case must have run (not been skipped) and passed.
if [ "$rc" -ne 0 ] || ! grep -q 'Passed ActorNvme.Cluster.Tests.ClusterRestartSpec.Every_attachment_comes_back_after_a_full_restart_from_PostgreSQL' "$log" \
  || grep -Eq '^ *Skipped ' "$log"; then
  echo "$me: FAIL (exit $rc; see $log)"
  grep -E '^ *(Passed|Failed|Skipped) |Error Message|Assert' "$log" | head -n 20 || true
  exit 1
fi
grep -E '^ *[a-z][a-z ]*: after [0-9.]+ s$' "$log" | sed "s/^ */$me: /" || true
echo "$me: ok (every attachment back after a full restart, from PostgreSQL $("$pg_bin/postgres" --version | awk '{print $3}'))"
