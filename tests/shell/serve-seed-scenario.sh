#!/usr/bin/env bash
# The seed scenario (SPDK's nvmf_discovery_remove_ifc) through `actornvme serve`, driven over its Unix
# socket by a generic JSON-RPC client (socat), against `actornvme target` running as another process:
# start discovery (wait for attach), see nvme0n1 in bdev_get_bdevs, blackhole every listener through the
# target's own socket, see nvme0n1 gone after the loss timeout, restore, see nvme1n1. Polls
# bdev_get_bdevs every ~100 ms and prints the slowest answer seen during the outage.
# Exit: 0 passed, 1 failed, 77 skipped (socat or jq missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
for tool in socat jq; do
  if ! command -v "$tool" >/dev/null; then
    echo "serve-seed-scenario: SKIP ($tool is not installed; scripts/ensure-deps.sh installs it as root)"
    exit 77
  fi
done
if [ ! -f "$dll" ]; then
  echo "serve-seed-scenario: FAIL ($dll is not built; run dotnet build -c Release first)"
  exit 1
fi

work=$(mktemp -d /tmp/anvme-shell.XXXXXX)
target_sock=$work/target.sock
serve_sock=$work/serve.sock
target_pid=
serve_pid=
cleanup() {
  for pid in $serve_pid $target_pid; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in $serve_pid $target_pid; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "serve-seed-scenario: FAIL ($*)"
  echo "--- actornvme target log"; tail -n 40 "$work/target.log" || true
  echo "--- actornvme serve log"; tail -n 80 "$work/serve.log" || true
  exit 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# rpc SOCKET METHOD [PARAMS]: one JSON-RPC 2.0 call through socat; prints the whole response.
rpc_id=0
rpc() {
  rpc_id=$((rpc_id + 1))
  local request="{\"jsonrpc\":\"2.0\",\"id\":$rpc_id,\"method\":\"$2\""
  if [ -n "${3:-}" ]; then request="$request,\"params\":$3"; fi
  request="$request}"
  printf '%s' "$request" | socat -t 60 - "UNIX-CONNECT:$1"
}

# call SOCKET METHOD [PARAMS]: the result, or fail with the error.
call() {
  local response
  response=$(rpc "$@") || fail "$2: no answer from $1"
  if [ "$(jq -r 'has("error")' <<<"$response")" = "true" ]; then
    fail "$2 answered $(jq -c .error <<<"$response")"
  fi
  jq -c .result <<<"$response"
}

wait_for_line() { # FILE PATTERN SECONDS
  local until=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $until ] || fail "'$2' did not appear in $1 within $3 s"
    sleep 0.1
  done
}

# The target, on free ports: discovery and one NVM subsystem with a 16 MiB RAM namespace.
dotnet "$dll" target -a 127.0.0.1 -d 0 -p 0 --size-mib 16 -r "$target_sock" >"$work/target.log" 2>&1 &
target_pid=$!
wait_for_line "$work/target.log" "actornvme target: ready" 60
discovery_port=$(sed -n 's/^actornvme target: discovery tcp 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/target.log")
[ -n "$discovery_port" ] || fail "no discovery port in the target's output"

# The daemon, started as SPDK's host is in the scenario: --wait-for-rpc, options, then framework_start_init.
dotnet "$dll" serve -r "$serve_sock" --wait-for-rpc >"$work/serve.log" 2>&1 &
serve_pid=$!
wait_for_line "$work/serve.log" "JSON-RPC server listening" 60
call "$serve_sock" bdev_nvme_set_options '{"keep_alive_timeout_ms":2000,"transport_retry_count":4,"bdev_retry_count":-1}' >/dev/null
call "$serve_sock" framework_start_init >/dev/null
call "$serve_sock" framework_wait_init >/dev/null

echo "serve-seed-scenario: target discovery on 127.0.0.1:$discovery_port; serve on $serve_sock"
started=$(call "$serve_sock" bdev_nvme_start_discovery "{\"name\":\"nvme\",\"trtype\":\"tcp\",\"traddr\":\"127.0.0.1\",\"adrfam\":\"ipv4\",\"trsvcid\":\"$discovery_port\",\"wait_for_attach\":true,\"ctrlr_loss_timeout_sec\":2,\"reconnect_delay_sec\":1,\"fast_io_fail_timeout_sec\":1}")
[ "$started" = "true" ] || fail "bdev_nvme_start_discovery answered $started"
bdevs=$(call "$serve_sock" bdev_get_bdevs | jq -r '[.[].name] | join(",")')
[ "$bdevs" = "nvme0n1" ] || fail "expected nvme0n1 after discovery, bdev_get_bdevs lists '$bdevs'"
echo "serve-seed-scenario: nvme0n1 attached"

# Remove the interface: every listener of the target blackholed (no FIN, no RST).
call "$target_sock" target_blackhole >/dev/null
outage_start=$(now_ms)
slowest=0
calls=0
gone_after=
while :; do
  t0=$(now_ms)
  response=$(rpc "$serve_sock" bdev_get_bdevs) || fail "bdev_get_bdevs: no answer during the outage"
  elapsed=$(( $(now_ms) - t0 ))
  calls=$((calls + 1))
  [ "$elapsed" -gt "$slowest" ] && slowest=$elapsed
  names=$(jq -r '[.result[].name] | join(",")' <<<"$response")
  if [ -z "$names" ]; then
    gone_after=$(( $(now_ms) - outage_start ))
    break
  fi
  [ $(( $(now_ms) - outage_start )) -lt 30000 ] || fail "nvme0n1 still listed 30 s after the blackhole"
  sleep 0.1
done
echo "serve-seed-scenario: nvme0n1 gone $((gone_after / 1000)).$(( (gone_after % 1000) / 100 )) s after the blackhole (ctrlr_loss_timeout_sec 2)"

# A little more of the outage: the host keeps answering while its discovery controller reconnects.
for _ in 1 2 3 4 5 6 7 8 9 10; do
  t0=$(now_ms)
  rpc "$serve_sock" bdev_nvme_get_controllers >/dev/null || fail "bdev_nvme_get_controllers: no answer during the outage"
  elapsed=$(( $(now_ms) - t0 ))
  calls=$((calls + 1))
  [ "$elapsed" -gt "$slowest" ] && slowest=$elapsed
  sleep 0.1
done

call "$target_sock" target_restore >/dev/null
restore_start=$(now_ms)
while :; do
  names=$(call "$serve_sock" bdev_get_bdevs | jq -r '[.[].name] | join(",")')
  [ "$names" = "nvme1n1" ] && break
  [ -z "$names" ] || fail "after the restore bdev_get_bdevs lists '$names', not nvme1n1"
  [ $(( $(now_ms) - restore_start )) -lt 30000 ] || fail "nvme1n1 not listed 30 s after the restore"
  sleep 0.1
done
back_after=$(( $(now_ms) - restore_start ))
state=$(call "$serve_sock" bdev_nvme_get_controllers '{"name":"nvme1"}' | jq -r '.[0].ctrlrs[0].state')
[ "$state" = "enabled" ] || fail "nvme1's controller is '$state', not enabled"
echo "serve-seed-scenario: nvme1n1 attached $((back_after / 1000)).$(( (back_after % 1000) / 100 )) s after the restore (controller nvme1 enabled)"

call "$serve_sock" bdev_nvme_stop_discovery '{"name":"nvme"}' >/dev/null
echo "serve-seed-scenario: slowest RPC answer during the outage: ${slowest} ms over ${calls} calls (each a new socat process and connection)"
echo "serve-seed-scenario: PASS"
