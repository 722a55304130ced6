#!/usr/bin/env bash
# test-timeout: 900
# NVMe/TCP over TLS 1.3 with a PSK, our host against SPDK's nvmf_tgt (secure-channel listeners, -k).
# Part 1: the SpdkTlsTests facts of tests/ActorNvme.RealPeer.Tests (ACTORNVME_SPDK_BUNDLE set): a SHA-256 PSK
#   (TLS_AES_128_GCM_SHA256) and a SHA-384 PSK (TLS_AES_256_GCM_SHA384), TLS with DH-HMAC-CHAP, each with writes
#   read back on two I/O queues; a wrong PSK refused as a TLS handshake naming the subsystem; plain TCP refused.
# Part 2: the same keys through `actornvme serve`'s JSON-RPC with SPDK's names (keyring_file_add_key, psk on
#   bdev_nvme_attach_controller), both suites; a wrong PSK refused at once, naming the subsystem and the TLS handshake.
# Part 3: IOPS at QD32 (4 KiB randread, 3 s), printed, not asserted: `actornvme perf` with and without TLS and
#   SPDK's spdk_nvme_perf with and without TLS (-S ssl --psk-path), in the same run against the same target.
# All on 127.0.0.1 in the root namespace. PSK files are made here with Python's zlib CRC-32, not by our code.
# Needs the solution built (dotnet build -c Release). Logs in artifacts/spdk-tls/.
# Exit: 0 passed, 1 failed, 77 skipped (no SPDK bundle at ../shared/peers/spdk, or not root).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=spdk-tls
if [ "$(id -u)" -ne 0 ]; then
  echo "$me: SKIP (nvmf_tgt is run as root only)"
  exit 77
fi
# shellcheck source=lib/preflight.sh
. tests/shell/lib/preflight.sh
# shellcheck source=lib/spdk-keys.sh
. tests/shell/lib/spdk-keys.sh
require_spdk_bundle
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
require_built "$dll"

logs=artifacts/spdk-tls
mkdir -p "$logs"

# Part 1.
run_realpeer_facts SpdkTlsTests

# Part 2.
open_scratch anvme-tls

plain_port=$(free_port)
tls_port=$(free_port)
host_nqn=nqn.2014-08.org.nvmexpress:uuid:3e9f0a1b-5c6d-4e7f-8a9b-0c1d2e3f4a5b
plain_nqn=nqn.2016-06.io.spdk:cnode20
tls_nqn=nqn.2016-06.io.spdk:cnode21
tls384_nqn=nqn.2016-06.io.spdk:cnode22
start_nvmf_tgt
umask 077
gen_psk 01 "$host_nqn" "$tls_nqn" >"$work/psk256.key"
gen_psk 02 "$host_nqn" "$tls384_nqn" >"$work/psk384.key"
gen_psk 01 "$host_nqn" "$tls_nqn" >"$work/wrong.key"
tgt_rpc nvmf_create_transport -t TCP
tgt_rpc keyring_file_add_key psk0 "$work/psk256.key"
tgt_rpc keyring_file_add_key psk1 "$work/psk384.key"
for n in 20 21 22; do
  tgt_rpc bdev_malloc_create 64 512 -b "Malloc$n"
done
tgt_rpc nvmf_create_subsystem "$plain_nqn" -a -s SPDK00000000000020
tgt_rpc nvmf_subsystem_add_ns "$plain_nqn" Malloc20
tgt_rpc nvmf_subsystem_add_listener "$plain_nqn" -t tcp -a 127.0.0.1 -s "$plain_port"
tgt_rpc nvmf_create_subsystem "$tls_nqn" -s SPDK00000000000021
tgt_rpc nvmf_subsystem_add_ns "$tls_nqn" Malloc21
tgt_rpc nvmf_subsystem_add_listener "$tls_nqn" -t tcp -a 127.0.0.1 -s "$tls_port" -k
tgt_rpc nvmf_subsystem_add_host "$tls_nqn" "$host_nqn" --psk psk0
tgt_rpc nvmf_create_subsystem "$tls384_nqn" -s SPDK00000000000022
tgt_rpc nvmf_subsystem_add_ns "$tls384_nqn" Malloc22
tgt_rpc nvmf_subsystem_add_listener "$tls384_nqn" -t tcp -a 127.0.0.1 -s "$tls_port" -k
tgt_rpc nvmf_subsystem_add_host "$tls384_nqn" "$host_nqn" --psk psk1

dotnet "$dll" serve -r "$work/serve.sock" >"$work/serve.log" 2>&1 &
serve_pid=$!
for _ in $(seq 600); do
  [ -S "$work/serve.sock" ] && our_rpc spdk_get_version >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || fail "actornvme serve exited"
  sleep 0.1
done
our_rpc keyring_file_add_key tls256 "$work/psk256.key" >/dev/null || fail "keyring_file_add_key tls256"
our_rpc keyring_file_add_key tls384 "$work/psk384.key" >/dev/null || fail "keyring_file_add_key tls384"
our_rpc keyring_file_add_key wrong "$work/wrong.key" >/dev/null || fail "keyring_file_add_key wrong"

