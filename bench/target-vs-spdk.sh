#!/usr/bin/env bash
# spdk_nvme_perf against SPDK's nvmf_tgt and against `actornvme target`, alternately, same rounds:
# 4 KiB randread and randwrite at one queue depth, null namespaces on both targets. Each target runs
# alone on its core (nvmf_tgt polls its core even when idle, so it is stopped before ours starts).
# Prints one line per run, then appends a Markdown table (every run with IOPS and the latency
# percentiles of spdk_nvme_perf -L, and the medians with the ratio ours/SPDK) to bench/RESULTS.md, with
# the load average before and after. Not a test: timings never gate CI.
#   bench/target-vs-spdk.sh [seconds] [rounds] [queue depth]
# SPDK_BUNDLE: an unpacked SPDK bundle (absolute path); without it scripts/spdk-peer.sh makes the one
#   from ../shared/peers/spdk (relative to the repository) ready.
# PERF_PORT (default 4462): the targets' TCP port on 127.0.0.1.
# PERF_CORE (default 1) / TARGET_CORE (default 0): where spdk_nvme_perf and the target run.
# PERF_BUILD=0: use the build already there.
# RESULTS (default bench/RESULTS.md; "-" prints the table only).
# BASELINE_DLL: another build's actornvme.dll, run as the target "base" in the same rounds (before/after).
# PEERS (default "spdk ours", or "spdk base ours" with BASELINE_DLL): which targets, in round order.
#   A name with "@own" (e.g. "ours@own") starts that target in a session of its own (setsid), see below.
# WARMUP (default 3): seconds of unmeasured randread after each target start, so that the measured runs
#   do not include our target's JIT tiering up its hot path (seen: 0.26 s of the tiered-compilation
#   thread's CPU on the target's core inside a measured 5 s run, and tier-0 code on the hot path).
# SCHED_TRACE=1: records the scheduler (perf sched) during each run and adds, per run, the longest time
#   spdk_nvme_perf's thread and the target's threads were runnable but not running (preempted or woken
#   and waiting for the core): a latency maximum at least as long as the host's own wait is the host's.
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
    # TERM: a background job of a script starts with SIGINT ignored, and .NET keeps it so.
    kill -TERM "$target_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$target_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$target_pid" 2>/dev/null || true
    wait "$target_pid" 2>/dev/null || true
    target_pid=""
  fi
  spdk_target_stop
}
trap 'stop_target; rm -rf "$work"' EXIT

if [ "${SCHED_TRACE:-0}" = 1 ] && ! perf sched record -o /dev/null -- true >/dev/null 2>&1; then
  echo "target-vs-spdk: SCHED_TRACE=1 needs perf with the sched tracepoints (perf sched record failed)" >&2
  exit 1
fi

[ "${PERF_BUILD:-1}" = 1 ] && dotnet build Host -c Release -nologo -v quiet >/dev/null
dll=Host/bin/Release/net10.0/actornvme.dll

# Every target runs in the session of the script and spdk_nvme_perf unless its name ends in "@own": then
# in one of its own (setsid), as a service would. With the kernel's autogroup scheduling that changes the
# weight its threads get against other sessions; measured, a session of its own made our target's
# scheduling waits longer, not shorter (bench/RESULTS.md), so it is not the default.
launcher=

start_spdk() {
  spdk_target_launcher=$launcher
  spdk_target_start "$target_core" null "$spdk_nqn" "$port"
  nqn=$spdk_nqn
}

start_ours() { start_dotnet "$dll"; }
start_base() { start_dotnet "$BASELINE_DLL"; }

start_dotnet() {
  $launcher taskset -c "$target_core" dotnet "$1" target -a 127.0.0.1 -d 0 -p "$port" --null --size-mib 64 --block-size 4096 \
    -r "$work/actornvme-target.sock" >"$work/ours.log" 2>&1 &
  target_pid=$!
  for _ in $(seq 1 300); do grep -qs "ready" "$work/ours.log" && break; sleep 0.1; done
  nqn=$(awk '/subsystem nqn/ {print $4; exit}' "$work/ours.log")
}

# One spdk_nvme_perf run: "IOPS avg_us min_us max_us p50_us p99_us p99.9_us" (its Total line: IOPS MiB/s
# average min max; -L: the percentiles of its latency summary).
run_perf() {
  taskset -c "$host_core" "$bin/spdk_nvme_perf" --no-huge -s 512 -c "$(printf '0x%x' $((1 << host_core)))" -q "$qd" -o 4096 -w "$1" \
    -t "$seconds" -L -r "trtype:tcp adrfam:IPv4 traddr:127.0.0.1 trsvcid:$port subnqn:$nqn" 2>/dev/null |
    awk '/^Total/ {t = $3 " " $5 " " $6 " " $7}
         / 50.00000% :/ {p50 = $3} / 99.00000% :/ {p99 = $3} / 99.90000% :/ {p999 = $3}
         END {if (t != "") {gsub(/us/, "", p50); gsub(/us/, "", p99); gsub(/us/, "", p999); print t, p50 + 0, p99 + 0, p999 + 0}}' || true
}

