#!/usr/bin/env bash
# test-timeout: 720
# Multipath chaos against SPDK's nvmf_tgt: one subsystem (ANA reporting on) with two listeners, 4420 and
# 4421, in a network namespace this test creates; `actornvme soak` in a second namespace joined by a veth
# pair runs 16 writers doing write-then-verify over both paths (active_passive) while this script breaks one
# path at a time every 0.5-3 s: its ANA state flipped to inaccessible (and back to optimized), or its
# listener removed (and added again). Passes when no acknowledged write was lost and every read was right;
# prints the I/O stalls (failover times) as p50/p99 next to the number of faults.
# Settings: ACTORNVME_SOAK_SECONDS (default 300), ACTORNVME_SOAK_KATO_MS (default 2000), ACTORNVME_SOAK_FAULTS
# (default 1; 0 runs the same load with no fault, as a baseline), ACTORNVME_SOAK_ARGS (more soak options). Logs in artifacts/.
# Exit: 0 passed, 1 failed, 77 skipped (no SPDK bundle at ../shared/peers/spdk, not root, or a tool missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=spdk-multipath-soak
peer_name="SPDK nvmf_tgt"
seconds=${ACTORNVME_SOAK_SECONDS:-300}
with_faults=${ACTORNVME_SOAK_FAULTS:-1}
kato_ms=${ACTORNVME_SOAK_KATO_MS:-2000}
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
nqn=nqn.2016-06.io.spdk:soak

# shellcheck source=lib/preflight.sh
. tests/shell/lib/preflight.sh
require_root_and_tools jq ip
require_spdk_bundle
require_built "$dll"

