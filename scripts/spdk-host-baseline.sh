#!/usr/bin/env bash
# Measures SPDK's own host (bdev_nvme in a second SPDK app) in the steps tests/shell/spdk-seed-scenario.sh
# drives ActorNvme through, with the same settings, so the two can be compared: SPDK's nvmf_tgt in one network
# namespace, SPDK's host in another, a veth pair between them; discovery with wait_for_attach; then per cycle
# the target's address deleted and link taken down, and restored. Prints attach time, address deleted -> loss
# detected (a controller not "enabled"), -> block devices removed, interface back -> two devices again, and
# the slowest RPC during the outage: each call a new rpc.py process, and on one connection (`actornvme rpc
# --every 20 bdev_get_bdevs`, as the seed-scenario tests watch our host). Not a test: it asserts nothing.
# Settings: ACTORNVME_SPDK_CYCLES (default 3), ACTORNVME_SPDK_KATO_MS (default 2000). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

me=spdk-host-baseline
cycles=${ACTORNVME_SPDK_CYCLES:-3}
kato_ms=${ACTORNVME_SPDK_KATO_MS:-2000}
[ "$(id -u)" -eq 0 ] || { echo "$me: needs root (network namespaces)" >&2; exit 77; }
bundle=$(scripts/spdk-peer.sh)

