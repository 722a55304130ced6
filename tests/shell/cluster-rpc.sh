#!/usr/bin/env bash
# test-timeout: 240
# SPDK's own rpc.py against two `actornvme serve --cluster` nodes (127.0.0.1, one SQLite store) and an
# `actornvme target` process: a controller attached through node A's socket is listed from node B with its
# owner; the same name again is -17 from node B; a discovery started through node B is read by the
# cluster, listed from node A with the node reading it and each entry's owner, and stopped from node A; the
# controller is detached through node B and gone from node A's list.
# Log in artifacts/cluster-rpc/. Exit: 0 passed, 1 failed, 77 skipped (no SPDK bundle, python3 or jq).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=cluster-rpc
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
# shellcheck source=lib/preflight.sh
. tests/shell/lib/preflight.sh
require_built "$dll"
for tool in python3 jq; do
  if ! command -v "$tool" >/dev/null; then
    echo "$me: SKIP ($tool is not installed)"
    exit 77
  fi
done

logs=artifacts/cluster-rpc
mkdir -p "$logs"
work=$(mktemp -d "${TMPDIR:-/tmp}/anvme-cluster-rpc.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  cp "$work"/*.log "$logs/" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# rpc.py needs only python3 and the bundle's python package (as spdk-rpcpy-compat.sh finds them).
bundle=
set +e
bundle=$(scripts/spdk-peer.sh 2>/dev/null)
peer_rc=$?
set -e
if [ "$peer_rc" -eq 77 ]; then
  echo "$me: SKIP (no SPDK bundle in ${ACTORNVME_SPDK_PEER:-../shared/peers/spdk})"
  exit 77
fi
if [ "$peer_rc" -ne 0 ] || [ ! -f "$bundle/scripts/rpc.py" ]; then
  tarball=$(ls "${ACTORNVME_SPDK_PEER:-../shared/peers/spdk}"/spdk-*-nvmf-x86_64.tar.xz 2>/dev/null | sort | tail -n 1 || true)
  [ -n "$tarball" ] || { echo "$me: SKIP (no SPDK bundle)"; exit 77; }
  tar -xJf "$tarball" -C "$work" --wildcards '*/scripts/rpc.py' '*/python/*'
  bundle=$(dirname "$(dirname "$(ls "$work"/*/scripts/rpc.py | head -n 1)")")
fi
rpcpy="$bundle/scripts/rpc.py"

fail() {
  echo "$me: FAIL ($*)"
  for f in target node-a node-b; do
    echo "--- $f"; tail -n 40 "$work/$f.log" || true
  done
  exit 1
}

wait_for_line() { # FILE PATTERN SECONDS
  local until=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $until ] || fail "'$2' did not appear in $1 within $3 s"
    sleep 0.2
  done
}

# ok SOCKET ARGS...: rpc.py must succeed; prints its output.
ok() {
  local sock=$1 out
  shift
  out=$(python3 "$rpcpy" -s "$sock" -t 90 "$@" 2>&1) || fail "rpc.py $* failed: $out"
  printf '%s' "$out"
}

# refused SOCKET CODE ARGS...: rpc.py must fail with JSON-RPC error CODE.
refused() {
  local sock=$1 code=$2 out
  shift 2
  if out=$(python3 "$rpcpy" -s "$sock" -t 90 "$@" 2>&1); then
    fail "rpc.py $* succeeded; expected error $code"
  fi
  grep -q "\"code\": $code\b" <<<"$out" || fail "rpc.py $*: expected code $code, got: $out"
  echo "$me: refused as expected: $* -> $(grep -o '"message": .*' <<<"$out" | head -n 1)"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

host_nqn="nqn.2014-08.org.nvmexpress:uuid:3e9d1a7c-6b2f-4d80-9c15-7a4e0b2d6f93"
nqn1="nqn.2016-06.io.actornvme:cluster-rpc1"
nqn2="nqn.2016-06.io.actornvme:cluster-rpc2"
cat >"$work/target.json" <<EOF
{ "address": "127.0.0.1", "discovery_port": 0, "rpc_socket": "$work/target.sock",
  "subsystems": [
    { "nqn": "$nqn1", "port": 0, "namespaces": [ { "size_mib": 16 } ] },
    { "nqn": "$nqn2", "port": 0, "namespaces": [ { "size_mib": 16 } ] } ] }
EOF
dotnet "$dll" target -c "$work/target.json" >"$work/target.log" 2>&1 &
pids+=($!)
wait_for_line "$work/target.log" "actornvme target: ready" 60
discovery_port=$(sed -n 's/^actornvme target: discovery tcp 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/target.log")
port1=$(sed -n "s/^actornvme target: subsystem $nqn1 tcp 127\.0\.0\.1:\([0-9]*\):.*/\1/p" "$work/target.log")
[ -n "$discovery_port" ] && [ -n "$port1" ] || fail "ports missing from the target's output"

seed=$(free_port)
sock_a=$work/node-a.sock
sock_b=$work/node-b.sock
node() { # NAME PORT SOCKET
  dotnet "$dll" serve --cluster --node-name "$1" --port "$2" --seed-node "127.0.0.1:$seed" --min-members 2 \
    --host-nqn "$host_nqn" --cluster-store "sqlite:$work/state.db" -r "$3" >"$work/$1.log" 2>&1 &
  pids+=($!)
}
node node-a "$seed" "$sock_a"
node node-b "$(free_port)" "$sock_b"
wait_for_line "$work/node-a.log" "MemberUp" 90
wait_for_line "$work/node-b.log" "MemberUp" 90
echo "$me: two nodes up; target discovery 127.0.0.1:$discovery_port, $nqn1 on :$port1"

# --- attach through node A, listed from node B with its owner
[ "$(ok "$sock_a" bdev_nvme_attach_controller -b c1 -t tcp -a 127.0.0.1 -f ipv4 -s "$port1" -n "$nqn1")" = "c1n1" ] \
  || fail "attach through node A did not answer c1n1"
owner=$(ok "$sock_b" bdev_get_bdevs -b c1n1 -t 10000 | jq -r '.[0].actornvme.owner')
case "$owner" in node-a|node-b) ;; *) fail "node B lists c1n1 with owner '$owner'";; esac
grep -q "Attached $nqn1" "$work/$owner.log" || fail "$owner is named the owner of $nqn1 but did not attach it"
echo "$me: c1n1 attached through node-a, owned by $owner, listed from node-b"
refused "$sock_b" -17 bdev_nvme_attach_controller -b c1 -t tcp -a 127.0.0.1 -s "$port1" -n "$nqn2"
refused "$sock_a" -19 bdev_nvme_detach_controller nothing

# --- discovery through node B, listed from node A, stopped from node A
ok "$sock_b" bdev_nvme_start_discovery -b fabric -t tcp -a 127.0.0.1 -f ipv4 -s "$discovery_port" -w >/dev/null
refused "$sock_a" -17 bdev_nvme_start_discovery -b fabric -t tcp -a 127.0.0.1 -s "$discovery_port"
info=$(ok "$sock_a" bdev_nvme_get_discovery_info)
[ "$(jq -r '.[0].name' <<<"$info")" = "fabric" ] || fail "discovery info from node A does not name fabric: $info"
case "$(jq -r '.[0].actornvme.owner' <<<"$info")" in node-a|node-b) ;; *) fail "discovery info has no owning node: $info";; esac
jq -e --arg n "$nqn2" '[.[0].actornvme.entries[] | select(.trid.subnqn == $n)] | length == 1' <<<"$info" >/dev/null \
  || fail "discovery info does not list $nqn2: $info"
[ "$(ok "$sock_a" bdev_get_bdevs | jq '[.[] | select(.driver_specific.nvme[0].ctrlr_data.subnqn == "'"$nqn2"'")] | length')" = "1" ] \
  || fail "$nqn2 (found by the discovery) is not listed once"
echo "$me: discovery fabric read by $(jq -r '.[0].actornvme.owner' <<<"$info"), $(jq '.[0].actornvme.entries | length' <<<"$info") entries"
ok "$sock_a" bdev_nvme_stop_discovery -b fabric >/dev/null
refused "$sock_b" -2 bdev_nvme_stop_discovery -b fabric

# --- detach through node B: gone from node A's list
ok "$sock_b" bdev_nvme_detach_controller c1 >/dev/null
until=$((SECONDS + 60))
while ok "$sock_a" bdev_get_bdevs | jq -e '[.[] | select(.name == "c1n1")] | length > 0' >/dev/null; do
  [ $SECONDS -lt $until ] || fail "c1n1 still listed by node A 60 s after the detach"
  sleep 0.5
done
echo "$me: PASS"
