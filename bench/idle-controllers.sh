#!/usr/bin/env bash
# Scale probe (issue 12, "scale per process"): `actornvme target` in one process (one subsystem,
# null namespace, any host NQN), N idle controllers (one I/O queue each, a host NQN each) attached
# from another process and held for MINUTES with keep-alive KATO_MS. Prints the host's JSON summary:
# attach time, RSS per controller, threads, descriptors, GC pauses and every loss during the hold,
# then the target's RSS and thread count. A measurement: timings never gate CI.
#   bench/idle-controllers.sh [N] [MINUTES] [KATO_MS]
# IDLE_NO_BUILD=1: use the Host as built. IDLE_PORT (default 4520), IDLE_WINDOW (attaches in flight, default 256), IDLE_IO_THREADS (io-threads, 0: one per core).
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
minutes=${2:-1}
kato=${3:-2000}
port=${IDLE_PORT:-4520}
window=${IDLE_WINDOW:-256}
nqn=nqn.2016-06.io.actornvme:idle
hold=$(awk -v m="$minutes" 'BEGIN { printf "%d", m * 60 }')

# Two descriptors per controller on each side (admin and I/O queue), plus the runtime's own.
want=$((count * 2 + 4096))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$want" ]; then
  ulimit -Hn "$want" 2>/dev/null || echo "idle-controllers: hard descriptor limit $(ulimit -Hn) < $want; the host refuses what does not fit" >&2
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

[ -n "${IDLE_NO_BUILD:-}" ] || dotnet build Host -c Release -nologo -v quiet >/dev/null
dll=Host/bin/Release/net10.0/actornvme.dll
workdir=$(mktemp -d)
cat >"$workdir/target.json" <<JSON
{ "address": "127.0.0.1", "discovery_port": 0, "rpc_socket": "$workdir/target.sock", "max_connections": $((count * 2 + 64)),
  "subsystems": [ { "nqn": "$nqn", "port": $port, "namespaces": [ { "size_mib": 64, "backend": "null" } ] } ] }
JSON

dotnet "$dll" target --config "$workdir/target.json" >"$workdir/target.log" 2>&1 &
target_pid=$!
trap 'kill "$target_pid" 2>/dev/null || true; wait "$target_pid" 2>/dev/null || true; rm -rf "$workdir"' EXIT
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  sleep 0.2
done

echo "idle-controllers: N=$count hold=${minutes}min kato=${kato}ms load: $(cut -d' ' -f1-3 /proc/loadavg) cores: $(nproc)" >&2
status=0
dotnet "$dll" idle-controllers --path "127.0.0.1:$port" --subnqn "$nqn" --count "$count" --hold "$hold" \
  --keep-alive-timeout-ms "$kato" --window "$window" --io-threads "${IDLE_IO_THREADS:-0}" || status=$?
target_rss=$(awk '/VmRSS/ { print $2 }' "/proc/$target_pid/status" 2>/dev/null || echo 0)
target_threads=$(awk '/Threads/ { print $2 }' "/proc/$target_pid/status" 2>/dev/null || echo 0)
echo "{\"target_rss_mib\": $((target_rss / 1024)), \"target_threads\": $target_threads, \"load_after\": \"$(cut -d' ' -f1-3 /proc/loadavg)\"}"
if [ "$status" != 0 ]; then tail -5 "$workdir/target.log" >&2; fi
exit "$status"