attach_json() { # NAME SUBNQN KEY [EXTRA]
  echo "{\"name\":\"$1\",\"trtype\":\"tcp\",\"adrfam\":\"ipv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$tls_port\",\"subnqn\":\"$2\",\"hostnqn\":\"$host_nqn\",\"psk\":\"$3\"${4:-}}"
}
for pair in "nvme21:$tls_nqn:tls256:TLS_AES_128_GCM_SHA256" "nvme22:$tls384_nqn:tls384:TLS_AES_256_GCM_SHA384"; do
  IFS=: read -r name nqn_a nqn_b key suite <<<"$pair"
  nqn="$nqn_a:$nqn_b"
  out=$(raw_rpc bdev_nvme_attach_controller "$(attach_json "$name" "$nqn" "$key")" 2>&1) || fail "attach $name ($suite) with the right PSK: $out"
  grep -q "${name}n1" <<<"$out" || fail "attach $name printed no ${name}n1: $out"
  raw_rpc bdev_get_bdevs "{\"name\":\"${name}n1\"}" >/dev/null || fail "bdev_get_bdevs ${name}n1"
  raw_rpc bdev_nvme_detach_controller "{\"name\":\"$name\"}" >/dev/null || fail "detach $name"
  echo "$me: rpc.py: $name attached over TLS ($suite) with keyring key $key"
done

# A wrong PSK: refused as soon as the handshake fails (not at the attach deadline), naming the subsystem and the TLS handshake.
start=$SECONDS
if out=$(raw_rpc bdev_nvme_attach_controller "$(attach_json nvme23 "$tls_nqn" wrong ',"ctrlr_loss_timeout_sec":0,"reconnect_delay_sec":0')" 2>&1); then
  fail "attach with a wrong PSK succeeded: $out"
fi
took=$((SECONDS - start))
grep -q "TLS handshake" <<<"$out" || fail "the refusal does not say TLS handshake: $out"
grep -q "$tls_nqn" <<<"$out" || fail "the refusal does not name $tls_nqn: $out"
if grep -q "not attached within" <<<"$out"; then fail "the refusal came only at the attach deadline: $out"; fi
[ "$took" -le 5 ] || fail "the refusal took $took s (more than 5 s)"
for key in psk256 psk384 wrong; do
  if grep -q "$(cut -d: -f3 "$work/$key.key")" "$work/serve.log"; then fail "a PSK is in the serve log"; fi
done
echo "$me: rpc.py: a wrong PSK refused in $took s: $(echo "$out" | head -c 300)"
kill -TERM "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
serve_pid=

# Part 3: IOPS at QD32, 4 KiB randread, 3 s each; the target on core 0, the hosts on core 1. Printed, not asserted.
trid() { echo "trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:$1 subnqn:$2 hostnqn:$host_nqn"; }
ours() { # LABEL TRID [ARGS]: prints IOPS
  local label=$1 id=$2; shift 2
  local json
  json=$(timeout 120 dotnet "$dll" perf -q 32 -o 4096 -w randread -t 3 -c 0x2 --json -r "$id" "$@" 2>>"$work/perf.log") || { echo "failed"; return; }
  echo "$json" >>"$work/perf.log"
  python3 -c 'import json,sys; print(int(json.loads(sys.argv[1])["iops"]))' "$json" 2>/dev/null || echo "unreadable"
}
spdks() { # TRID [ARGS]: prints IOPS
  local id=$1; shift
  local out
  out=$(timeout 120 "$bundle/build/bin/spdk_nvme_perf" -q 32 -o 4096 -w randread -t 3 -c 0x2 --no-huge -s 512 -r "$id" "$@" 2>&1) || true
  echo "$out" >>"$work/perf.log"
  echo "$out" | awk '/^Total/ {print int($3); found=1} END {if (!found) print "failed"}'
}
ours_plain=$(ours plain "$(trid "$plain_port" "$plain_nqn")")
ours_tls=$(ours tls "$(trid "$tls_port" "$tls_nqn")" --psk-path "$work/psk256.key")
ours_tls384=$(ours tls384 "$(trid "$tls_port" "$tls384_nqn")" --psk-path "$work/psk384.key")
spdk_plain=$(spdks "$(trid "$plain_port" "$plain_nqn")")
spdk_tls=$(spdks "$(trid "$tls_port" "$tls_nqn")" -S ssl --psk-path "$work/psk256.key")
echo "$me: IOPS at QD32 (4 KiB randread, 3 s, 127.0.0.1, load average $(cut -d' ' -f1 /proc/loadavg)):"
echo "$me:   actornvme perf   plain TCP $ours_plain   TLS AES-128-GCM $ours_tls   TLS AES-256-GCM $ours_tls384"
echo "$me:   spdk_nvme_perf   plain TCP $spdk_plain   TLS AES-128-GCM $spdk_tls"
[ "$ours_tls" != failed ] || fail "actornvme perf over TLS failed (see $logs/perf.log)"
echo "$me: PASS"
