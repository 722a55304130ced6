#!/usr/bin/env bash
# test-timeout: 900
# DH-HMAC-CHAP of our host against SPDK's nvmf_tgt: runs the SpdkDhChapTests facts of
# tests/ActorNvme.RealPeer.Tests with ACTORNVME_SPDK_BUNDLE set to the bundle scripts/spdk-peer.sh unpacks.
# Each fact starts nvmf_tgt (no hugepages, 127.0.0.1, a free port, keys in 0600 files on its keyring) with
# cnode1 (host key) and cnode2 (host + controller key): unidirectional SHA-256/null and bidirectional
# SHA-384/ffdhe2048 and SHA-512/ffdhe8192 authentication with writes and reads on two I/O queues after it;
# a wrong host key, a wrong controller key and a missing key refused with errors naming subsystem and step.
# Needs the test project built (dotnet build -c Release). Logs in artifacts/spdk-dhchap/.
# Part 3: SPDK's spdk_nvme_perf authenticates against `actornvme target` (uni-, bidirectional, TLS + DH-HMAC-CHAP).
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
# Whole output first: 'rpc.py | grep -q' fails under pipefail when grep stops reading early (broken pipe).
keys=$(our_rpc keyring_get_keys)
grep -q '"hkey"' <<<"$keys" || fail "keyring_get_keys does not list hkey"
if grep -q "$(cut -d: -f3 "$work/host.key")" <<<"$keys"; then fail "keyring_get_keys shows a secret"; fi

# Bidirectional through rpc.py's own option names.
out=$(raw_rpc bdev_nvme_attach_controller "{\"name\":\"nvme7\",\"trtype\":\"tcp\",\"adrfam\":\"ipv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$port\",\"subnqn\":\"$sub_nqn\",\"hostnqn\":\"$host_nqn\",\"dhchap_key\":\"hkey\",\"dhchap_ctrlr_key\":\"ckey\",\"num_io_queues\":2}" 2>&1) \
  || fail "attach with the right keys: $out"
grep -q nvme7n1 <<<"$out" || fail "attach printed no nvme7n1: $out"
raw_rpc bdev_get_bdevs "{\"name\":\"nvme7n1\"}" >/dev/null || fail "bdev_get_bdevs nvme7n1"

# Key rotation as SPDK's users do it: the target takes new keys (nvmf_subsystem_set_keys; its connections stay), then
# bdev_nvme_set_keys (SPDK's rpc.py) makes the Live controller re-authenticate its admin and both I/O queues with the new
# keys, bidirectionally: only the new keys can pass now. A wrong key then: -13 naming the path, the path lost; the
# right keys again: stored, and the path comes back with them.
controller_state() { our_rpc bdev_nvme_get_controllers -n nvme7 | jq -r '.[0].ctrlrs[0].actornvme.state'; }
gen_key 01 >"$work/host2.key"
gen_key 03 >"$work/ctrlr2.key"
tgt_rpc keyring_file_add_key key1 "$work/host2.key"
tgt_rpc keyring_file_add_key ckey1 "$work/ctrlr2.key"
our_rpc keyring_file_add_key hkey2 "$work/host2.key" >/dev/null || fail "keyring_file_add_key hkey2"
our_rpc keyring_file_add_key ckey2 "$work/ctrlr2.key" >/dev/null || fail "keyring_file_add_key ckey2"
tgt_rpc nvmf_subsystem_set_keys "$sub_nqn" "$host_nqn" --dhchap-key key1 --dhchap-ctrlr-key ckey1
out=$(our_rpc bdev_nvme_set_keys nvme7 --dhchap-key hkey2 --dhchap-ctrlr-key ckey2 2>&1) || fail "bdev_nvme_set_keys with the target's new keys: $out"
grep -q "nvme7/.*: 2 I/O queue(s) re-authenticated with $sub_nqn" "$work/serve.log" || fail "the serve log does not show both I/O queues re-authenticated"
[ "$(controller_state)" = Live ] || fail "nvme7 is not Live after re-authenticating: $(controller_state)"
if out=$(our_rpc bdev_nvme_set_keys nvme7 --dhchap-key wkey 2>&1); then fail "bdev_nvme_set_keys with a wrong key succeeded: $out"; fi
grep -q -- "-13" <<<"$out" || fail "a refused re-authentication is not -13: $out"
grep -q "$sub_nqn" <<<"$out" || fail "the refused re-authentication does not name $sub_nqn: $out"
out=$(our_rpc bdev_nvme_set_keys nvme7 --dhchap-key hkey2 --dhchap-ctrlr-key ckey2 2>&1) || fail "bdev_nvme_set_keys back to the right keys: $out"
for _ in $(seq 300); do [ "$(controller_state)" = Live ] && break; sleep 0.1; done
[ "$(controller_state)" = Live ] || fail "nvme7 did not come back with the stored keys: $(controller_state)"
echo "$me: rpc.py: bdev_nvme_set_keys re-authenticated nvme7 (admin + 2 I/O queues) with rotated keys; a wrong key -13; the path back with the stored keys"
raw_rpc bdev_nvme_detach_controller "{\"name\":\"nvme7\"}" >/dev/null || fail "detach nvme7"

