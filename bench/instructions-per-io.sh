#!/usr/bin/env bash
# The host's cost per I/O, as independent of machine load as this machine allows: user-space
# instructions and cycles per completed I/O of `actornvme perf` (through BlockDevice and with --bare),
# counted by `perf stat -e instructions:u,cycles:u` attached to the perf process inside its measured
# window, and its user and system CPU time (/proc/PID/stat) over the same interval; each divided by the
# I/Os of that interval (the window's IOPS times the interval). Where the machine has no hardware
# counters (a VM without a PMU) only the CPU times are printed: unlike wall-clock IOPS they leave out
# the time the process waits for a core. The receive threads do not spin (--spin 0 by default):
# spinning adds work that only measures how long the answer took.
#   bench/instructions-per-io.sh [rounds] [queue depth]
# IPC_TARGET=responder (default): the benchmarks' loopback responder in its own process; target: our Target.
# IPC_SPIN=US: receive spin. One line per run: build, mode, IOPS, instructions/IO, cycles/IO, CPU time/IO.
# IPC_BUILDS="label=path/to/actornvme.dll ...": compare builds, run alternately within each round so that
# they share the machine's load (CPU time per I/O still moves with the load of other processes).
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
qd=${2:-32}
port=${IPC_PORT:-4431}
spin=${IPC_SPIN:-0}
nqn=nqn.2016-06.io.spdk:cnode1
warmup=3
seconds=8
builds=${IPC_BUILDS:-this=Host/bin/Release/net10.0/actornvme.dll}
work=$(mktemp -d)

if [ "${IPC_TARGET:-responder}" = responder ]; then
  taskset -c 0 dotnet bench/ActorNvme.Benchmarks/bin/Release/net10.0/ActorNvme.Benchmarks.dll serve "$port" >"$work/target.log" 2>&1 &
else
  taskset -c 0 dotnet bench/ActorNvme.TargetHost/bin/Release/net10.0/ActorNvme.TargetHost.dll \
    --port "$port" --nqn "$nqn" --queue-size 256 >"$work/target.log" 2>&1 &
fi
target_pid=$!
trap 'kill "$target_pid" 2>/dev/null || true; wait "$target_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
sleep 3

for round in $(seq 1 "$rounds"); do
  for mode in device bare; do
   for build in $builds; do
    label=${build%%=*}
    perf_dll=${build#*=}
    extra=()
    [ "$mode" = bare ] && extra=(--bare)
    taskset -c 1 dotnet "$perf_dll" perf \
      -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$port subnqn:$nqn" \
      -q "$qd" -o 4096 -w randread -t "$seconds" -a "$warmup" --spin "$spin" --json "${extra[@]}" >"$work/run.json" 2>"$work/run.err" &
    perf_pid=$!
    # Attach once the warm-up is over (connect and JIT done), count for 6 s of the 8 s window.
    sleep $((warmup + 2))
    interval=6
    read -r -a before < <(cut -d' ' -f14,15 "/proc/$perf_pid/stat")
    perf stat -x, -e instructions:u,cycles:u -p "$perf_pid" -- sleep "$interval" 2>"$work/stat.csv" || true
    read -r -a after < <(cut -d' ' -f14,15 "/proc/$perf_pid/stat")
    user_ticks=$((after[0] - before[0]))
    system_ticks=$((after[1] - before[1]))
    wait "$perf_pid" || true
    iops=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["iops"])' "$work/run.json" 2>/dev/null || echo 0)
    instructions=$(awk -F, '$3 ~ /^instructions/ {print $1}' "$work/stat.csv")
    cycles=$(awk -F, '$3 ~ /^cycles/ {print $1}' "$work/stat.csv")
    python3 - "$round" "$label $mode" "$iops" "$instructions" "$cycles" "$interval" "$user_ticks" "$system_ticks" "$(getconf CLK_TCK)" <<'PY'
import sys
r, (label, mode) = sys.argv[1], sys.argv[2].split()
iops, interval = float(sys.argv[3]), float(sys.argv[6])
def number(text):
    try:
        return float(text)
    except ValueError:
        return None  # "<not supported>": no hardware counters
ins, cyc = number(sys.argv[4]), number(sys.argv[5])
user, system = int(sys.argv[7]) / int(sys.argv[9]), int(sys.argv[8]) / int(sys.argv[9])
ios = iops * interval
per = lambda v: f"{v / ios:8.0f}" if v is not None and ios else "     n/a"
us = lambda v: f"{v / ios * 1e6:6.2f}" if ios else "   n/a"
print(f"round {r} {label:8s} {mode:6s} iops {iops:9.0f} instructions/io {per(ins)} cycles/io {per(cyc)} user-us/io {us(user)} sys-us/io {us(system)}")
PY
   done
  done
done
