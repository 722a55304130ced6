#!/usr/bin/env bash
# SPDK's own rpc.py (from the SPDK bundle in ../shared/peers/spdk) against `actornvme serve`, for every
# method serve implements, with the parameters rpc.py sends by default (its store_true flags go out as
# false, e.g. disable_sq_flow_control): every call must be accepted and answered as SPDK would. Then the
# errors known at once must come at once with SPDK's errno: connection refused (-111), a Connect refused
# with DNR (host not allowed: -1 EPERM; unknown subsystem: -22 EINVAL), a parameter value that cannot be
# honoured (-95 "not supported: name=value"), a value out of range (-22 naming it); a discovery whose
# wait_for_attach timed out is stopped (a retry is not -17). The attach deadline is 20 s here (connect
# timeout 10 s, twice), so an answer within 8 s (rpc.py's own start-up included) is one that did not wait
# for it. 200 idle clients must not keep an operator's call waiting. Ends with spdk_kill_instance.
# Exit: 0 passed, 1 failed, 77 skipped (no SPDK bundle, python3 or jq).
set -euo pipefail
cd "$(dirname "$0")/../.."

dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
for tool in python3 jq; do
  if ! command -v "$tool" >/dev/null; then
    echo "spdk-rpcpy-compat: SKIP ($tool is not installed)"
    exit 77
  fi
done
if [ ! -f "$dll" ]; then
  echo "spdk-rpcpy-compat: FAIL ($dll is not built; run dotnet build -c Release first)"
  exit 1
fi

work=$(mktemp -d /tmp/anvme-rpcpy.XXXXXX)
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

# rpc.py needs only python3 and the bundle's python package: take it from the unpacked peer when that
# can be made ready, else unpack just those two parts of the bundle here.
bundle=
set +e
bundle=$(scripts/spdk-peer.sh 2>/dev/null)
peer_rc=$?
set -e
if [ "$peer_rc" -eq 77 ]; then
  echo "spdk-rpcpy-compat: SKIP (no SPDK bundle in ${ACTORNVME_SPDK_PEER:-../shared/peers/spdk})"
  exit 77