# A wrong host key: refused as soon as the target refuses it (not at the attach deadline), naming the subsystem and AUTH_Failure1.
start=$SECONDS
if out=$(raw_rpc bdev_nvme_attach_controller "{\"name\":\"nvme8\",\"trtype\":\"tcp\",\"adrfam\":\"ipv4\",\"traddr\":\"127.0.0.1\",\"trsvcid\":\"$port\",\"subnqn\":\"$sub_nqn\",\"hostnqn\":\"$host_nqn\",\"dhchap_key\":\"wkey\",\"ctrlr_loss_timeout_sec\":0,\"reconnect_delay_sec\":0}" 2>&1); then
  fail "attach with a wrong key succeeded: $out"
fi
grep -q "AUTH_Failure1" <<<"$out" || fail "the refusal does not say AUTH_Failure1: $out"
if grep -q "not attached within" <<<"$out"; then fail "the refusal came only at the attach deadline, not when authentication was refused: $out"; fi
grep -q "$sub_nqn" <<<"$out" || fail "the refusal does not name $sub_nqn: $out"
for key in host host2 ctrlr2 wrong; do
  if grep -q "$(cut -d: -f3 "$work/$key.key")" "$work/serve.log"; then fail "a secret ($key.key) is in the serve log"; fi
done
echo "$me: rpc.py: attach with keyring keys OK, wrong key refused in $((SECONDS - start)) s"
kill -TERM "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
serve_pid=

# Part 3: the other direction. SPDK's spdk_nvme_perf (its --dhchap-key / --dhchap-ctrlr-key files, -S ssl --psk-path)
# authenticates against `actornvme target` (keys in its JSON config, as nvmf_subsystem_add_host takes them):
# unidirectional, bidirectional, bidirectional restricted to SHA-256/ffdhe2048, and TLS + bidirectional DH-HMAC-CHAP
# together; a wrong host key and a wrong controller key are refused (perf finds no controller, still exits 0).
kill -INT "$tgt_pid" 2>/dev/null || true
wait "$tgt_pid" 2>/dev/null || true
rm -rf "/var/run/dpdk/spdk_pid$tgt_pid"
tgt_pid=
gen_key 02 >"$work/host2.key"
gen_key 00 >"$work/ctrlr2.key"
gen_key 03 >"$work/wrong-ctrlr.key"
ours_uni=nqn.2016-06.io.actornvme:dhchap-uni
ours_bi=nqn.2016-06.io.actornvme:dhchap-bi
ours_2048=nqn.2016-06.io.actornvme:dhchap-2048
ours_tls=nqn.2016-06.io.actornvme:dhchap-tls
gen_psk 01 "$host_nqn" "$ours_tls" >"$work/psk.key"
port_uni=$(free_port); port_bi=$(free_port); port_2048=$(free_port); port_tls=$(free_port); port_disc=$(free_port)
host_obj() { # KEY [CTRLR-KEY] [EXTRA-JSON]
  echo "{\"nqn\":\"$host_nqn\",\"dhchap_key\":\"$work/$1\"${2:+,\"dhchap_ctrlr_key\":\"$work/$2\"}${3:-}}"
}
cat >"$work/target.json" <<JSON
{ "address": "127.0.0.1", "discovery_port": $port_disc, "rpc_socket": "$work/target.sock",
  "subsystems": [
    { "nqn": "$ours_uni", "port": $port_uni, "namespaces": [ { "size_mib": 32 } ], "hosts": [ $(host_obj host.key) ] },
    { "nqn": "$ours_bi", "port": $port_bi, "namespaces": [ { "size_mib": 32 } ], "hosts": [ $(host_obj host2.key ctrlr2.key) ] },
    { "nqn": "$ours_2048", "port": $port_2048, "namespaces": [ { "size_mib": 32 } ],
      "hosts": [ $(host_obj host.key ctrlr.key ',"dhchap_digests":["sha256"],"dhchap_dhgroups":["ffdhe2048"]') ] },
    { "nqn": "$ours_tls", "port": $port_tls, "secure_channel": true, "namespaces": [ { "size_mib": 32 } ],
      "hosts": [ $(host_obj host.key ctrlr.key ",\"psk\":\"$work/psk.key\"") ] } ] }
