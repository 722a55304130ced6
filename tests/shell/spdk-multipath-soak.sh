#!/usr/bin/env bash
# test-timeout: 720
# Multipath chaos against SPDK's nvmf_tgt: one subsystem (ANA reporting on) with two listeners, 4420 and
# 4421, in a network namespace this test creates; `actornvme soak` in a second namespace joined by a veth
# pair runs 16 writers doing write-then-verify over both paths (active_passive) while this script breaks one
# path at a time every 0.5-3 s: its ANA state flipped to inaccessible (and back to optimized), or its
# listener removed (and added again). Then, with both paths optimized and no fault, a short soak under
# active_active round_robin. Passes when no acknowledged write was lost, every read was right, the commands
# the target refused with an ANA state stay within what can be in flight when ANA states change, reads
# resumed on the other path within 1 s of every path loss (failover time p50/p99/max printed), and round
# robin spread the commands over the two paths within 10% (tests/shell/lib/soak-checks.sh says why).
# nvmf_tgt counts nothing per listener (nvmf_get_stats counts per poll group, and there is one), so the ANA
# refusals are the target's answers as the host counted them.
# Settings: ACTORNVME_SOAK_SECONDS (default 300), ACTORNVME_SOAK_SPREAD_SECONDS (default 10),
# ACTORNVME_SOAK_KATO_MS (default 2000), ACTORNVME_SOAK_FAULTS (default 1; 0 runs the same load with no
# fault, as a baseline), ACTORNVME_SOAK_ARGS (more soak options). Logs in artifacts/.
# Exit: 0 passed, 1 failed, 77 skipped (no SPDK bundle at ../shared/peers/spdk, not root, or a tool missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=spdk-multipath-soak
peer_name="SPDK nvmf_tgt"
seconds=${ACTORNVME_SOAK_SECONDS:-300}
spread_seconds=${ACTORNVME_SOAK_SPREAD_SECONDS:-10}
writers=16
readers=4
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
# shellcheck source=lib/soak-checks.sh
. tests/shell/lib/soak-checks.sh
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

ip netns exec "$ns_host" dotnet "$dll" soak -p "$tgt_ip:4420" -p "$tgt_ip:4421" -n "$nqn" -t "$seconds" -w "$writers" -b 64 -r "$readers" -k "$kato_ms" ${ACTORNVME_SOAK_ARGS:--c 30} --json >"$work/soak.log" 2>&1 &
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
echo "$me: $faults faults in $seconds s ($ana_flips ANA flips to inaccessible and back, $listener_drops listeners removed and added again)"
soak_check_chaos "$summary" "$ana_flips" $((writers + readers)) "$kato_ms"
[ "$with_faults" = 0 ] || [ "$faults" -gt 0 ] || fail "no fault was injected"
[ "$soak_rc" -eq 0 ] || fail "actornvme soak exited $soak_rc"

# Both listeners are back and optimized (every fault above was undone before the loop ended).
rc=0
ip netns exec "$ns_host" dotnet "$dll" soak -p "$tgt_ip:4420" -p "$tgt_ip:4421" -n "$nqn" -t "$spread_seconds" -w "$writers" -b 64 -r "$readers" -k "$kato_ms" --policy active_active --json >"$work/spread.log" 2>&1 || rc=$?
spread=$(grep '^{' "$work/spread.log" | tail -n 1)
[ -n "$spread" ] || fail "the active_active soak printed no summary (exit $rc): $(tail -n 20 "$work/spread.log")"
soak_check_spread "$spread"
[ "$rc" -eq 0 ] || fail "the active_active soak exited $rc"
echo "$me: PASS ($SECONDS s in all)"
