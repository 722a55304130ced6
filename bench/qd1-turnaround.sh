#!/usr/bin/env bash
# Where a queue-depth-1 read's time goes, host by host, against SPDK's nvmf_tgt: the target's part
# (command sent -> CapsuleResp sent) and the host's part (CapsuleResp sent -> next command sent), from
# the kernel's packet timestamps on loopback, plus system calls per I/O. The target's part is the
# same code for both hosts, so the difference in the host's part is what a host can still win.
#   bench/qd1-turnaround.sh [seconds per run] [rounds]
# Needs dumpcap and tshark (Debian: tshark) and perf (linux-perf) for the system call counts.
# The target and dumpcap run on core 0 (dumpcap only copies what the kernel timestamped already),
# the hosts on core 1, one after the other.
# PERF_BASELINE_DLL: another build's actornvme.dll (say, main's), run in the same rounds as "baseline".
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-6}
rounds=${2:-2}
port=${PERF_PORT:-4460}
nqn=nqn.2016-06.io.spdk:cnode0
work=$(mktemp -d)

. bench/lib/spdk-target.sh
spdk_bench_start 0 "$port" "$nqn"
events=syscalls:sys_enter_recvfrom,syscalls:sys_enter_readv,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_epoll_wait

# run NAME PATTERN COMMAND...: starts the host, captures 1 s and counts its system calls for 2 s once warm.
run() {
  local name=$1 pattern=$2
  shift 2
  taskset -c 1 "$@" >"$work/$name.out" 2>&1 &
  local host=$!
  sleep 3
  local pid
  pid=$(pgrep -f "$pattern" | head -1)
  taskset -c 0 timeout 1 dumpcap -q -i lo -f "tcp port $port" -s 96 -w "$work/$name.pcapng" >/dev/null 2>&1 || true
  if command -v perf >/dev/null; then
    perf stat -x, -e "$events" -p "$pid" -- sleep 2 2>"$work/$name.stat" || true
  fi
  wait "$host" || true
}

for round in $(seq 1 "$rounds"); do
  run "spdk-$round" spdk_nvme_perf "$bin/spdk_nvme_perf" --no-huge -s 512 -c 0x2 -q 1 -o 4096 -w randread -t "$seconds" -a 1 -r "$trid"
  run "actornvme-$round" "actornvme.dll perf" dotnet "$perf_dll" perf -r "$trid" -q 1 -o 4096 -w randread -t "$seconds" -a 1
  if [ -n "${PERF_BASELINE_DLL:-}" ]; then
    run "baseline-$round" "actornvme.dll perf" dotnet "$PERF_BASELINE_DLL" perf -r "$trid" -q 1 -o 4096 -w randread -t "$seconds" -a 1
  fi
done

for file in "$work"/*.pcapng; do
  name=$(basename "$file" .pcapng)
  tshark -r "$file" -T fields -e frame.time_epoch -e tcp.srcport -e tcp.len 2>/dev/null >"$work/$name.tsv" || true
done

python3 - "$work" "$port" <<'EOF'
import glob, os, statistics, sys
work, port = sys.argv[1], sys.argv[2]
def median(values):
    return statistics.median(values) if values else float("nan")
print("| run | IOPS (avg µs) | target: command -> CapsuleResp µs | of which C2HData -> CapsuleResp µs | host: CapsuleResp -> next command µs | segments per I/O | receives / sends / epoll_wait per I/O |")
print("|---|---:|---:|---:|---:|---:|---:|")
for tsv in sorted(glob.glob(os.path.join(work, "*.tsv")), key=lambda p: (p.rsplit("-", 1)[1], p)):
    name = os.path.basename(tsv)[:-4]
    target, gap, host = [], [], []
    command = data = response = None
    segments = commands = 0
    for line in open(tsv):
        parts = line.split()
        if len(parts) < 3:
            continue
        t, source, length = float(parts[0]) * 1e6, parts[1], int(parts[2])
        segments += 1
        if source != port and 0 < length < 100:
            commands += 1
            if response is not None:
                host.append(t - response)
            command, response = t, None
        elif source == port and length > 1000:
            data = t
        elif source == port and 0 < length < 100 and command is not None:
            target.append(t - command)
            if data is not None and data > command:
                gap.append(t - data)
            response = t
    out = open(os.path.join(work, name + ".out")).read()
    iops = avg = "?"
    for line in out.splitlines():
        fields = line.split()
        if line.startswith("Total") and len(fields) >= 5:
            iops, avg = fields[2], fields[4]
        elif line.startswith("nvme0n1") and len(fields) >= 8:
            iops, avg = fields[-8], fields[-6]
    calls = {}
    stat = os.path.join(work, name + ".stat")
    if os.path.exists(stat):
        for line in open(stat):
            f = line.strip().split(",")
            if len(f) > 2 and f[0].replace(".", "").isdigit():
                calls[f[2].split("sys_enter_")[-1]] = float(f[0])
    ios = calls.get("sendto", 0) + calls.get("sendmsg", 0)
    per = (f"{(calls.get('recvfrom', 0) + calls.get('readv', 0)) / ios:.2f} / 1 / {calls.get('epoll_wait', 0) / ios:.1f}" if ios else "-")
    print(f"| {name} | {iops} ({avg}) | {median(target):.2f} | {median(gap):.2f} | {median(host):.2f} | {segments / max(commands, 1):.1f} | {per} |")
EOF