JSON
dotnet "$dll" target -c "$work/target.json" >"$work/target.log" 2>&1 &
serve_pid=$!
for _ in $(seq 600); do
  grep -q "actornvme target: ready" "$work/target.log" 2>/dev/null && break
  kill -0 "$serve_pid" 2>/dev/null || fail "actornvme target exited: $(tail -n 5 "$work/target.log")"
  sleep 0.1
done
grep -q "actornvme target: ready" "$work/target.log" || fail "actornvme target did not start within 60 s"
spdk_perf() { # LABEL PORT SUBNQN [ARGS]: prints IOPS, or "refused"
  local label=$1 port=$2 nqn=$3 out; shift 3
  out=$(timeout 120 "$bundle/build/bin/spdk_nvme_perf" -q 32 -o 4096 -w randread -t 3 -c 0x2 --no-huge -s 512 \
    -r "trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:$port subnqn:$nqn hostnqn:$host_nqn" "$@" 2>&1) || true
  printf '== %s\n%s\n' "$label" "$out" >>"$work/perf.log"
  echo "$out" | awk '/^Total/ {print int($3); found=1} END {if (!found) print "refused"}'
}
uni=$(spdk_perf uni "$port_uni" "$ours_uni" --dhchap-key "$work/host.key")
bi=$(spdk_perf bi "$port_bi" "$ours_bi" --dhchap-key "$work/host2.key" --dhchap-ctrlr-key "$work/ctrlr2.key")
bi2048=$(spdk_perf bi-2048 "$port_2048" "$ours_2048" --dhchap-key "$work/host.key" --dhchap-ctrlr-key "$work/ctrlr.key")
tls=$(spdk_perf tls-bi "$port_tls" "$ours_tls" -S ssl --psk-path "$work/psk.key" --dhchap-key "$work/host.key" --dhchap-ctrlr-key "$work/ctrlr.key")
start=$SECONDS
wrong_host=$(spdk_perf wrong-host "$port_uni" "$ours_uni" --dhchap-key "$work/wrong.key")
wrong_host_took=$((SECONDS - start))
wrong_ctrlr=$(spdk_perf wrong-ctrlr "$port_bi" "$ours_bi" --dhchap-key "$work/host2.key" --dhchap-ctrlr-key "$work/wrong-ctrlr.key")
no_key=$(spdk_perf no-key "$port_uni" "$ours_uni")
echo "$me: spdk_nvme_perf against actornvme target, IOPS at QD32 (4 KiB randread, 3 s, load average $(cut -d' ' -f1 /proc/loadavg)):"
echo "$me:   unidirectional $uni   bidirectional $bi   bidirectional sha256/ffdhe2048 $bi2048   TLS + bidirectional $tls"
echo "$me:   wrong host key: $wrong_host (perf exited after $wrong_host_took s)   wrong controller key: $wrong_ctrlr   no key: $no_key"
for result in "uni:$uni" "bi:$bi" "bi-2048:$bi2048" "tls-bi:$tls"; do
  case ${result#*:} in ''|refused|*[!0-9]*) fail "spdk_nvme_perf $result did not run I/O (see $logs/perf.log, $logs/target.log)" ;; esac
  [ "${result#*:}" -gt 0 ] || fail "spdk_nvme_perf $result: 0 IOPS"
done
[ "$wrong_host" = refused ] || fail "spdk_nvme_perf with a wrong host key ran I/O"
[ "$wrong_ctrlr" = refused ] || fail "spdk_nvme_perf with a wrong controller key ran I/O"
[ "$no_key" = refused ] || fail "spdk_nvme_perf without a key ran I/O"
grep -q "received AUTH_failure1: rc=1, rce=1" "$work/perf.log" || fail "perf did not read AUTH_Failure1 for the wrong host key (see $logs/perf.log)"
grep -q "controller challenge mismatch" "$work/perf.log" || fail "perf did not report the wrong controller key (see $logs/perf.log)"
grep -q "DH-HMAC-CHAP of host $host_nqn .* failed: the host's response does not match its key" "$work/target.log" \
  || fail "the target did not log the wrong host key (see $logs/target.log)"
for key in host.key host2.key ctrlr.key ctrlr2.key wrong.key psk.key; do
  if grep -q "$(cut -d: -f3 "$work/$key")" "$work/target.log"; then fail "a secret ($key) is in the target log"; fi
done
echo "$me: PASS"
