#!/usr/bin/env bash
# spdk_nvme_perf against SPDK's nvmf_tgt and against `actornvme target`, alternately, same rounds:
# 4 KiB randread and randwrite at one queue depth, null namespaces on both targets. Each target runs
# alone on its core (nvmf_tgt polls its core even when idle, so it is stopped before ours starts).
# Prints one line per run, then appends a Markdown table (every run, and the medians with the ratio
# ours/SPDK) to bench/RESULTS.md, with the load average before and after. Not a test: timings never gate CI.
#   bench/target-vs-spdk.sh [seconds] [rounds] [queue depth]
# SPDK_BUNDLE: an unpacked SPDK bundle (absolute path); without it scripts/spdk-peer.sh makes the one
#   from ../shared/peers/spdk (relative to the repository) ready.
# PERF_PORT (default 4462): the targets' TCP port on 127.0.0.1.
# PERF_CORE (default 1) / TARGET_CORE (default 0): where spdk_nvme_perf and the target run.
# PERF_BUILD=0: use the build already there.
# RESULTS (default bench/RESULTS.md; "-" prints the table only).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-5}
rounds=${2:-3}
qd=${3:-32}
port=${PERF_PORT:-4462}
host_core=${PERF_CORE:-1}
target_core=${TARGET_CORE:-0}
results_file=${RESULTS:-bench/RESULTS.md}
spdk_nqn=nqn.2016-06.io.spdk:cnode0
work=$(mktemp -d)
target_pid=""

. bench/lib/spdk-target.sh

# Either target may take a while to drain; one that has not gone after 10 s is killed.
stop_target() {
  if [ -n "$target_pid" ]; then
    kill -INT "$target_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$target_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$target_pid" 2>/dev/null || true
    wait "$target_pid" 2>/dev/null || true
    target_pid=""
  fi
  spdk_target_stop
}
trap 'stop_target; rm -rf "$work"' EXIT

[ "${PERF_BUILD:-1}" = 1 ] && dotnet build Host -c Release -nologo -v quiet >/dev/null
dll=Host/bin/Release/net10.0/actornvme.dll

start_spdk() {
  spdk_target_start "$target_core" null "$spdk_nqn" "$port"
  nqn=$spdk_nqn
}

start_ours() {
  taskset -c "$target_core" dotnet "$dll" target -a 127.0.0.1 -d 0 -p "$port" --null --size-mib 64 --block-size 4096 \
    -r "$work/actornvme-target.sock" >"$work/ours.log" 2>&1 &
  target_pid=$!
  for _ in $(seq 1 300); do grep -qs "ready" "$work/ours.log" && break; sleep 0.1; done
  nqn=$(awk '/subsystem nqn/ {print $4; exit}' "$work/ours.log")
}

# One spdk_nvme_perf run: "IOPS avg_us min_us max_us" (its Total line: IOPS MiB/s average min max).
run_perf() {
  taskset -c "$host_core" "$bin/spdk_nvme_perf" --no-huge -s 512 -c "$(printf '0x%x' $((1 << host_core)))" -q "$qd" -o 4096 -w "$1" \
    -t "$seconds" -r "trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:$port subnqn:$nqn" 2>/dev/null |
    awk '/^Total/ {print $3, $5, $6, $7}' || true
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
runs=$work/runs.txt
: >"$runs"
for round in $(seq 1 "$rounds"); do
  for peer in spdk ours; do
    "start_$peer"
    for pattern in randread randwrite; do
      line=$(run_perf "$pattern")
      echo "$peer $round $pattern ${line:-0 0 0 0} $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$runs"
    done
    stop_target
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

table=$(python3 - "$runs" "$seconds" "$rounds" "$qd" "$load_before" "$load_after" "$(git rev-parse --short HEAD)" "$(date -u +%Y-%m-%d)" <<'PY'
import statistics, sys
path, seconds, rounds, qd, before, after, commit, day = sys.argv[1:]
runs = [l.split() for l in open(path) if l.strip()]
out = [f"### spdk_nvme_perf against nvmf_tgt and `actornvme target` ({day}, {commit}; QD{qd}, 4 KiB, {seconds} s, {rounds} rounds alternating)",
       "",
       f"Null namespaces on both targets; target on one core, spdk_nvme_perf on the other. Load average (1/5/15 min) before: {before}, after: {after}.",
       "",
       "| target | round | pattern | IOPS | avg µs | min µs | max µs | load (1 min) |",
       "|---|---:|---|---:|---:|---:|---:|---:|"]
for peer, rnd, pattern, iops, avg, mn, mx, load in runs:
    out.append(f"| {peer} | {rnd} | {pattern} | {float(iops):,.0f} | {float(avg):.1f} | {float(mn):.1f} | {float(mx):.1f} | {load} |")
out += ["", "| pattern | nvmf_tgt IOPS (median) | actornvme target IOPS (median) | ratio | nvmf_tgt max µs (worst) | actornvme max µs (worst) |",
        "|---|---:|---:|---:|---:|---:|"]
for pattern in ("randread", "randwrite"):
    s = [r for r in runs if r[0] == "spdk" and r[2] == pattern]
    o = [r for r in runs if r[0] == "ours" and r[2] == pattern]
    si = statistics.median(float(r[3]) for r in s) if s else 0
    oi = statistics.median(float(r[3]) for r in o) if o else 0
    smax = max((float(r[6]) for r in s), default=0)
    omax = max((float(r[6]) for r in o), default=0)
    out.append(f"| {pattern} | {si:,.0f} | {oi:,.0f} | {oi / si if si else 0:.2f} | {smax:,.0f} | {omax:,.0f} |")
print("\n".join(out))
PY
)
echo
echo "$table"
if [ "$results_file" != "-" ]; then
  printf '\n%s\n' "$table" >>"$results_file"
fi
