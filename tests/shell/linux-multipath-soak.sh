#!/usr/bin/env bash
# test-timeout: 600
# Multipath chaos against the Linux kernel target (nvmet-tcp in QEMU, scripts/nvmet-qemu): cnode0 is linked
# to two ports (1: 8009, 2: 4420), so it has two paths; `actornvme soak` runs 16 writers doing
# write-then-verify over both (active_passive) while this script breaks one path at a time every 0.5-3 s:
# the port's ANA group flipped to inaccessible (and back to optimized), or cnode0 unlinked from the port
# (its controllers there dropped) and linked again. Passes when no acknowledged write was lost and every
# read was right; prints the I/O stalls (failover times) next to the number of faults.
# Settings: ACTORNVME_LINUX_SOAK_SECONDS (default 180: the guest is emulated, each second costs more than
# against SPDK), ACTORNVME_SOAK_KATO_MS (default 2000). Its own namespace and guest, so it never shares
# the real-peer suite's. Exit: 0 passed, 1 failed, 77 skipped (not root, or the harness's tools missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=linux-multipath-soak
seconds=${ACTORNVME_LINUX_SOAK_SECONDS:-180}
kato_ms=${ACTORNVME_SOAK_KATO_MS:-2000}
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
nqn=nqn.2016-06.io.spdk:cnode0

if [ "$(id -u)" -ne 0 ]; then
  echo "$me: SKIP (needs root for the harness's network namespace)"
  exit 77
fi
for tool in qemu-system-x86_64 jq ip flock; do
  if ! command -v "$tool" >/dev/null; then
    echo "$me: SKIP ($tool is not installed; scripts/ensure-deps.sh installs it as root)"
    exit 77
  fi
done
if [ ! -f "$dll" ]; then
  echo "$me: FAIL ($dll is not built; run dotnet build -c Release first)"
  exit 1
fi

export ACTORNVME_NVMET_NETNS=anvme-soak-$$
work=$(mktemp -d /tmp/anvme-lsoak.XXXXXX)
logs=artifacts/linux-multipath-soak
export ACTORNVME_NVMET_LOGDIR=$logs
mkdir -p "$logs"
cleanup() {
  cp "$work"/*.log "$logs"/ 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Runs inside the harness's namespace (nvmet.sh with): the soak in the background, faults in the foreground.
cat >"$work/inside.sh" <<'INSIDE'
set -euo pipefail
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
ms_between() { awk -v lo="$1" -v hi="$2" 'BEGIN { srand(); printf "%.3f\n", (lo + rand() * (hi - lo)) / 1000 }'; }
guest() { scripts/nvmet-qemu/nvmet.sh exec "$1" >/dev/null; }
echo "${ACTORNVME_NVMET_KERNEL:-unknown}" >"$WORK/kernel"
dotnet "$DLL" soak -p "$ACTORNVME_NVMET_ADDR:8009" -p "$ACTORNVME_NVMET_ADDR:4420" -n "$NQN" -t "$SECONDS_TO_RUN" -w 16 -b 64 -r 4 -c 30 -k "$KATO_MS" --json >"$WORK/soak.log" 2>&1 &
soak=$!
until grep -q '^soak: ' "$WORK/soak.log" 2>/dev/null; do
  kill -0 "$soak" 2>/dev/null || { echo "soak exited at start: $(tail -n 20 "$WORK/soak.log")"; exit 1; }
  sleep 0.2
done
faults=0
: >"$WORK/faults.log"
while kill -0 "$soak" 2>/dev/null; do
  sleep "$(ms_between 500 3000)"
  kill -0 "$soak" 2>/dev/null || break
  port=$((1 + RANDOM % 2))
  echo "$(now_ms) $([ $((RANDOM % 2)) -eq 0 ] && echo ana || echo unlink) $port" >>"$WORK/faults.log"
  if [ "$(tail -n 1 "$WORK/faults.log" | cut -d' ' -f2)" = ana ]; then
    guest "nvmet-ana $port 1 inaccessible"
    sleep "$(ms_between 1000 3000)"
    guest "nvmet-ana $port 1 optimized"
  else
    guest "nvmet-unlink $NQN $port"
    sleep "$(ms_between 1000 3000)"
    guest "nvmet-link $NQN $port"
  fi
  faults=$((faults + 1))
done
rc=0
wait "$soak" || rc=$?
echo "$faults" >"$WORK/faults.count"
exit "$rc"
INSIDE

rc=0
DLL=$dll NQN=$nqn SECONDS_TO_RUN=$seconds KATO_MS=$kato_ms WORK=$work \
  scripts/nvmet-qemu/nvmet.sh with -- bash "$work/inside.sh" >"$work/harness.log" 2>&1 || rc=$?
summary=$(grep '^{' "$work/soak.log" 2>/dev/null | tail -n 1 || true)
if [ -z "$summary" ]; then
  echo "$me: FAIL (no soak summary; harness exit $rc)"
  tail -n 30 "$work/harness.log"; tail -n 30 "$work/soak.log" 2>/dev/null || true
  exit 1
fi
faults=$(cat "$work/faults.count" 2>/dev/null || echo 0)
grep '^soak: ' "$work/soak.log" | sed "s/^/$me: /"
echo "$me: $faults faults in $seconds s against Linux $(cat "$work/kernel" 2>/dev/null || echo '(version unknown)') nvmet"
echo "$me: $(jq -r '"\(.writes) writes, \(.reads) reads, \(.write_errors) write errors, \(.read_errors) read errors; \(.lost_acknowledged_writes) lost acknowledged writes, \(.bad_reads) bad reads; \(.stall_count) I/O stalls over \(.stalls_over_ms) ms: p50 \(.stall_p50_ms) ms, p99 \(.stall_p99_ms) ms, max \(.stall_max_ms) ms"' <<<"$summary")"
echo "$me: commands the target refused with an ANA state (on a path it would not serve; the host stops using such a path once it knows): $(jq -r .ana_refusals <<<"$summary")"
echo "$me: readers (no write gates them): $(jq -r '"\(.reader_reads) reads, \(.reader_errors) errors; \(.read_stall_count) read gaps over \(.stalls_over_ms) ms (path loss to the first read done elsewhere): p50 \(.read_stall_p50_ms) ms, p99 \(.read_stall_p99_ms) ms, max \(.read_stall_max_ms) ms"' <<<"$summary")"
[ "$(jq -r .lost_acknowledged_writes <<<"$summary")" = 0 ] || { echo "$me: FAIL (acknowledged writes lost: $(jq -c '.problems[:5]' <<<"$summary"))"; exit 1; }
[ "$(jq -r .bad_reads <<<"$summary")" = 0 ] || { echo "$me: FAIL (bad reads: $(jq -c '.problems[:5]' <<<"$summary"))"; exit 1; }
[ "$(jq -r .writes <<<"$summary")" -gt 0 ] || { echo "$me: FAIL (no write completed)"; exit 1; }
[ "$faults" -gt 0 ] || { echo "$me: FAIL (no fault was injected)"; exit 1; }
[ "$rc" -eq 0 ] || { echo "$me: FAIL (harness or soak exit $rc)"; tail -n 20 "$work/harness.log"; exit 1; }
echo "$me: PASS ($SECONDS s in all)"
