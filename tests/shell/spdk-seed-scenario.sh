#!/usr/bin/env bash
# The seed scenario against SPDK's own target, as SPDK's test nvmf_discovery_remove_ifc runs it: nvmf_tgt in
# a network namespace this test creates, discovery on 8009 and two subsystems on 4420/4421; `actornvme serve`
# in a second namespace joined to the first by a veth pair (private addresses exist only inside these two
# namespaces), driven over its Unix socket by a generic JSON-RPC client (socat). Each cycle: the target's
# address is deleted and its link taken down; the block devices must go from exactly nvme<2c>n1 nvme<2c+1>n1
# to none after the loss timeout; then the interface is restored and exactly the next two names must appear.
# The RPC is polled throughout; the slowest answer is reported (bounded generously, never tightly).
# Settings: ACTORNVME_SPDK_CYCLES (default 14, about 3 min: 20 cycles took 255 s on 2 cores under a load average
# of 13, close to test.sh's 300 s per shell test; about 12 s a cycle there, 6 s of which are the scenario's own
# timeouts), ACTORNVME_SPDK_KATO_MS (default 2000). Logs of both processes are kept in artifacts/.
# Exit: 0 passed, 1 failed, 77 skipped (no SPDK bundle at ../shared/peers/spdk, not root, or a tool missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=spdk-seed-scenario
cycles=${ACTORNVME_SPDK_CYCLES:-14}
kato_ms=${ACTORNVME_SPDK_KATO_MS:-2000}
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
slow_rpc_bound_ms=5000

if [ "$(id -u)" -ne 0 ]; then
  echo "$me: SKIP (needs root for network namespaces)"
  exit 77
fi
for tool in socat jq ip; do
  if ! command -v "$tool" >/dev/null; then
    echo "$me: SKIP ($tool is not installed; scripts/ensure-deps.sh installs it as root)"
    exit 77
  fi
done
rc=0
bundle=$(scripts/spdk-peer.sh) || rc=$?
if [ "$rc" -eq 77 ]; then
  echo "$me: SKIP (SPDK's bundle is not present at ../shared/peers/spdk)"
  exit 77
elif [ "$rc" -ne 0 ]; then
  echo "$me: FAIL (scripts/spdk-peer.sh could not make SPDK's target ready)"
  exit 1
fi
if [ ! -f "$dll" ]; then
  echo "$me: FAIL ($dll is not built; run dotnet build -c Release first)"
  exit 1
fi