# The scheduler trace of one run: "host_wait_ms target_wait_ms" (the longest runnable-but-not-running
# stretch of spdk_nvme_perf's main thread, and of any thread of the target process).
sched_summary() {
  perf sched timehist -i "$work/sched.data" --state 2>/dev/null | python3 -c '
import re, sys
target = sys.argv[1]
state, worst = {}, {"host": 0.0, "target": 0.0}
for line in sys.stdin:
    m = re.match(r"\s*[\d.]+\s+\[\d+\]\s+(.*?)\[(\d+)(?:/(\d+))?\]\s+([\d.]+)\s+([\d.]+)\s+[\d.]+\s+(\S+)", line)
    if not m:
        continue
    name, tid, pid, wait, delay, st = m.groups()
    pid = pid or tid
    # Off the core since it was preempted (state R at its last switch-out) or since it was woken: runnable, not running.
    runnable = float(delay) + (float(wait) if state.get(tid) == "R" else 0.0)
    state[tid] = st
    who = "target" if pid == target else "host" if name.strip() == "spdk_nvme_perf" and tid == pid else None
    if who:
        worst[who] = max(worst[who], runnable)
print("%.1f %.1f" % (worst["host"], worst["target"]))
' "$1"
}

# run_perf, and with SCHED_TRACE=1 the scheduler's account of the same seconds appended.
measure() {
  if [ "${SCHED_TRACE:-0}" = 1 ]; then
    perf sched record -a -o "$work/sched.data" -- sleep $((seconds + 2)) >/dev/null 2>&1 &
    local recorder=$!
    sleep 0.5
    local line
    line=$(run_perf "$1")
    wait "$recorder" || true
    echo "${line:-0 0 0 0 0 0 0} $(sched_summary "${target_pid:-$spdk_pid}")"
  else
    local line
    line=$(run_perf "$1")
    echo "${line:-0 0 0 0 0 0 0} - -"
  fi
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
runs=$work/runs.txt
: >"$runs"
peers=${PEERS:-spdk${BASELINE_DLL:+ base} ours}
for round in $(seq 1 "$rounds"); do
  for peer in $peers; do
    launcher=
    [ "${peer#*@}" = own ] && launcher=setsid
    "start_${peer%@*}"
    if [ "${WARMUP:-3}" -gt 0 ]; then
      (seconds=${WARMUP:-3}; run_perf randread >/dev/null)
    fi
    for pattern in randread randwrite; do
      line=$(measure "$pattern")
      echo "$peer $round $pattern $line $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$runs"
    done
    stop_target
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

table=$(python3 - "$runs" "$seconds" "$rounds" "$qd" "$load_before" "$load_after" "$(git rev-parse --short HEAD)" "$(date -u +%Y-%m-%d)" <<'PY'
import statistics, sys
path, seconds, rounds, qd, before, after, commit, day = sys.argv[1:]
runs = [l.split() for l in open(path) if l.strip()]
names = {"spdk": "nvmf_tgt", "ours": "actornvme target", "base": "actornvme target (baseline)"}
names.update({k + "@own": v + ", in a session of its own" for k, v in list(names.items())})
peers = list(dict.fromkeys(r[0] for r in runs))
out = [f"### spdk_nvme_perf against nvmf_tgt and `actornvme target` ({day}, {commit}; QD{qd}, 4 KiB, {seconds} s, {rounds} rounds alternating)",
       "",
       f"Null namespaces on both targets; target on one core, spdk_nvme_perf on the other. Load average (1/5/15 min) before: {before}, after: {after}.",
       "",
       "| target | round | pattern | IOPS | avg µs | p50 µs | p99 µs | p99.9 µs | max µs | host waited ms | target waited ms | load (1 min) |",
       "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
for peer, rnd, pattern, iops, avg, mn, mx, p50, p99, p999, host_wait, target_wait, load in runs:
    out.append(f"| {names.get(peer, peer)} | {rnd} | {pattern} | {float(iops):,.0f} | {float(avg):.1f} | {float(p50):,.0f} | {float(p99):,.0f} | {float(p999):,.0f} | {float(mx):,.0f} | {host_wait} | {target_wait} | {load} |")
if any(r[10] != "-" for r in runs):
    out += ["", "Waited: the longest stretch (scheduler trace) in which spdk_nvme_perf's thread, or a thread of the target, was runnable but not running."]
def med(rows, i):
    return statistics.median(float(r[i]) for r in rows) if rows else 0
out += ["", "Medians per target (max: the worst run); ratio: IOPS against nvmf_tgt's median.", "",
        "| pattern | target | IOPS | ratio | p50 µs | p99 µs | p99.9 µs | max µs (median) | max µs (worst) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
for pattern in ("randread", "randwrite"):
    spdk = [r for r in runs if r[0] == "spdk" and r[2] == pattern]
    for peer in peers:
        rows = [r for r in runs if r[0] == peer and r[2] == pattern]
        ratio = med(rows, 3) / med(spdk, 3) if spdk and med(spdk, 3) else 0
        worst = max((float(r[6]) for r in rows), default=0)
        out.append(f"| {pattern} | {names.get(peer, peer)} | {med(rows, 3):,.0f} | {ratio:.2f} | {med(rows, 7):,.0f} | {med(rows, 8):,.0f} | {med(rows, 9):,.0f} | {med(rows, 6):,.0f} | {worst:,.0f} |")
print("\n".join(out))
PY
)
echo
echo "$table"
if [ "$results_file" != "-" ]; then
  printf '\n%s\n' "$table" >>"$results_file"
fi
