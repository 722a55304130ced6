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
# shellcheck source=lib/preflight.sh
. tests/shell/lib/preflight.sh
# shellcheck source=lib/spdk-keys.sh
. tests/shell/lib/spdk-keys.sh
require_spdk_bundle

logs=artifacts/spdk-dhchap
mkdir -p "$logs"
run_realpeer_facts SpdkDhChapTests

# Part 2: the same through `actornvme serve`'s JSON-RPC with SPDK's method and parameter names: keyring_file_add_key
# (SPDK's rpc.py), then bdev_nvme_attach_controller with dhchap_key / dhchap_ctrlr_key naming keyring keys (raw
# JSON-RPC: this rpc.py also sends parameters of newer SPDK releases); a wrong key refused.
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
require_built "$dll"
open_scratch anvme-dhchap

port=$(free_port)
host_nqn=nqn.2014-08.org.nvmexpress:uuid:7d1c1f0e-2b3a-4c5d-8e9f-0a1b2c3d4e5f
sub_nqn=nqn.2016-06.io.spdk:cnode7
start_nvmf_tgt
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