fi
if [ "$peer_rc" -ne 0 ] || [ ! -f "$bundle/scripts/rpc.py" ]; then
  tarball=$(ls "${ACTORNVME_SPDK_PEER:-../shared/peers/spdk}"/spdk-*-nvmf-x86_64.tar.xz 2>/dev/null | sort | tail -n 1 || true)
  [ -n "$tarball" ] || { echo "spdk-rpcpy-compat: SKIP (no SPDK bundle)"; exit 77; }
  tar -xJf "$tarball" -C "$work" --wildcards '*/scripts/rpc.py' '*/python/*'
  bundle=$(dirname "$(dirname "$(ls "$work"/*/scripts/rpc.py | head -n 1)")")
fi
rpcpy="$bundle/scripts/rpc.py"

fail() {
  echo "spdk-rpcpy-compat: FAIL ($*)"
  echo "--- actornvme target log"; tail -n 30 "$work/target.log" || true
  echo "--- actornvme serve log"; tail -n 60 "$work/serve.log" || true
  exit 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

serve_sock=$work/serve.sock
target_sock=$work/target.sock

# ok ARGS...: rpc.py must succeed; prints its output.
ok() {
  local out
  out=$(python3 "$rpcpy" -s "$serve_sock" -t 60 "$@" 2>&1) || fail "rpc.py $* failed: $out"
  printf '%s' "$out"
}

# refused CODE TEXT MAX_MS ARGS...: rpc.py must fail with JSON-RPC error CODE, a message containing TEXT,
# within MAX_MS milliseconds. Records a row of the bad-input table.
refused() {
  local code=$1 text=$2 max_ms=$3 out t0 elapsed
  shift 3
  t0=$(now_ms)
  if out=$(python3 "$rpcpy" -s "$serve_sock" -t 60 "$@" 2>&1); then
    fail "rpc.py $* succeeded; expected error $code"
  fi
  elapsed=$(( $(now_ms) - t0 ))
  grep -q "\"code\": $code\b" <<<"$out" || fail "rpc.py $*: expected code $code, got: $out"
  grep -qF -- "$text" <<<"$out" || fail "rpc.py $*: the error does not say '$text': $out"
  [ "$elapsed" -le "$max_ms" ] || fail "rpc.py $*: answered after $elapsed ms (at most $max_ms ms expected)"
  echo "spdk-rpcpy-compat: refused in ${elapsed} ms: $* -> $(grep -o '"message": .*' <<<"$out" | head -n 1)"
}

# target_call METHOD: one call to the target's fault-injection socket (not an SPDK method, so not rpc.py's).
target_call() {
  python3 - "$target_sock" "$1" <<'PY' || fail "target $1 failed"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": sys.argv[2]}).encode())
buf = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
    try:
        reply = json.loads(buf)
        break
    except ValueError:
        continue
sys.exit(1 if "error" in reply else 0)
PY
}

wait_for_line() { # FILE PATTERN SECONDS
  local until=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $until ] || fail "'$2' did not appear in $1 within $3 s"
    sleep 0.1
  done
}

# A host NQN of our own, so that the target can allow every host but this one on its second subsystem.
host_nqn="nqn.2014-08.org.nvmexpress:uuid:5b0c8f4e-2d8a-4c57-9d36-0a1e7c3f9b21"
other_nqn="nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-0000000000aa"
nqn1="nqn.2016-06.io.actornvme:rpcpy1"
nqn2="nqn.2016-06.io.actornvme:rpcpy-closed"
cat >"$work/target.json" <<EOF
{ "address": "127.0.0.1", "discovery_port": 0, "rpc_socket": "$target_sock",
  "subsystems": [
    { "nqn": "$nqn1", "port": 0, "namespaces": [ { "size_mib": 16 } ] },
    { "nqn": "$nqn2", "port": 0, "namespaces": [ { "size_mib": 16 } ], "hosts": [ "$other_nqn" ] } ] }
EOF
cat >"$work/serve.hocon" <<EOF
actornvme {
  host-nqn = "$host_nqn"
  connect-timeout = 10s
}
EOF

dotnet "$dll" target -c "$work/target.json" >"$work/target.log" 2>&1 &
target_pid=$!
wait_for_line "$work/target.log" "actornvme target: ready" 60
discovery_port=$(sed -n 's/^actornvme target: discovery tcp 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$work/target.log")
port1=$(sed -n "s/^actornvme target: subsystem $nqn1 tcp 127\.0\.0\.1:\([0-9]*\):.*/\1/p" "$work/target.log")
port2=$(sed -n "s/^actornvme target: subsystem $nqn2 tcp 127\.0\.0\.1:\([0-9]*\):.*/\1/p" "$work/target.log")
[ -n "$discovery_port" ] && [ -n "$port1" ] && [ -n "$port2" ] || fail "ports missing from the target's output"

# A port nothing listens on: bound, then closed.
dead_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')

dotnet "$dll" serve -c "$work/serve.hocon" -r "$serve_sock" --wait-for-rpc >"$work/serve.log" 2>&1 &
serve_pid=$!
wait_for_line "$work/serve.log" "JSON-RPC ready" 60
echo "spdk-rpcpy-compat: rpc.py from $(basename "$bundle"); target discovery 127.0.0.1:$discovery_port, subsystems :$port1 :$port2"

# --- start-up methods
methods=$(ok rpc_get_methods)
for m in rpc_get_methods spdk_get_version framework_start_init framework_wait_init bdev_nvme_set_options \
         bdev_nvme_start_discovery bdev_nvme_stop_discovery bdev_nvme_get_discovery_info bdev_nvme_attach_controller \
         bdev_nvme_detach_controller bdev_nvme_reset_controller bdev_nvme_get_controllers bdev_nvme_set_multipath_policy bdev_nvme_set_keys \
         bdev_nvme_get_io_paths bdev_get_bdevs bdev_get_iostat bdev_reset_iostat bdev_nvme_get_transport_statistics log_set_level log_get_level spdk_kill_instance framework_get_config \
         framework_get_subsystems; do
  jq -e --arg m "$m" 'index($m) != null' <<<"$methods" >/dev/null || fail "rpc_get_methods does not list $m"
done
ok spdk_get_version | jq -e '.version | type == "string"' >/dev/null || fail "spdk_get_version has no version"
[ "$(ok log_get_level | jq -r .)" = "INFO" ] || fail "log_get_level is not INFO at start"
ok log_set_level DEBUG >/dev/null
[ "$(ok log_get_level | jq -r .)" = "DEBUG" ] || fail "log_get_level after log_set_level DEBUG"
ok log_set_level NOTICE >/dev/null
refused -22 "parameter 'keep_alive_timeout_ms'" 8000 bdev_nvme_set_options -k 4294967295
refused -22 "keep-alive-timeout" 8000 bdev_nvme_set_options -k 4294967295
refused -95 "not supported: keep_alive_timeout_ms=0" 8000 bdev_nvme_set_options -k 0
refused -95 "not supported: io_path_stat=true" 8000 bdev_nvme_set_options --io-path-stat
refused -95 "not supported: multipath_opts.policy=active_active" 8000 bdev_nvme_set_options --policy active_active
refused -22 "rule reconnect-delay-within-loss-timeout" 8000 bdev_nvme_set_options -l 2 -o 3
# rpc.py's defaults (delay_cmd_submit true, the rest false) plus what the seed scenario sets.
ok bdev_nvme_set_options -k 2000 -c 4 -r -1 -l 2 -o 1 -u 1 --tcp-connect-timeout-ms 10000 --timeout-admin-us 5000000 \
   --dhchap-digests sha256,sha384 --dhchap-dhgroups null --policy active_passive >/dev/null
ok framework_start_init >/dev/null
ok framework_wait_init >/dev/null

# --- a controller attached by hand, with everything rpc.py sends by default
[ "$(ok bdev_nvme_attach_controller -b ctl -t tcp -a 127.0.0.1 -f ipv4 -s "$port1" -n "$nqn1")" = "ctln1" ] || fail "attach did not answer ctln1"
[ "$(ok bdev_get_bdevs | jq -r '[.[].name] | join(",")')" = "ctln1" ] || fail "bdev_get_bdevs does not list ctln1"
[ "$(ok bdev_get_bdevs -b ctln1 -t 1000 | jq -r '.[0].num_blocks')" = "32768" ] || fail "ctln1 is not 16 MiB of 512-byte blocks"
[ "$(ok bdev_nvme_get_controllers -n ctl | jq -r '.[0].ctrlrs[0].state')" = "enabled" ] || fail "controller ctl is not enabled"
[ "$(ok bdev_nvme_get_controllers -n ctl | jq -r '.[0].ctrlrs[0].host.nqn')" = "$host_nqn" ] || fail "controller ctl does not use the configured host NQN"
[ "$(ok bdev_nvme_get_io_paths -n ctln1 | jq -r '.poll_groups[0].io_paths | length')" = "1" ] || fail "bdev_nvme_get_io_paths lists not one path"
ok bdev_get_iostat --names ctln1 | jq -e '.tick_rate > 0 and (.bdevs[0].name == "ctln1") and (.bdevs[0].num_read_ops | type == "number")' >/dev/null \
  || fail "bdev_get_iostat --names ctln1 is not SPDK's shape"
ok bdev_reset_iostat -b ctln1 -m all >/dev/null
[ "$(ok bdev_get_iostat --names ctln1 | jq -r '.bdevs[0].num_read_ops')" = "0" ] || fail "bdev_reset_iostat -m all left read ops counted"
refused -19 "nope" 8000 bdev_get_iostat --names nope
ok bdev_nvme_get_transport_statistics | jq -e '(.poll_groups | length) >= 1 and ([.poll_groups[].transports[0] | select(.trname == "TCP" and (.nvme_completions | type == "number") and .submitted_requests >= .nvme_completions)] | length) == (.poll_groups | length)' >/dev/null \
  || fail "bdev_nvme_get_transport_statistics is not SPDK's shape"
refused -95 "per_channel" 8000 bdev_get_iostat -c
ok bdev_nvme_set_multipath_policy -b ctln1 -p active_active -s round_robin -r 2 >/dev/null
ok bdev_nvme_reset_controller ctl >/dev/null
refused -114 "already" 8000 bdev_nvme_attach_controller -b ctl -t tcp -a 127.0.0.1 -s "$port1" -n "$nqn1" -x failover
refused -17 "exists" 8000 bdev_nvme_attach_controller -b ctl -t tcp -a 127.0.0.1 -s "$port1" -n "$nqn1"
ok bdev_nvme_detach_controller ctl >/dev/null
[ "$(ok bdev_get_bdevs | jq length)" = "0" ] || fail "ctln1 still listed after detach"

# Per-controller options with meaning: SQ flow control, I/O queues, a multipath policy.
[ "$(ok bdev_nvme_attach_controller -b fc -t tcp -a 127.0.0.1 -s "$port1" -n "$nqn1" --disable-sq-flow-control --num-io-queues 2 \
      --policy active_active --selector queue_depth -l -1 -o 1)" = "fcn1" ] || fail "attach with --disable-sq-flow-control did not answer fcn1"
ok bdev_nvme_detach_controller fc >/dev/null

# --- values that cannot be honoured, and values out of range
refused -95 "not supported: prchk_reftag=true" 8000 bdev_nvme_attach_controller -b x -t tcp -a 127.0.0.1 -s "$port1" -n "$nqn1" -r
refused -95 "not supported: hostaddr=10.0.0.1" 8000 bdev_nvme_attach_controller -b x -t tcp -a 127.0.0.1 -s "$port1" -n "$nqn1" -i 10.0.0.1
refused -19 "key 'key0' is not in the keyring" 8000 bdev_nvme_attach_controller -b x -t tcp -a 127.0.0.1 -s "$port1" -n "$nqn1" -k key0
refused -95 "not supported: trtype=rdma" 8000 bdev_nvme_attach_controller -b x -t rdma -a 127.0.0.1 -s "$port1" -n "$nqn1"
refused -22 "parameter 'trsvcid' is 70000" 8000 bdev_nvme_attach_controller -b x -t tcp -a 127.0.0.1 -s 70000 -n "$nqn1"
refused -22 "subnqn" 8000 bdev_nvme_attach_controller -b x -t tcp -a 127.0.0.1 -s "$port1" -n "not-an-nqn"
refused -22 "rule timer-range" 8000 bdev_nvme_attach_controller -b x -t tcp -a 127.0.0.1 -s "$port1" -n "$nqn1" -l 2147483647 -o 1
refused -19 "nope" 8000 bdev_nvme_detach_controller nope
refused -2 "nope" 8000 bdev_nvme_stop_discovery -b nope

# --- errors known at once, answered at once
refused -111 "Connection refused" 8000 bdev_nvme_attach_controller -b dead -t tcp -a 127.0.0.1 -s "$dead_port" -n "$nqn1"
refused -111 "Connection refused" 8000 bdev_nvme_attach_controller -b dead -t tcp -a 127.0.0.1 -s "$dead_port" -n "$nqn1"
refused -1 "Operation not permitted" 8000 bdev_nvme_attach_controller -b closed -t tcp -a 127.0.0.1 -s "$port2" -n "$nqn2"
refused -22 "Invalid argument" 8000 bdev_nvme_attach_controller -b unknown -t tcp -a 127.0.0.1 -s "$port1" -n "nqn.2016-06.io.actornvme:nobody"
refused -111 "Connection refused" 8000 bdev_nvme_start_discovery -b deaddisc -t tcp -a 127.0.0.1 -s "$dead_port" -w
refused -111 "Connection refused" 8000 bdev_nvme_start_discovery -b deaddisc -t tcp -a 127.0.0.1 -s "$dead_port"
[ "$(ok bdev_nvme_get_discovery_info | jq length)" = "0" ] || fail "a discovery that was refused stays registered"

# A discovery whose wait_for_attach timed out is stopped: the retry times out again, it is not -17.
target_call target_blackhole
refused -110 "late" 8000 bdev_nvme_start_discovery -b late -t tcp -a 127.0.0.1 -s "$discovery_port" -T 1000
refused -110 "late" 8000 bdev_nvme_start_discovery -b late -t tcp -a 127.0.0.1 -s "$discovery_port" -T 1000
target_call target_restore

# --- discovery, with everything rpc.py sends by default
ok bdev_nvme_start_discovery -b nvme -t tcp -a 127.0.0.1 -f ipv4 -s "$discovery_port" -w -l 2 -o 1 -u 1 >/dev/null
[ "$(ok bdev_get_bdevs | jq -r '[.[].name] | join(",")')" = "nvme0n1" ] || fail "discovery did not attach nvme0n1 (only $nqn1 allows this host)"
[ "$(ok bdev_nvme_get_discovery_info | jq -r '.[0].name')" = "nvme" ] || fail "bdev_nvme_get_discovery_info does not list nvme"
refused -17 "nvme" 8000 bdev_nvme_start_discovery -b nvme -t tcp -a 127.0.0.1 -s "$discovery_port"
saved=$(ok save_config)
jq -e '.subsystems[0].subsystem == "bdev"' <<<"$saved" >/dev/null || fail "save_config has no bdev subsystem: $saved"
jq -e '[.subsystems[0].config[] | select(.method == "bdev_nvme_set_options") | .params.keep_alive_timeout_ms] == [2000]' <<<"$saved" >/dev/null \
  || fail "save_config does not hold keep_alive_timeout_ms 2000: $saved"
jq -e --arg port "$discovery_port" '[.subsystems[0].config[] | select(.method == "bdev_nvme_start_discovery") | .params | "\(.name) \(.trsvcid)"] == ["nvme \($port)"]' <<<"$saved" >/dev/null \
  || fail "save_config does not hold the discovery service: $saved"
ok bdev_nvme_stop_discovery -b nvme >/dev/null
[ "$(ok bdev_get_bdevs | jq length)" = "0" ] || fail "nvme0n1 still listed after stop_discovery"

# --- 200 clients that connect and say nothing must not keep an operator's call waiting
idle_ms=$(python3 - "$serve_sock" <<'PY'
import json, socket, sys, time
path = sys.argv[1]
idle = []
for _ in range(200):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    idle.append(s)
time.sleep(0.5)
t0 = time.monotonic()
s = socket.socket(socket.AF_UNIX)
s.connect(path)
s.sendall(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "bdev_get_bdevs"}).encode())
s.settimeout(30)
buf = b""
while True:
    chunk = s.recv(4096)
    if not chunk:
        print(-1)
        sys.exit(0)
    buf += chunk
    try:
        reply = json.loads(buf)
        break
    except ValueError:
        continue
print(-1 if "result" not in reply else "%.1f" % ((time.monotonic() - t0) * 1000))
PY
)
[ "$idle_ms" != "-1" ] || fail "with 200 idle clients connected, bdev_get_bdevs was not answered"
echo "spdk-rpcpy-compat: with 200 idle clients connected, bdev_get_bdevs answered in ${idle_ms} ms"
awk -v ms="$idle_ms" 'BEGIN { exit !(ms <= 2000) }' || fail "with 200 idle clients connected, bdev_get_bdevs took ${idle_ms} ms"

# --- spdk_kill_instance stops the daemon
ok spdk_kill_instance SIGTERM >/dev/null
until=$((SECONDS + 15))
while kill -0 "$serve_pid" 2>/dev/null; do
  [ $SECONDS -lt $until ] || fail "serve still running 15 s after spdk_kill_instance"
  sleep 0.1
done
wait "$serve_pid" || fail "serve exited with $? after spdk_kill_instance"
serve_pid=
echo "spdk-rpcpy-compat: PASS"
