#!/usr/bin/env bash
# test-timeout: 900
# DH-HMAC-CHAP of our host against SPDK's nvmf_tgt: runs the SpdkDhChapTests facts of
# tests/ActorNvme.RealPeer.Tests with ACTORNVME_SPDK_BUNDLE set to the bundle scripts/spdk-peer.sh unpacks.
# Each fact starts nvmf_tgt (no hugepages, 127.0.0.1, a free port, keys in 0600 files on its keyring) with
# cnode1 (host key) and cnode2 (host + controller key): unidirectional SHA-256/null and bidirectional
# SHA-384/ffdhe2048 and SHA-512/ffdhe8192 authentication with writes and reads on two I/O queues after it;
# a wrong host key, a wrong controller key and a missing key refused with errors naming subsystem and step.
# Needs the test project built (dotnet build -c Release). Logs in artifacts/spdk-dhchap/.
# Exit: 0 passed, 1 failed, 77 skipped (no SPDK bundle at ../shared/peers/spdk, or not root).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=spdk-dhchap
if [ "$(id -u)" -ne 0 ]; then
  echo "$me: SKIP (nvmf_tgt is run as root only)"
  exit 77
fi
rc=0
bundle=$(scripts/spdk-peer.sh) || rc=$?
if [ "$rc" -eq 77 ]; then
  echo "$me: SKIP (SPDK's bundle is not present at ../shared/peers/spdk)"
  exit 77
elif [ "$rc" -ne 0 ]; then
  echo "$me: FAIL (scripts/spdk-peer.sh could not make SPDK's target ready)"
  exit 1
fi

logs=artifacts/spdk-dhchap
mkdir -p "$logs"
rc=0
ACTORNVME_SPDK_BUNDLE=$bundle dotnet test tests/ActorNvme.RealPeer.Tests -c Release --no-build \
  --filter "FullyQualifiedName~SpdkDhChapTests" --logger "console;verbosity=normal" >"$logs/dotnet-test.log" 2>&1 || rc=$?
summary=$(grep -E "^(Passed!|Failed!|Total tests|     Passed|     Failed|     Skipped)" "$logs/dotnet-test.log" || true)
echo "$summary"
if [ "$rc" -ne 0 ]; then
  grep -E "^\s+Failed |Error Message" -A3 "$logs/dotnet-test.log" | head -40 || true
  echo "$me: FAIL (see $logs/dotnet-test.log)"
  exit 1
fi
if grep -qE "Skipped SpdkDhChap|\[SKIP\]" "$logs/dotnet-test.log"; then
  echo "$me: FAIL (facts were skipped although the bundle is present)"
  exit 1
fi
if ! grep -qE "Passed!|Total tests" "$logs/dotnet-test.log"; then
  echo "$me: FAIL (no test ran; is tests/ActorNvme.RealPeer.Tests built?)"
  exit 1
fi

# Part 2: the same through `actornvme serve`'s JSON-RPC with SPDK's method and parameter names: keyring_file_add_key
# (SPDK's rpc.py), then bdev_nvme_attach_controller with dhchap_key / dhchap_ctrlr_key naming keyring keys (raw
# JSON-RPC: this rpc.py also sends parameters of newer SPDK releases); a wrong key refused.
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
if [ ! -f "$dll" ]; then
  echo "$me: FAIL ($dll is not built; run dotnet build -c Release first)"
  exit 1
