#!/usr/bin/env bash
# test-timeout: 600
# The seed scenario against SPDK's own target, as SPDK's test nvmf_discovery_remove_ifc runs it: nvmf_tgt in
# a network namespace this test creates, discovery on 8009 and two subsystems on 4420/4421; `actornvme serve`
# in a second namespace joined to the first by a veth pair (private addresses exist only inside these two
# namespaces), driven over its Unix socket by a generic JSON-RPC client (socat). Each cycle: the target's
# address is deleted and its link taken down; the block devices must go from exactly nvme<2c>n1 nvme<2c+1>n1
# to none after the loss timeout, with nothing left in the ownership ledger but the reconnecting discovery
# controller; then the interface is restored and exactly the next two names must appear. The cycles are in
# tests/shell/lib/seed-cycles.sh, shared with target-seed-scenario.sh (the same against our own Target).
# Before the cycles, a namespace added and removed at run time: rpc.py nvmf_subsystem_add_ns on cnode0 must
# make <controller>n2 appear in serve's bdev_get_bdevs within 10 s (SPDK's Namespace Attribute Changed AEN, no
# polling by the host), and nvmf_subsystem_remove_ns must make it disappear within 10 s; the times are printed.
# Settings: ACTORNVME_SPDK_CYCLES (default 20), ACTORNVME_SPDK_KATO_MS (default 2000). Logs in artifacts/.
# Exit: 0 passed, 1 failed, 77 skipped (no SPDK bundle at ../shared/peers/spdk, not root, or a tool missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=spdk-seed-scenario
peer_name="SPDK nvmf_tgt"
cycles=${ACTORNVME_SPDK_CYCLES:-20}
kato_ms=${ACTORNVME_SPDK_KATO_MS:-2000}
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}

# shellcheck source=lib/preflight.sh
. tests/shell/lib/preflight.sh
require_root_and_tools socat jq ip
require_spdk_bundle
require_built "$dll"

tag=s$$
work=$(mktemp -d /tmp/anvme-spdk.XXXXXX)
peer_log=$work/tgt.log
tgt_sock=$work/tgt.sock
serve_sock=$work/serve.sock
tgt_pid=
serve_pid=
logs=artifacts/spdk-seed-scenario
# shellcheck source=lib/seed-cycles.sh
. tests/shell/lib/seed-cycles.sh
cleanup() {
  stop_rpc_probe
  mkdir -p "$logs" && cp "$work"/*.log "$logs"/ 2>/dev/null || true
  [ -z "$serve_pid" ] || kill -TERM "$serve_pid" 2>/dev/null || true
  [ -z "$tgt_pid" ] || kill -INT "$tgt_pid" 2>/dev/null || true
  for pid in $serve_pid $tgt_pid; do
    wait "$pid" 2>/dev/null || true
  done
  [ -z "$tgt_pid" ] || rm -rf "/var/run/dpdk/spdk_pid$tgt_pid"
  teardown_netns_pair
  rm -rf "$work"
}
trap cleanup EXIT

spdk_rpc() { python3 "$bundle/scripts/rpc.py" -s "$tgt_sock" "$@" >/dev/null || fail "rpc.py $*"; }
outage_begin() { netns_outage_begin; }
outage_end() { netns_outage_end; }

setup_netns_pair

start_spdk_target "$tgt_sock" "$peer_log"
spdk_rpc nvmf_create_transport -t TCP
for i in 0 1; do
  spdk_rpc bdev_malloc_create 32 512 -b "Malloc$i"
  spdk_rpc nvmf_create_subsystem "nqn.2016-06.io.spdk:cnode$i" -a -s "SPDK0000000000000$((i + 1))"
  spdk_rpc nvmf_subsystem_add_ns "nqn.2016-06.io.spdk:cnode$i" "Malloc$i"
  spdk_rpc nvmf_subsystem_add_listener "nqn.2016-06.io.spdk:cnode$i" -t tcp -a "$tgt_ip" -s "442$i"
done
spdk_rpc nvmf_subsystem_add_listener discovery -t tcp -a "$tgt_ip" -s 8009

start_serve_and_discover "$kato_ms"

# wait_for_bdevs EXPECTED WHAT: bdev_get_bdevs lists exactly EXPECTED within 10 s; sets waited_ms.
wait_for_bdevs() {
  local t0 names
  t0=$(now_ms)
  while :; do
    names=$(bdevs)
    [ "$names" = "$1" ] && break
    [ $(( $(now_ms) - t0 )) -lt 10000 ] || fail "$2: bdev_get_bdevs lists '$names' 10 s later, not '$1'"
    sleep 0.05
  done
  waited_ms=$(( $(now_ms) - t0 ))
}
ns_ctrlr=$(call bdev_nvme_get_controllers | jq -r '.[] | select(.ctrlrs[0].trid.subnqn == "nqn.2016-06.io.spdk:cnode0") | .name')
[ -n "$ns_ctrlr" ] || fail "no controller for nqn.2016-06.io.spdk:cnode0 in bdev_nvme_get_controllers"
before=$(bdevs)
spdk_rpc bdev_malloc_create 16 512 -b MallocNs2
spdk_rpc nvmf_subsystem_add_ns -n 2 nqn.2016-06.io.spdk:cnode0 MallocNs2
wait_for_bdevs "$(tr ' ' '\n' <<<"$before ${ns_ctrlr}n2" | LC_ALL=C sort | paste -sd ' ')" "namespace 2 added to cnode0"
added_ms=$waited_ms
[ "$(call bdev_get_bdevs "{\"name\":\"${ns_ctrlr}n2\"}" | jq -r '.[0].num_blocks')" = 32768 ] || fail "${ns_ctrlr}n2 is not 16 MiB of 512-byte blocks"
spdk_rpc nvmf_subsystem_remove_ns nqn.2016-06.io.spdk:cnode0 2
wait_for_bdevs "$before" "namespace 2 removed from cnode0"
removed_ms=$waited_ms
spdk_rpc bdev_malloc_delete MallocNs2
echo "$me: namespace 2 added to cnode0 at run time: ${ns_ctrlr}n2 listed $(secs "$added_ms") s after nvmf_subsystem_add_ns; gone $(secs "$removed_ms") s after nvmf_subsystem_remove_ns"
start_rpc_probe
run_cycles "$cycles"
stop_discovery_and_check
stop_rpc_probe
echo "$me: PASS ($cycles cycles, $SECONDS s in all)"
