#!/usr/bin/env bash
# Both hosts against SPDK's nvmf_tgt, alternately, same round: spdk_nvme_perf and `actornvme perf`
# (through BlockDevice, and with --bare straight on the queue pairs), 4 KiB randread. Prints one
# line per run and then the ratio table (medians over the rounds) in Markdown, for bench/RESULTS.md.
#   bench/spdk-compare.sh [seconds] [warm-up seconds] [rounds] [queue depths...]
# The target runs on core 0, every host on core 1 (taskset), one at a time.
# SPDK_BUNDLE: an unpacked SPDK bundle (absolute path); without it scripts/spdk-peer.sh makes the one
#   from ../shared/peers/spdk (relative to the repository) ready.
# PERF_PORT (default 4460): the target's TCP port on 127.0.0.1.
# PERF_SPINS="US ..." (default: perf's own default): one BlockDevice run per value of --spin in every
#   round (device-sUS), so polling and blocking receives are compared in the same round; --bare runs
#   with the first value. PERF_BARE=0 skips the --bare runs.
# PERF_CORE (default 1) / TARGET_CORE (default 0): where the hosts and the target run.
# PERF_BASELINE_DLL: another build's actornvme.dll (say, main's), run through BlockDevice in the same
#   rounds as "baseline", for before/after ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
warmup=${2:-3}
rounds=${3:-3}
shift $(( $# < 3 ? $# : 3 ))
depths=("$@")
[ ${#depths[@]} -eq 0 ] && depths=(1 32 128)
port=${PERF_PORT:-4460}
read -r -a spins <<<"${PERF_SPINS:-default}"
host_core=${PERF_CORE:-1}
target_core=${TARGET_CORE:-0}
nqn=nqn.2016-06.io.spdk:cnode0
work=$(mktemp -d)

. bench/lib/spdk-target.sh
spdk_bench_start "$target_core" "$port" "$nqn"

results=$work/results.txt
: >"$results"
for round in $(seq 1 "$rounds"); do
  for qd in "${depths[@]}"; do
    # spdk_nvme_perf: "Total : IOPS MiB/s average min max"; it polls its core (100%).
    line=$(taskset -c "$host_core" "$bin/spdk_nvme_perf" --no-huge -s 512 -c "$(printf '0x%x' $((1 << host_core)))" -q "$qd" -o 4096 -w randread \
      -t "$seconds" -a "$warmup" -r "$trid" 2>/dev/null | awk '/^Total/ {print $3, $5}') || line=""
    echo "spdk $round $qd ${line:-0 0} 100" | tee -a "$results"
    modes=()
    for s in "${spins[@]}"; do modes+=("device-s$s"); done
    [ "${PERF_BARE:-1}" = 1 ] && modes+=("bare-s${spins[0]}")
    [ -n "${PERF_BASELINE_DLL:-}" ] && modes+=("baseline-s${spins[0]}")
    for mode in "${modes[@]}"; do
      extra=()
      dll=$perf_dll
      s=${mode##*-s}
      [ "$s" != default ] && extra+=(--spin "$s")
      [ "${mode%%-*}" = bare ] && extra+=(--bare)
      [ "${mode%%-*}" = baseline ] && dll=$PERF_BASELINE_DLL
      line=$(taskset -c "$host_core" dotnet "$dll" perf -r "$trid" -q "$qd" -o 4096 -w randread \
        -t "$seconds" -a "$warmup" --json "${extra[@]}" 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["iops"], d["latency_us"]["avg"], d["cpu_percent"])') || line="0 0 0"
      echo "$mode $round $qd $line" | tee -a "$results"
    done
  done
done

python3 - "$results" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    host, _, qd, iops, avg, cpu = line.split()
    runs.setdefault((int(qd), host), []).append((float(iops), float(avg), float(cpu)))
def med(qd, host, i):
    values = [r[i] for r in runs.get((qd, host), []) if r[0] > 0]
    return statistics.median(values) if values else 0.0
def order(h):
    kind, spin = h.rsplit("-s", 1)
    return (kind != "device", kind, int(spin) if spin.isdigit() else -1)
hosts = sorted({k[1] for k in runs if k[1] != "spdk"}, key=order)
print()
print("Medians; ratio = IOPS / spdk_nvme_perf's in the same rounds; per CPU-s = IOPS per host CPU-second / SPDK perf's (it polls: 100%).")
print()
print("| QD | spdk_nvme_perf IOPS (avg µs) | " + " | ".join(f"{h} IOPS (avg µs) | ratio | CPU | per CPU-s" for h in hosts) + " |")
print("|---:|---:|" + "---:|---:|---:|---:|" * len(hosts))
for qd in sorted({k[0] for k in runs}):
    s = med(qd, "spdk", 0)
    cells = [f"{s/1000:.1f}k ({med(qd,'spdk',1):.1f})"]
    for h in hosts:
        v, cpu = med(qd, h, 0), med(qd, h, 2)
        cells.append(f"{v/1000:.1f}k ({med(qd,h,1):.1f}) | {v/s if s else 0:.2f} | {cpu:.0f}% | {(v/(cpu/100))/s if s and cpu else 0:.2f}")
    print(f"| {qd} | " + " | ".join(cells) + " |")
EOF