fi
work=$(mktemp -d /tmp/anvme-dhchap.XXXXXX)
chmod 700 "$work"
tgt_pid=
serve_pid=
cleanup() {
  cp "$work"/*.log "$logs"/ 2>/dev/null || true
  [ -z "$serve_pid" ] || kill -TERM "$serve_pid" 2>/dev/null || true
  [ -z "$tgt_pid" ] || kill -INT "$tgt_pid" 2>/dev/null || true
  for pid in $serve_pid $tgt_pid; do
    wait "$pid" 2>/dev/null || true
  done
  [ -z "$tgt_pid" ] || rm -rf "/var/run/dpdk/spdk_pid$tgt_pid"
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "$me: FAIL ($*)"; tail -n 30 "$work/serve.log" 2>/dev/null || true; exit 1; }
tgt_rpc() { python3 "$bundle/scripts/rpc.py" -s "$work/tgt.sock" "$@" >/dev/null || fail "rpc.py (target) $*"; }
our_rpc() { python3 "$bundle/scripts/rpc.py" -s "$work/serve.sock" -t 60 "$@"; }
# raw_rpc METHOD JSON-PARAMS: one JSON-RPC 2.0 call; prints the result, or the error and fails.
raw_rpc() {
  python3 - "$work/serve.sock" "$1" "$2" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(90)
s.connect(sys.argv[1])
s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": sys.argv[2], "params": json.loads(sys.argv[3])}).encode())
buf = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    buf += chunk
    try:
        answer = json.loads(buf)
        break
    except ValueError:
        continue
if "error" in answer:
    print(json.dumps(answer["error"]))
    sys.exit(1)
print(json.dumps(answer["result"]))
PY
}

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
host_nqn=nqn.2014-08.org.nvmexpress:uuid:7d1c1f0e-2b3a-4c5d-8e9f-0a1b2c3d4e5f
sub_nqn=nqn.2016-06.io.spdk:cnode7
"$bundle/build/bin/nvmf_tgt" -m 0x1 --no-huge -s 1024 --disable-cpumask-locks -r "$work/tgt.sock" >"$work/tgt.log" 2>&1 &
tgt_pid=$!
for _ in $(seq 600); do
  grep -q "Reactor started on core 0" "$work/tgt.log" 2>/dev/null && [ -S "$work/tgt.sock" ] && break
  kill -0 "$tgt_pid" 2>/dev/null || fail "nvmf_tgt exited"
  sleep 0.1
done
# DHHC-1 keys (hh 01 and 03) made here with zlib's CRC-32, not by our code; both sides read the same 0600 files.
gen_key() { python3 - "$1" <<'PY'
import base64, os, sys, zlib
key = os.urandom(32)
print("DHHC-1:%s:%s:" % (sys.argv[1], base64.b64encode(key + zlib.crc32(key).to_bytes(4, "little")).decode()))
PY
}
umask 077
gen_key 01 >"$work/host.key"
gen_key 03 >"$work/ctrlr.key"
gen_key 01 >"$work/wrong.key"
tgt_rpc nvmf_create_transport -t TCP
tgt_rpc keyring_file_add_key key0 "$work/host.key"
tgt_rpc keyring_file_add_key ckey0 "$work/ctrlr.key"
tgt_rpc bdev_malloc_create 32 512 -b Malloc7
tgt_rpc nvmf_create_subsystem "$sub_nqn" -s SPDK00000000000007
tgt_rpc nvmf_subsystem_add_ns "$sub_nqn" Malloc7
tgt_rpc nvmf_subsystem_add_listener "$sub_nqn" -t tcp -a 127.0.0.1 -s "$port"
tgt_rpc nvmf_subsystem_add_host "$sub_nqn" "$host_nqn" --dhchap-key key0 --dhchap-ctrlr-key ckey0

dotnet "$dll" serve -r "$work/serve.sock" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 600); do
  [ -S "$work/serve.sock" ] && our_rpc spdk_get_version >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || fail "actornvme serve exited"
  sleep 0.1
done
our_rpc keyring_file_add_key hkey "$work/host.key" >/dev/null || fail "keyring_file_add_key hkey"
our_rpc keyring_file_add_key ckey "$work/ctrlr.key" >/dev/null || fail "keyring_file_add_key ckey"
our_rpc keyring_file_add_key wkey "$work/wrong.key" >/dev/null || fail "keyring_file_add_key wkey"
our_rpc keyring_get_keys | grep -q '"hkey"' || fail "keyring_get_keys does not list hkey"
if our_rpc keyring_get_keys | grep -q "$(cut -d: -f3 "$work/host.key")"; then fail "keyring_get_keys shows a secret"; fi

# Bidirectional through rpc.py's own option names.
out=$(raw_rpc bdev_nvme_attach_controller "{\"name\":\"nvme7\",\"trtype\":\"tcp\",\"adrfam\":\"ipv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$port\",\"subnqn\":\"$sub_nqn\",\"hostnqn\":\"$host_nqn\",\"dhchap_key\":\"hkey\",\"dhchap_ctrlr_key\":\"ckey\"}" 2>&1) \
  || fail "attach with the right keys: $out"
echo "$out" | grep -q nvme7n1 || fail "attach printed no nvme7n1: $out"
raw_rpc bdev_get_bdevs "{\"name\":\"nvme7n1\"}" >/dev/null || fail "bdev_get_bdevs nvme7n1"
raw_rpc bdev_nvme_detach_controller "{\"name\":\"nvme7\"}" >/dev/null || fail "detach nvme7"

# A wrong host key: refused as soon as the target refuses it (not at the attach deadline), naming the subsystem and AUTH_Failure1.
start=$SECONDS
if out=$(raw_rpc bdev_nvme_attach_controller "{\"name\":\"nvme8\",\"trtype\":\"tcp\",\"adrfam\":\"ipv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$port\",\"subnqn\":\"$sub_nqn\",\"hostnqn\":\"$host_nqn\",\"dhchap_key\":\"wkey\",\"ctrlr_loss_timeout_sec\":0,\"reconnect_delay_sec\":0}" 2>&1); then
  fail "attach with a wrong key succeeded: $out"
fi
echo "$out" | grep -q "AUTH_Failure1" || fail "the refusal does not say AUTH_Failure1: $out"
if echo "$out" | grep -q "not attached within"; then fail "the refusal came only at the attach deadline, not when authentication was refused: $out"; fi
echo "$out" | grep -q "$sub_nqn" || fail "the refusal does not name $sub_nqn: $out"
if grep -q "$(cut -d: -f3 "$work/wrong.key")" "$work/serve.log"; then fail "a secret is in the serve log"; fi
echo "$me: rpc.py: attach with keyring keys OK, wrong key refused in $((SECONDS - start)) s"
echo "$me: PASS"
