#!/usr/bin/env bash
# test-timeout: 600
# The seed scenario (SPDK's nvmf_discovery_remove_ifc) against our own Target run as a process
# (`actornvme target`), in the same network as spdk-seed-scenario.sh: the target in a network namespace this
# test creates (discovery on 8009, two subsystems with RAM namespaces on 4420/4421), `actornvme serve` in a
# second namespace joined by a veth pair. Each cycle deletes the target's address and takes its link down,
# then restores both; the checks are those of tests/shell/lib/seed-cycles.sh.
# Settings: ACTORNVME_TARGET_CYCLES (default 20), ACTORNVME_TARGET_KATO_MS (default 2000). Logs in artifacts/.
# Exit: 0 passed, 1 failed, 77 skipped (not root, or a tool missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=target-seed-scenario
peer_name="actornvme target"
cycles=${ACTORNVME_TARGET_CYCLES:-20}
kato_ms=${ACTORNVME_TARGET_KATO_MS:-2000}
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}

# shellcheck source=lib/preflight.sh
. tests/shell/lib/preflight.sh
require_root_and_tools socat jq ip
require_built "$dll"

tag=o$$
work=$(mktemp -d /tmp/anvme-tgt.XXXXXX)
peer_log=$work/target.log
tgt_sock=$work/target.sock
serve_sock=$work/serve.sock
tgt_pid=
serve_pid=
logs=artifacts/target-seed-scenario
# shellcheck source=lib/seed-cycles.sh
. tests/shell/lib/seed-cycles.sh
cleanup() {
  stop_rpc_probe
  mkdir -p "$logs" && cp "$work"/*.log "$logs"/ 2>/dev/null || true
  for pid in $serve_pid $tgt_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $serve_pid $tgt_pid; do
    wait "$pid" 2>/dev/null || true
  done
  teardown_netns_pair
  rm -rf "$work"
}
trap cleanup EXIT

outage_begin() { netns_outage_begin; }
outage_end() { netns_outage_end; }

setup_netns_pair

ip netns exec "$ns_tgt" dotnet "$dll" target -a "$tgt_ip" -d 8009 -p 4420,4421 --size-mib 32 -r "$tgt_sock" >"$peer_log" 2>&1 &
tgt_pid=$!
wait_for_line "$peer_log" "actornvme target: ready" 90 "$tgt_pid"

start_serve_and_discover "$kato_ms"
start_rpc_probe
run_cycles "$cycles"
stop_discovery_and_check
stop_rpc_probe
echo "$me: PASS ($cycles cycles, $SECONDS s in all)"