tag=$$
ns_tgt=anvme-spdkb-t$tag
ns_host=anvme-spdkb-h$tag
if_tgt=abt$tag
if_host=abh$tag
tgt_ip=10.0.0.2
work=$(mktemp -d /tmp/anvme-spdkb.XXXXXX)
pids=()
cleanup() {
  [ -z "${probe_pid:-}" ] || { kill -TERM "$probe_pid" 2>/dev/null; wait "$probe_pid" 2>/dev/null; } || true
  for pid in "${pids[@]}"; do kill -INT "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; rm -rf "/var/run/dpdk/spdk_pid$pid"; done
  ip netns del "$ns_tgt" 2>/dev/null || true
  ip netns del "$ns_host" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%02d' $(($1 / 1000)) $(( ($1 % 1000) / 10 )); }
rpc_t() { python3 "$bundle/scripts/rpc.py" -s "$work/tgt.sock" "$@" >/dev/null; }
slowest=0
rpc_h() { # timed; prints the answer
  local t0 out took
  t0=$(now_ms)
  out=$(python3 "$bundle/scripts/rpc.py" -s "$work/host.sock" -t 60 "$@")
  took=$(( $(now_ms) - t0 ))
  echo "$took" >>"$work/rpc.ms"
  printf '%s' "$out"
}
bdevs() { rpc_h bdev_get_bdevs | jq -r '[.[].name] | sort | join(" ")'; }
app() { # NAMESPACE CORE-MASK SOCKET LOG [--wait-for-rpc]
  # Zero-copy sends off, as in tests/shell/lib/seed-cycles.sh: across a veth pair they delay answers by ~45 ms.
  ip netns exec "$1" "$bundle/build/bin/nvmf_tgt" -m "$2" --no-huge -s 1024 --disable-cpumask-locks --wait-for-rpc -r "$3" >"$4" 2>&1 &
  pids+=($!)
  until [ -S "$3" ]; do sleep 0.1; kill -0 "${pids[-1]}" || { cat "$4"; exit 1; }; done
  python3 "$bundle/scripts/rpc.py" -s "$3" sock_impl_set_options -i posix --no-zerocopy-send-server >/dev/null
  [ "${5:-}" = --wait-for-rpc ] || python3 "$bundle/scripts/rpc.py" -s "$3" framework_start_init >/dev/null
}

ip netns add "$ns_tgt"; ip netns add "$ns_host"
ip link add "$if_host" type veth peer name "$if_tgt"
ip link set "$if_tgt" netns "$ns_tgt"; ip link set "$if_host" netns "$ns_host"
ip -n "$ns_tgt" addr add "$tgt_ip/24" dev "$if_tgt"; ip -n "$ns_host" addr add 10.0.0.1/24 dev "$if_host"
for ns in "$ns_tgt" "$ns_host"; do ip -n "$ns" link set lo up; done
ip -n "$ns_tgt" link set "$if_tgt" up; ip -n "$ns_host" link set "$if_host" up

app "$ns_tgt" 0x1 "$work/tgt.sock" "$work/tgt.log"
rpc_t nvmf_create_transport -t TCP
for i in 0 1; do
  rpc_t bdev_malloc_create 32 512 -b "Malloc$i"
  rpc_t nvmf_create_subsystem "nqn.2016-06.io.spdk:cnode$i" -a -s "SPDK0000000000000$((i + 1))"
  rpc_t nvmf_subsystem_add_ns "nqn.2016-06.io.spdk:cnode$i" "Malloc$i"
  rpc_t nvmf_subsystem_add_listener "nqn.2016-06.io.spdk:cnode$i" -t tcp -a "$tgt_ip" -s "442$i"
done
rpc_t nvmf_subsystem_add_listener discovery -t tcp -a "$tgt_ip" -s 8009

app "$ns_host" 0x2 "$work/host.sock" "$work/host.log" --wait-for-rpc
rpc_h bdev_nvme_set_options -e 1 --keep-alive-timeout-ms "$kato_ms" >/dev/null
rpc_h framework_start_init >/dev/null
t0=$(now_ms)
rpc_h bdev_nvme_start_discovery -b nvme -t tcp -a "$tgt_ip" -s 8009 -f ipv4 -q nqn.2021-12.io.spdk:test \
  --ctrlr-loss-timeout-sec 2 --reconnect-delay-sec 1 --fast-io-fail-timeout-sec 1 --wait-for-attach >/dev/null
attach=$(( $(now_ms) - t0 ))
echo "$me: SPDK host attached '$(bdevs)' in $(secs $attach) s (keep-alive-timeout $kato_ms ms, ctrlr-loss-timeout 2 s, reconnect-delay 1 s)"
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
probe_pid=
if [ -f "$dll" ]; then
  dotnet "$dll" rpc -s "$work/host.sock" -t 60 --every 20 bdev_get_bdevs >"$work/probe.log" 2>&1 &
  probe_pid=$!
fi
probe_slowest() { [ -n "$probe_pid" ] && awk -v from="$1" -v to="$2" '$1 >= from && $1 <= to { if ($2 > m) m = $2 } END { printf "%d\n", m + 0.999 }' "$work/probe.log" || echo "-"; }

for ((c = 0; c < cycles; c++)); do
  : >"$work/rpc.ms"
  ip -n "$ns_tgt" addr del "$tgt_ip/24" dev "$if_tgt"; ip -n "$ns_tgt" link set "$if_tgt" down
  outage=$(now_ms); loss=; gone=
  while [ -z "$gone" ]; do
    if [ -z "$loss" ]; then
      states=$(rpc_h bdev_nvme_get_controllers | jq -r '[.[].ctrlrs[].state] | join(" ")')
      [ "$states" = "enabled enabled" ] || loss=$(( $(now_ms) - outage ))
    fi
    [ -n "$(bdevs)" ] || { gone=$(( $(now_ms) - outage )); [ -n "$loss" ] || loss=$gone; }
    [ $(( $(now_ms) - outage )) -lt 60000 ] || { echo "$me: devices still there after 60 s"; gone=-1; }
  done
  slow=$(sort -n "$work/rpc.ms" | tail -n 1)
  ip -n "$ns_tgt" addr add "$tgt_ip/24" dev "$if_tgt"; ip -n "$ns_tgt" link set "$if_tgt" up
  restore=$(now_ms)
  until [ "$(bdevs | wc -w)" -eq 2 ]; do
    [ $(( $(now_ms) - restore )) -lt 60000 ] || { echo "$me: not back 60 s after the restore"; break; }
  done
  back=$(( $(now_ms) - restore ))
  echo "$me: cycle $((c + 1)): loss detected $(secs "$loss") s, devices removed $(secs "$gone") s, re-attached $(secs "$back") s ('$(bdevs)'), slowest RPC in the outage $slow ms (rpc.py), $(probe_slowest "$outage" "$(now_ms)") ms (one connection, whole cycle)"
done
