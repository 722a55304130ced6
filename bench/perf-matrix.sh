#!/usr/bin/env bash
# The closing-note matrix: a target in its own process on core 0, `actornvme perf` on core 1, 4 KiB
# randread and randwrite at QD 1, 32 and 128 with one and two queue pairs, through BlockDevice and
# (with --bare) straight on the queue pairs. One JSON line per run on stdout.
#   bench/perf-matrix.sh [seconds] [warm-up seconds] [rounds]
# PERF_TARGET=target (default): our Target (bench/ActorNvme.TargetHost), null namespace, I/O queues of
#   256 entries (PERF_TARGET_QUEUE_SIZE) so QD128 fits one queue pair (--bare has no waiting line).
# PERF_TARGET=responder: the benchmarks' loopback responder (bench serve), far cheaper than our Target,
#   so the host's own ceiling shows.
# PERF_SPIN=US: receive threads poll US microseconds before blocking (io-receive-spin).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
warmup=${2:-2}
rounds=${3:-1}
port=${PERF_PORT:-4420}
kind=${PERF_TARGET:-target}
spin=${PERF_SPIN:-0}
nqn=nqn.2016-06.io.spdk:cnode1

dotnet build bench/ActorNvme.TargetHost -c Release -nologo -v quiet >/dev/null
dotnet build bench/ActorNvme.Benchmarks -c Release -nologo -v quiet >/dev/null
dotnet build Host -c Release -nologo -v quiet >/dev/null
perf_dll=Host/bin/Release/net10.0/actornvme.dll

if [ "$kind" = responder ]; then
  taskset -c 0 dotnet bench/ActorNvme.Benchmarks/bin/Release/net10.0/ActorNvme.Benchmarks.dll serve "$port" >&2 &
else
  taskset -c 0 dotnet bench/ActorNvme.TargetHost/bin/Release/net10.0/ActorNvme.TargetHost.dll \
    --port "$port" --nqn "$nqn" --queue-size "${PERF_TARGET_QUEUE_SIZE:-256}" >&2 &
fi
target_pid=$!
trap 'kill "$target_pid" 2>/dev/null || true; wait "$target_pid" 2>/dev/null || true' EXIT
sleep 2

for round in $(seq 1 "$rounds"); do
  for pattern in randread randwrite; do
    for qd in 1 32 128; do
      for pairs in 1 2; do
        for mode in device bare; do
          extra=()
          [ "$mode" = bare ] && extra=(--bare)
          line=$(taskset -c 1 dotnet "$perf_dll" perf \
            -r "trtype:TCP adrfam:IPv4 traddr:127.0.0.1 trsvcid:$port subnqn:$nqn" \
            -q "$qd" -o 4096 -w "$pattern" -t "$seconds" -a "$warmup" -P "$pairs" --spin "$spin" --json "${extra[@]}" 2>/dev/null) || line='{"error":true}'
          echo "{\"round\":$round,\"target\":\"$kind\",\"mode\":\"$mode\",\"run\":$line}"
        done
      done
    done
  done
done
