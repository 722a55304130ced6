#!/usr/bin/env bash
# test-timeout: 900
# Multipath chaos against the Linux kernel target (nvmet-tcp in QEMU, scripts/nvmet-qemu): cnode0 is linked
# to two ports (1: 8009, 2: 4420), so it has two paths; `actornvme soak` runs 16 writers doing
# write-then-verify over both (active_passive) while this script breaks one path at a time every 0.5-3 s:
# the port's ANA group flipped to inaccessible (and back to optimized), or cnode0 unlinked from the port
# (its controllers there dropped) and linked again. Then, with both ports optimized and no fault, a short
# soak under active_active round_robin. Passes when no acknowledged write was lost, every read was right,
# the commands nvmet refused with an ANA state stay within what can be in flight when ANA states change,
# reads resumed on the other path within 1 s of every path loss (failover time p50/p99/max printed), and
# round robin spread the commands over the two paths within 10% (tests/shell/lib/soak-checks.sh says why).
# nvmet counts nothing per port, so the ANA refusals are its answers as the host counted them.
# Settings: ACTORNVME_LINUX_SOAK_SECONDS (default 300), ACTORNVME_SOAK_SPREAD_SECONDS (default 10),
# ACTORNVME_SOAK_KATO_MS (default 2000). The timeout covers the guest's boot (up to 180 s emulated, more
# while it waits for another run's guest), both soaks and the settle. Its own namespace and guest, so it
# never shares the real-peer suite's. Exit: 0 passed, 1 failed, 77 skipped (not root, or the harness's
# tools missing).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=linux-multipath-soak
seconds=${ACTORNVME_LINUX_SOAK_SECONDS:-300}
spread_seconds=${ACTORNVME_SOAK_SPREAD_SECONDS:-10}
writers=16
readers=4
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
# shellcheck source=lib/soak-checks.sh
. tests/shell/lib/soak-checks.sh

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
dotnet "$DLL" soak -p "$ACTORNVME_NVMET_ADDR:8009" -p "$ACTORNVME_NVMET_ADDR:4420" -n "$NQN" -t "$SECONDS_TO_RUN" -w "$WRITERS" -b 64 -r "$READERS" -c 30 -k "$KATO_MS" --json >"$WORK/soak.log" 2>&1 &
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
[ "$rc" -eq 0 ] || exit "$rc"
# Both ports are linked and optimized again (every fault above was undone before the loop ended).
dotnet "$DLL" soak -p "$ACTORNVME_NVMET_ADDR:8009" -p "$ACTORNVME_NVMET_ADDR:4420" -n "$NQN" -t "$SPREAD_SECONDS" -w "$WRITERS" -b 64 -r "$READERS" -k "$KATO_MS" --policy active_active --json >"$WORK/spread.log" 2>&1
INSIDE

rc=0
DLL=$dll NQN=$nqn SECONDS_TO_RUN=$seconds SPREAD_SECONDS=$spread_seconds WRITERS=$writers READERS=$readers KATO_MS=$kato_ms WORK=$work \
  scripts/nvmet-qemu/nvmet.sh with -- bash "$work/inside.sh" >"$work/harness.log" 2>&1 || rc=$?
summary=$(grep '^{' "$work/soak.log" 2>/dev/null | tail -n 1 || true)
if [ -z "$summary" ]; then
  echo "$me: FAIL (no soak summary; harness exit $rc)"
  tail -n 30 "$work/harness.log"; tail -n 30 "$work/soak.log" 2>/dev/null || true
  exit 1
fi
faults=$(cat "$work/faults.count" 2>/dev/null || echo 0)
ana_faults=$(grep -c ' ana ' "$work/faults.log" 2>/dev/null || true)
grep '^soak: ' "$work/soak.log" | sed "s/^/$me: /"
echo "$me: $faults faults in $seconds s against Linux $(cat "$work/kernel" 2>/dev/null || echo '(version unknown)') nvmet ($ana_faults ANA flips to inaccessible and back, $((faults - ana_faults)) unlinks and links)"
soak_check_chaos "$summary" "${ana_faults:-0}" $((writers + readers)) "$kato_ms"
[ "$faults" -gt 0 ] || soak_fail "no fault was injected"
spread=$(grep '^{' "$work/spread.log" 2>/dev/null | tail -n 1 || true)
if [ -z "$spread" ]; then
  echo "$me: FAIL (no summary from the active_active soak; harness exit $rc)"
  tail -n 30 "$work/harness.log"; tail -n 30 "$work/spread.log" 2>/dev/null || true
  exit 1
fi
soak_check_spread "$spread"
[ "$rc" -eq 0 ] || { echo "$me: FAIL (harness or soak exit $rc)"; tail -n 20 "$work/harness.log"; exit 1; }
echo "$me: PASS ($SECONDS s in all)"
