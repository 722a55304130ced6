# Shared by the shell tests that check keys against SPDK's nvmf_tgt (spdk-dhchap.sh, spdk-tls.sh): the
# RealPeer facts of one class run with the bundle, then a scratch directory with nvmf_tgt on loopback and
# `actornvme serve`, driven over JSON-RPC. Sourced after preflight.sh; $me, $bundle and $logs must be set.

# run_realpeer_facts CLASS: the facts of tests/ActorNvme.RealPeer.Tests named CLASS with ACTORNVME_SPDK_BUNDLE
# set; fails when one fails, is skipped, or none ran.
run_realpeer_facts() {
  local class=$1 rc=0
  ACTORNVME_SPDK_BUNDLE=$bundle dotnet test tests/ActorNvme.RealPeer.Tests -c Release --no-build \
    --filter "FullyQualifiedName~$class" --logger "console;verbosity=normal" >"$logs/dotnet-test.log" 2>&1 || rc=$?
  grep -E "^(Passed!|Failed!|Total tests|     Passed|     Failed|     Skipped)" "$logs/dotnet-test.log" || true
  if [ "$rc" -ne 0 ]; then
    grep -E "^\s+Failed |Error Message" -A3 "$logs/dotnet-test.log" | head -40 || true
    echo "$me: FAIL (see $logs/dotnet-test.log)"
    exit 1
  fi
  if grep -qE "Skipped $class|\[SKIP\]" "$logs/dotnet-test.log"; then
    echo "$me: FAIL (facts were skipped although the bundle is present)"
    exit 1
  fi
  if ! grep -qE "Passed!|Total tests" "$logs/dotnet-test.log"; then
    echo "$me: FAIL (no test ran; is tests/ActorNvme.RealPeer.Tests built?)"
    exit 1
  fi
}

# open_scratch PREFIX: $work (mode 0700), cleaned up on exit with the processes in $tgt_pid and $serve_pid
# (their logs copied to $logs); defines fail, tgt_rpc, our_rpc, raw_rpc and free_port.
open_scratch() {
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  chmod 700 "$work"
  tgt_pid=
  serve_pid=
  trap scratch_cleanup EXIT
}

scratch_cleanup() {
  cp "$work"/*.log "$logs"/ 2>/dev/null || true
  [ -z "$serve_pid" ] || kill -TERM "$serve_pid" 2>/dev/null || true
  [ -z "$tgt_pid" ] || kill -INT "$tgt_pid" 2>/dev/null || true
  for pid in $serve_pid $tgt_pid; do
    wait "$pid" 2>/dev/null || true
  done
  [ -z "$tgt_pid" ] || rm -rf "/var/run/dpdk/spdk_pid$tgt_pid"
  rm -rf "$work"
}

fail() { echo "$me: FAIL ($*)"; tail -n 30 "$work/serve.log" 2>/dev/null || true; exit 1; }
tgt_rpc() { python3 "$bundle/scripts/rpc.py" -s "$work/tgt.sock" "$@" >/dev/null || fail "rpc.py (target) $*"; }
our_rpc() { python3 "$bundle/scripts/rpc.py" -s "$work/serve.sock" -t 60 "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# raw_rpc METHOD JSON-PARAMS: one JSON-RPC 2.0 call on serve's socket; prints the result, or the error and fails.
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

# start_nvmf_tgt: SPDK's target on core 0 without hugepages, its RPC on $work/tgt.sock; waits until it is up.
start_nvmf_tgt() {
  "$bundle/build/bin/nvmf_tgt" -m 0x1 --no-huge -s 1024 --disable-cpumask-locks -r "$work/tgt.sock" >"$work/tgt.log" 2>&1 &
  tgt_pid=$!
  for _ in $(seq 600); do
    grep -q "Reactor started on core 0" "$work/tgt.log" 2>/dev/null && [ -S "$work/tgt.sock" ] && return 0
    kill -0 "$tgt_pid" 2>/dev/null || fail "nvmf_tgt exited"
    sleep 0.1
  done
  fail "nvmf_tgt did not start within 60 s"
}

# gen_psk HASH HOSTNQN SUBNQN...: a random NVMeTLSkey-1 interchange string (HASH 01: 32-byte key, SHA-256;
# 02: 48-byte key, SHA-384), without a trailing newline (SPDK refuses one). SPDK's host takes a derived TLS
# PSK whose first byte is zero for no PSK at all (it tests psk[0]) and fails with "PSK is not set", for one
# key in 256; such keys are drawn again, for the version-0 identity of HOSTNQN with each SUBNQN.
gen_psk() {
  python3 - "$@" <<'PY'
import base64, hashlib, hmac, os, struct, sys, zlib
hash_id, host, subsystems = sys.argv[1], sys.argv[2], sys.argv[3:]
digest, size = (hashlib.sha256, 32) if hash_id == "01" else (hashlib.sha384, 48)
def derive(key, name, context):  # HKDF with an empty salt, info shaped as TLS 1.3's HkdfLabel
    prk = hmac.new(b"\0" * size, key, digest).digest()
    label, ctx = b"tls13 " + name, context.encode()
    info = struct.pack(">H", len(key)) + bytes([len(label)]) + label + bytes([len(ctx)]) + ctx
    return hmac.new(prk, info + b"\x01", digest).digest()[:size]
while True:
    key = os.urandom(size)
    retained = derive(key, b"HostNQN", host)
    if all(derive(retained, b"nvme-tls-psk", "NVMe0R%s %s %s" % (hash_id, host, sub))[0] for sub in subsystems):
        break
sys.stdout.write("NVMeTLSkey-1:%s:%s:" % (hash_id, base64.b64encode(key + zlib.crc32(key).to_bytes(4, "little")).decode()))
PY
}
