#!/usr/bin/env bash
# test-timeout: 240
# `actornvme demo --cluster`: three `actornvme serve --cluster` processes on 127.0.0.1 and an in-process
# target with 8 subsystems; the subsystems spread (none with more than 4 per node); kill -9 of one node and
# its subsystems attached on the survivors; a graceful leave and its subsystems handed over with CC.SHN
# seen at the target first; never two hosts doing I/O to one namespace at once (counted at the target per host:
# host NQN and host identifier); no acknowledged write lost (each new owner reads the ledger back first).
# The demo's exit code says whether every step happened; this script also checks the timeline it printed,
# including 'takeover steps' and 'handover steps' (unreachable, downed, removed; entity started, desired state
# read, controller Live, fence begun and held, block device up — with the time of each, printed, not limited).
# Log in artifacts/cluster-demo/. Exit: 0 passed, 1 failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

me=cluster-demo
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
# shellcheck source=lib/preflight.sh
. tests/shell/lib/preflight.sh
require_built "$dll"

logs=artifacts/cluster-demo
mkdir -p "$logs"
log=$logs/demo.log
rc=0
# The issue's limits (15 s takeover, 3 s handover) are the demo's defaults; the test allows a loaded CI
# machine more (timings are not what it checks: that every step happens) and prints the times measured;
# failure detection 5 s, so that a node starved of CPU for 2 s is not taken for dead.
timeout 200 dotnet "$dll" demo --cluster --takeover-limit 60 --handover-limit 30 --failure-detection 5 >"$log" 2>&1 || rc=$?

for step in "ok   spread" "ok   takeover after kill -9" "ok   takeover steps" "ok   handover after graceful leave" "ok   handover steps" "ok   graceful exit" "ok   single writer at the target" "ok   no acknowledged write lost" "ok   all attached at the end"; do
  if ! grep -q "s  $step" "$log"; then
    echo "$me: FAIL (the timeline has no '$step'; exit $rc; see $log)"
    sed -n '/^timeline:/,$p' "$log"
    exit 1
  fi
done

if [ "$rc" -ne 0 ]; then
  echo "$me: FAIL (demo exit $rc; see $log)"
  exit 1
fi

sed -n '/^timeline:/,$p' "$log"
echo "$me: PASS"
