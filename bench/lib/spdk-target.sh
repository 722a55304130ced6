# Sourced by the bench scripts: SPDK's nvmf_tgt on one core with one subsystem on 127.0.0.1.
# Needs: work (a scratch directory), and optionally SPDK_BUNDLE (an unpacked bundle; otherwise
# scripts/spdk-peer.sh makes one ready from ../shared/peers/spdk).
# Sets: bin (the bundle's build/bin), spdk_sock, spdk_pid after spdk_target_start.
# spdk_target_launcher (optional): a command nvmf_tgt is started through (e.g. setsid); it must exec it.

if [ -z "${SPDK_BUNDLE:-}" ]; then
  SPDK_BUNDLE=$(scripts/spdk-peer.sh)
fi
bin=$SPDK_BUNDLE/build/bin
spdk_sock=$work/tgt.sock
spdk_pid=""

spdk_rpc() { python3 "$SPDK_BUNDLE/scripts/rpc.py" -s "$spdk_sock" "$@" >/dev/null; }

# spdk_target_start CORE BDEV NQN PORT: nvmf_tgt pinned to CORE, a 64 MiB namespace of 4 KiB blocks
# (BDEV malloc: RAM; null: no data) in subsystem NQN, listening on 127.0.0.1:PORT.
spdk_target_start() {
  local core=$1 kind=$2 nqn=$3 port=$4
  rm -f "$spdk_sock"
  ${spdk_target_launcher:-} taskset -c "$core" "$bin/nvmf_tgt" -m "$(printf '0x%x' $((1 << core)))" --no-huge -s 1024 -r "$spdk_sock" >"$work/tgt.log" 2>&1 &
  spdk_pid=$!
  for _ in $(seq 1 100); do grep -qs "Reactor started" "$work/tgt.log" && break; sleep 0.1; done
  sleep 0.5
  spdk_rpc nvmf_create_transport -t TCP
  case $kind in
    malloc) spdk_rpc bdev_malloc_create 64 4096 -b Disk0 ;;
    null) spdk_rpc bdev_null_create Disk0 64 4096 ;;
    *) echo "spdk_target_start: bdev kind '$kind' is not malloc or null" >&2; return 1 ;;
  esac
  spdk_rpc nvmf_create_subsystem "$nqn" -a -s SPDK00000000000001
  spdk_rpc nvmf_subsystem_add_ns "$nqn" Disk0
  spdk_rpc nvmf_subsystem_add_listener "$nqn" -t tcp -a 127.0.0.1 -s "$port"
}

# spdk_bench_start CORE PORT NQN: builds the host (sets perf_dll), starts nvmf_tgt on CORE with a malloc
# namespace (sets trid), and stops it and removes $work when the script exits.
spdk_bench_start() {
  local core=$1 port=$2 nqn=$3
  dotnet build Host -c Release -nologo -v quiet >/dev/null
  perf_dll=Host/bin/Release/net10.0/actornvme.dll
  trap 'spdk_target_stop; rm -rf "$work"' EXIT
  spdk_target_start "$core" malloc "$nqn" "$port"
  trid="trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:$port subnqn:$nqn"
}

# Stops nvmf_tgt (it polls its core even when idle): SIGINT, then SIGKILL after 10 s.
spdk_target_stop() {
  if [ -n "$spdk_pid" ]; then
    kill -INT "$spdk_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$spdk_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$spdk_pid" 2>/dev/null || true
    wait "$spdk_pid" 2>/dev/null || true
    spdk_pid=""
  fi
}