tag=m$$
work=$(mktemp -d /tmp/anvme-soak.XXXXXX)
peer_log=$work/tgt.log
tgt_sock=$work/tgt.sock
serve_sock=$work/unused.sock
tgt_pid=
soak_pid=
logs=artifacts/spdk-multipath-soak
# shellcheck source=lib/seed-cycles.sh
. tests/shell/lib/seed-cycles.sh
cleanup() {
  mkdir -p "$logs" && cp "$work"/*.log "$logs"/ 2>/dev/null || true
  [ -z "$soak_pid" ] || kill -TERM "$soak_pid" 2>/dev/null || true
  [ -z "$tgt_pid" ] || kill -INT "$tgt_pid" 2>/dev/null || true
  for pid in $soak_pid $tgt_pid; do
    wait "$pid" 2>/dev/null || true
  done
  [ -z "$tgt_pid" ] || rm -rf "/var/run/dpdk/spdk_pid$tgt_pid"
  teardown_netns_pair
  rm -rf "$work"
}
trap cleanup EXIT

spdk_rpc() { python3 "$bundle/scripts/rpc.py" -s "$tgt_sock" "$@" >/dev/null || fail "rpc.py $*"; }
ms_between() { awk -v lo="$1" -v hi="$2" 'BEGIN { srand(); printf "%.3f\n", (lo + rand() * (hi - lo)) / 1000 }'; }

setup_netns_pair
start_spdk_target "$tgt_sock" "$peer_log"
spdk_rpc nvmf_create_transport -t TCP
spdk_rpc bdev_malloc_create 32 512 -b Malloc0
spdk_rpc nvmf_create_subsystem "$nqn" -a -r -s SPDK00000000000009
spdk_rpc nvmf_subsystem_add_ns "$nqn" Malloc0
for port in 4420 4421; do
  spdk_rpc nvmf_subsystem_add_listener "$nqn" -t tcp -a "$tgt_ip" -s "$port"
done

ip netns exec "$ns_host" dotnet "$dll" soak -p "$tgt_ip:4420" -p "$tgt_ip:4421" -n "$nqn" -t "$seconds" -w 16 -b 64 -r 4 -k "$kato_ms" ${ACTORNVME_SOAK_ARGS:--c 30} --json >"$work/soak.log" 2>&1 &
soak_pid=$!
wait_for_line "$work/soak.log" "^soak: " 90 "$soak_pid"
echo "$me: $(grep -m1 '^soak: ' "$work/soak.log")"

# One path broken at a time, then restored; the other path always whole.
faults=0; ana_flips=0; listener_drops=0
: >"$work/faults.log"
while kill -0 "$soak_pid" 2>/dev/null; do
  sleep "$(ms_between 500 3000)"
  kill -0 "$soak_pid" 2>/dev/null || break
  [ "$with_faults" = 1 ] || continue
  port=$((4420 + RANDOM % 2))
  at=$(now_ms)
  if [ $((RANDOM % 2)) -eq 0 ]; then
    spdk_rpc nvmf_subsystem_listener_set_ana_state "$nqn" -t tcp -a "$tgt_ip" -s "$port" -n inaccessible
    echo "$at ana-inaccessible $port" >>"$work/faults.log"
    sleep "$(ms_between 1000 3000)"
    spdk_rpc nvmf_subsystem_listener_set_ana_state "$nqn" -t tcp -a "$tgt_ip" -s "$port" -n optimized
    ana_flips=$((ana_flips + 1))
  else
    spdk_rpc nvmf_subsystem_remove_listener "$nqn" -t tcp -a "$tgt_ip" -s "$port"
    echo "$at listener-removed $port" >>"$work/faults.log"
    sleep "$(ms_between 1000 3000)"
    spdk_rpc nvmf_subsystem_add_listener "$nqn" -t tcp -a "$tgt_ip" -s "$port"
    listener_drops=$((listener_drops + 1))
  fi
  faults=$((faults + 1))
done
soak_rc=0
wait "$soak_pid" || soak_rc=$?
soak_pid=
grep '^soak: checkpoint' "$work/soak.log" | tail -n 3 | sed "s/^/$me: /" || true
summary=$(grep '^{' "$work/soak.log" | tail -n 1)
[ -n "$summary" ] || fail "actornvme soak printed no summary (exit $soak_rc): $(tail -n 20 "$work/soak.log")"
lost=$(jq -r .lost_acknowledged_writes <<<"$summary")
bad=$(jq -r .bad_reads <<<"$summary")
writes=$(jq -r .writes <<<"$summary")
echo "$me: $faults faults in $seconds s ($ana_flips ANA flips to inaccessible and back, $listener_drops listeners removed and added again)"
echo "$me: $(jq -r '"\(.writes) writes, \(.reads) reads, \(.write_errors) write errors, \(.read_errors) read errors; \(.lost_acknowledged_writes) lost acknowledged writes, \(.bad_reads) bad reads; \(.stall_count) I/O stalls over \(.stalls_over_ms) ms: p50 \(.stall_p50_ms) ms, p99 \(.stall_p99_ms) ms, max \(.stall_max_ms) ms"' <<<"$summary")"
echo "$me: commands the target refused with an ANA state (on a path it would not serve; the host stops using such a path once it knows): $(jq -r .ana_refusals <<<"$summary")"
echo "$me: readers (no write gates them): $(jq -r '"\(.reader_reads) reads, \(.reader_errors) errors; \(.read_stall_count) read gaps over \(.stalls_over_ms) ms (path loss to the first read done elsewhere): p50 \(.read_stall_p50_ms) ms, p99 \(.read_stall_p99_ms) ms, max \(.read_stall_max_ms) ms"' <<<"$summary")"
[ "$lost" = 0 ] || fail "$lost acknowledged writes lost: $(jq -c '.problems[:5]' <<<"$summary")"
[ "$bad" = 0 ] || fail "$bad bad reads: $(jq -c '.problems[:5]' <<<"$summary")"
[ "$writes" -gt 0 ] || fail "no write completed"
[ "$soak_rc" -eq 0 ] || fail "actornvme soak exited $soak_rc"
echo "$me: PASS ($SECONDS s in all)"