tag=$$
ns_tgt=anvme-spdk-t$tag
ns_host=anvme-spdk-h$tag
if_tgt=avt$tag
if_host=avh$tag
tgt_ip=10.0.0.2
host_ip=10.0.0.1
work=$(mktemp -d /tmp/anvme-spdk.XXXXXX)
tgt_sock=$work/tgt.sock
serve_sock=$work/serve.sock
tgt_pid=
serve_pid=
logs=artifacts/spdk-seed-scenario
cleanup() {
  mkdir -p "$logs" && cp "$work"/*.log "$logs"/ 2>/dev/null || true
  [ -z "$serve_pid" ] || kill -TERM "$serve_pid" 2>/dev/null || true
  [ -z "$tgt_pid" ] || kill -INT "$tgt_pid" 2>/dev/null || true
  for pid in $serve_pid $tgt_pid; do
    wait "$pid" 2>/dev/null || true
  done
  [ -z "$tgt_pid" ] || rm -rf "/var/run/dpdk/spdk_pid$tgt_pid"
  ip netns del "$ns_tgt" 2>/dev/null || true
  ip netns del "$ns_host" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "$me: FAIL ($*)"
  echo "--- nvmf_tgt log"; tail -n 30 "$work/tgt.log" || true
  echo "--- actornvme serve log"; tail -n 80 "$work/serve.log" || true
  exit 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%02d' $(($1 / 1000)) $(( ($1 % 1000) / 10 )); }

wait_for_line() { # FILE PATTERN SECONDS [PID that must stay alive]
  local until=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $until ] || fail "'$2' did not appear in $1 within $3 s"
    [ -z "${4:-}" ] || kill -0 "$4" 2>/dev/null || fail "the process writing $1 exited before '$2'"
    sleep 0.1
  done
}

# rpc METHOD [PARAMS]: one JSON-RPC 2.0 call to actornvme serve through socat; prints the response and
# appends how long it took (ms) to $rpc_times (calls run in command substitutions, so not in a variable).
rpc_id=0
rpc_times=$work/rpc.ms
: >"$rpc_times"
rpc() {
  rpc_id=$((rpc_id + 1))
  local request="{\"jsonrpc\":\"2.0\",\"id\":$rpc_id,\"method\":\"$1\"" t0 response took
  if [ -n "${2:-}" ]; then request="$request,\"params\":$2"; fi
  request="$request}"
  t0=$(now_ms)
  response=$(printf '%s' "$request" | socat -t 60 - "UNIX-CONNECT:$serve_sock") || return 1
  took=$(( $(now_ms) - t0 ))
  echo "$took" >>"$rpc_times"
  if [ "$took" -gt "$slow_rpc_bound_ms" ]; then
    echo "$1 took $took ms (bound $slow_rpc_bound_ms ms)" >&2
    return 1
  fi
  printf '%s' "$response"
}

# slowest_since LINE: the slowest call recorded after line LINE of $rpc_times.
slowest_since() { tail -n +"$(($1 + 1))" "$rpc_times" | sort -n | tail -n 1; }
rpc_count() { wc -l <"$rpc_times"; }

call() {
  local response
  response=$(rpc "$@") || fail "$1: no answer"
  if [ "$(jq -r 'has("error")' <<<"$response")" = "true" ]; then
    fail "$1 answered $(jq -c .error <<<"$response")"
  fi
  jq -c .result <<<"$response"
}

bdevs() { call bdev_get_bdevs | jq -r '[.[].name] | sort | join(" ")'; }

spdk_rpc() { python3 "$bundle/scripts/rpc.py" -s "$tgt_sock" "$@" >/dev/null || fail "rpc.py $*"; }

# Two namespaces and a veth pair between them; nothing is addressed in the root namespace.
ip netns add "$ns_tgt"
ip netns add "$ns_host"
ip link add "$if_host" type veth peer name "$if_tgt"
ip link set "$if_tgt" netns "$ns_tgt"
ip link set "$if_host" netns "$ns_host"
ip -n "$ns_tgt" addr add "$tgt_ip/24" dev "$if_tgt"
ip -n "$ns_host" addr add "$host_ip/24" dev "$if_host"
for ns in "$ns_tgt" "$ns_host"; do ip -n "$ns" link set lo up; done
ip -n "$ns_tgt" link set "$if_tgt" up
ip -n "$ns_host" link set "$if_host" up

# SPDK's target, without hugepages, on core 0; without the core lock, so another SPDK process on this
# machine (another test) does not keep it from starting.
ip netns exec "$ns_tgt" "$bundle/build/bin/nvmf_tgt" -m 0x1 --no-huge -s 1024 --disable-cpumask-locks -r "$tgt_sock" >"$work/tgt.log" 2>&1 &
tgt_pid=$!
wait_for_line "$work/tgt.log" "Reactor started on core 0" 60 "$tgt_pid"
until [ -S "$tgt_sock" ]; do sleep 0.1; done
spdk_rpc nvmf_create_transport -t TCP
for i in 0 1; do
  spdk_rpc bdev_malloc_create 32 512 -b "Malloc$i"
  spdk_rpc nvmf_create_subsystem "nqn.2016-06.io.spdk:cnode$i" -a -s "SPDK0000000000000$((i + 1))"
  spdk_rpc nvmf_subsystem_add_ns "nqn.2016-06.io.spdk:cnode$i" "Malloc$i"
  spdk_rpc nvmf_subsystem_add_listener "nqn.2016-06.io.spdk:cnode$i" -t tcp -a "$tgt_ip" -s "442$i"
done
spdk_rpc nvmf_subsystem_add_listener discovery -t tcp -a "$tgt_ip" -s 8009

# actornvme serve in the host namespace, started as SPDK's host is in the scenario.
ip netns exec "$ns_host" dotnet "$dll" serve -r "$serve_sock" --wait-for-rpc >"$work/serve.log" 2>&1 &
serve_pid=$!
wait_for_line "$work/serve.log" "JSON-RPC server listening" 90 "$serve_pid"
call bdev_nvme_set_options "{\"keep_alive_timeout_ms\":$kato_ms,\"transport_retry_count\":4,\"bdev_retry_count\":-1}" >/dev/null
call framework_start_init >/dev/null
call framework_wait_init >/dev/null

t0=$(now_ms)
started=$(call bdev_nvme_start_discovery "{\"name\":\"nvme\",\"trtype\":\"tcp\",\"traddr\":\"$tgt_ip\",\"adrfam\":\"ipv4\",\"trsvcid\":\"8009\",\"wait_for_attach\":true,\"ctrlr_loss_timeout_sec\":2,\"reconnect_delay_sec\":1,\"fast_io_fail_timeout_sec\":1}")
attach_ms=$(( $(now_ms) - t0 ))
[ "$started" = "true" ] || fail "bdev_nvme_start_discovery answered $started"
[ "$(bdevs)" = "nvme0n1 nvme1n1" ] || fail "expected nvme0n1 nvme1n1 after discovery, bdev_get_bdevs lists '$(bdevs)'"
# SPDK lists its discovery subsystem too (SUBTYPE 3): another address of the same discovery controller,
# never a referral, so one discovery service with no referral and nothing else attached.
info=$(call bdev_nvme_get_discovery_info)
[ "$(jq 'length' <<<"$info")" = 1 ] || fail "expected one discovery service, bdev_nvme_get_discovery_info: $info"
[ "$(jq '[.[].referrals[]] | length' <<<"$info")" = 0 ] || fail "a referral was followed: $info"
[ "$(jq -r '.[0].actornvme.controllers | sort | join(" ")' <<<"$info")" = "nvme0 nvme1" ] || fail "expected controllers nvme0 nvme1: $info"
echo "$me: discovery log: $(jq -r '.[0].actornvme | "\(.entries | length) NVM entries, \(.alternate_addresses | length) of this discovery subsystem (SUBTYPE 3), \(.skipped | length) skipped"' <<<"$info")"
echo "$me: SPDK nvmf_tgt at $tgt_ip (discovery 8009, cnode0 4420, cnode1 4421); attached nvme0n1 nvme1n1 in $(secs $attach_ms) s; keep-alive-timeout $kato_ms ms, ctrlr_loss_timeout 2 s, reconnect_delay 1 s"

max_loss=0; max_gone=0; max_back=0; sum_loss=0; sum_gone=0; sum_back=0; outage_slowest=0
for ((c = 0; c < cycles; c++)); do
  expected="nvme$((2 * c))n1 nvme$((2 * c + 1))n1"
  next="nvme$((2 * c + 2))n1 nvme$((2 * c + 3))n1"
  [ "$(bdevs)" = "$expected" ] || fail "cycle $c: expected '$expected' before the outage, bdev_get_bdevs lists '$(bdevs)'"

  mark=$(rpc_count)
  ip -n "$ns_tgt" addr del "$tgt_ip/24" dev "$if_tgt"
  ip -n "$ns_tgt" link set "$if_tgt" down
  outage=$(now_ms)
  outage_clock=$(date +%T.%3N)
  loss=; gone=
  while [ -z "$gone" ]; do
    elapsed=$(( $(now_ms) - outage ))
    [ "$elapsed" -lt 30000 ] || fail "cycle $c: devices still listed 30 s after the address was deleted: '$(bdevs)'"
    if [ -z "$loss" ]; then
      states=$(call bdev_nvme_get_controllers | jq -r '[.[].ctrlrs[].state] | join(" ")')
      [ "$states" = "enabled enabled" ] || loss=$(( $(now_ms) - outage ))
    fi
    names=$(bdevs)
    if [ -z "$names" ]; then
      gone=$(( $(now_ms) - outage ))
      [ -n "$loss" ] || loss=$gone
    elif [ "$names" != "$expected" ] && [ "$names" != "${expected% *}" ] && [ "$names" != "${expected#* }" ]; then
      fail "cycle $c: during the outage bdev_get_bdevs lists '$names'"
    fi
    sleep 0.05
  done
  # A little more of the outage with the discovery controller reconnecting: still none, still answering.
  for _ in 1 2 3 4 5; do
    [ -z "$(bdevs)" ] || fail "cycle $c: a device came back while the interface was down: '$(bdevs)'"
    call bdev_nvme_get_discovery_info >/dev/null
    sleep 0.1
  done
  slowest_ms=$(slowest_since "$mark")
  slowest_ms=${slowest_ms:-0}
  [ "$slowest_ms" -le "$outage_slowest" ] || outage_slowest=$slowest_ms

  ip -n "$ns_tgt" addr add "$tgt_ip/24" dev "$if_tgt"
  ip -n "$ns_tgt" link set "$if_tgt" up
  restore=$(now_ms)
  while :; do
    names=$(bdevs)
    [ "$names" = "$next" ] && break
    [ -z "$names" ] || [ "$names" = "${next% *}" ] || [ "$names" = "${next#* }" ] || fail "cycle $c: after the restore bdev_get_bdevs lists '$names', not '$next'"
    [ $(( $(now_ms) - restore )) -lt 30000 ] || fail "cycle $c: '$next' not listed 30 s after the restore (lists '$names')"
    sleep 0.05
  done
  back=$(( $(now_ms) - restore ))
  states=$(call bdev_nvme_get_controllers | jq -r '[.[].ctrlrs[].state] | join(" ")')
  [ "$states" = "enabled enabled" ] || fail "cycle $c: controllers after the restore are '$states'"

  echo "$me: cycle $((c + 1))/$cycles (address deleted at $outage_clock): loss detected $(secs "$loss") s, devices removed $(secs "$gone") s after the address was deleted; $next attached $(secs "$back") s after the restore; slowest RPC in the outage $slowest_ms ms"
  sum_loss=$((sum_loss + loss)); sum_gone=$((sum_gone + gone)); sum_back=$((sum_back + back))
  [ "$loss" -le "$max_loss" ] || max_loss=$loss
  [ "$gone" -le "$max_gone" ] || max_gone=$gone
  [ "$back" -le "$max_back" ] || max_back=$back
done

call bdev_nvme_stop_discovery '{"name":"nvme"}' >/dev/null
[ -z "$(bdevs)" ] || fail "devices left after bdev_nvme_stop_discovery: '$(bdevs)'"
if [ "$cycles" -gt 0 ]; then
  echo "$me: over $cycles cycles (mean / max): address deleted -> loss detected $(secs $((sum_loss / cycles))) / $(secs "$max_loss") s; -> devices removed $(secs $((sum_gone / cycles))) / $(secs "$max_gone") s; interface back -> re-attached $(secs $((sum_back / cycles))) / $(secs "$max_back") s; attach $(secs "$attach_ms") s; slowest RPC during the outages $outage_slowest ms, of all $(sort -n "$rpc_times" | tail -n 1) ms ($(rpc_count) calls, each a new socat process)"
fi
echo "$me: PASS ($cycles cycles, $SECONDS s in all)"
