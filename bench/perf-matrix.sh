#!/usr/bin/env bash
# The closing-note matrix: our Target (null namespace) in its own process on one core, `actornvme perf`
# on the other, 4 KiB randread and randwrite at QD 1, 32 and 128 with one and two queue pairs, through
# BlockDevice and (with --bare) straight on the queue pairs. One JSON line per run on stdout.
# The target's I/O queues hold 256 entries (PERF_TARGET_QUEUE_SIZE), so QD128 fits one queue pair:
# --bare has no waiting line and would spin on a full queue.
#   bench/perf-matrix.sh [seconds] [warm-up seconds] [rounds]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
warmup=${2:-2}
rounds=${3:-1}
port=${PERF_PORT:-4420}
nqn=nqn.2016-06.io.spdk:cnode1

dotnet build bench/ActorNvme.TargetHost -c Release -nologo -v quiet >/dev/null
dotnet build Host -c Release -nologo -v quiet >/dev/null
target_dll=bench/ActorNvme.TargetHost/bin/Release/net10.0/ActorNvme.TargetHost.dll
perf_dll=Host/bin/Release/net10.0/actornvme.dll

taskset -c 0 dotnet "$target_dll" --port "$port" --nqn "$nqn" --queue-size "${PERF_TARGET_QUEUE_SIZE:-256}" >&2 &
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
            -q "$qd" -o 4096 -w "$pattern" -t "$seconds" -a "$warmup" -P "$pairs" --json "${extra[@]}" 2>/dev/null) || line='{"error":true}'
          echo "{\"round\":$round,\"mode\":\"$mode\",\"run\":$line}"
        done
      done
    done
  done
done
