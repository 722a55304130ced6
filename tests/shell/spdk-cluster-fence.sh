#!/usr/bin/env bash
# test-timeout: 300
# The cluster's single writer at SPDK's nvmf_tgt (no hugepages, 127.0.0.1): six subsystems open to any host,
# each a malloc namespace, listed by nvmf_tgt's discovery subsystem; three `actornvme serve --cluster` nodes
# (127.0.0.1, one SQLite store, one host NQN, each its own host identifier and reservation key) attach them
# and run writers that write, acknowledge, read back and compare. Then `kill -9` of the non-seed node that
# owns the most subsystems. Checked for each of its subsystems, on the survivor that takes it over:
#   - the survivor fenced the killed node (Reservation Acquire, preempt and abort of the killed node's key)
#     before its first write: fence begun → fenced → ledger read back → first acknowledged write, in that order;
#   - the killed node's registration is gone (the namespace's Reservation Report, asked through the survivor
#     before its first write, lists only the survivor's key, as the holder);
#   - SPDK's nvmf_subsystem_get_controllers lists the survivor's host identifier and not the killed node's;
#   - no acknowledged write lost: every block the killed node had acknowledged reads back (through the
#     survivor, before it writes) with that write or a later one of the same writer;
# and no writer saw a read-back mismatch. The timeline is printed. Logs in artifacts/spdk-cluster-fence/.
# Exit: 0 passed, 1 failed, 77 skipped (no SPDK bundle at ../shared/peers/spdk, or not root).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=spdk-cluster-fence
dll=${ACTORNVME_DLL:-Host/bin/Release/net10.0/actornvme.dll}
if [ "$(id -u)" -ne 0 ]; then
  echo "$me: SKIP (nvmf_tgt is run as root only)"
  exit 77
fi
# shellcheck source=lib/preflight.sh
. tests/shell/lib/preflight.sh
require_spdk_bundle
require_built "$dll"
dll=$(realpath "$dll")

subsystems=6
nqn_prefix=nqn.2016-06.io.spdk:clusterfence
logs=artifacts/spdk-cluster-fence
mkdir -p "$logs"
rm -f "$logs"/*.log
work=$(mktemp -d /tmp/anvme-clusterfence.XXXXXX)
tgt_sock=$work/tgt.sock
tgt_pid=
declare -A node_pid=()
names=(node-a node-b node-c)

fail() {
  echo "$me: FAIL ($*; logs in $logs)"
  exit 1
}

cleanup() {
  local name
  for name in "${!node_pid[@]}"; do
    kill -TERM "${node_pid[$name]}" 2>/dev/null || true
  done
  for name in "${!node_pid[@]}"; do
    timeout 30 tail --pid="${node_pid[$name]}" -f /dev/null 2>/dev/null || kill -KILL "${node_pid[$name]}" 2>/dev/null || true
  done
  [ -z "$tgt_pid" ] || { kill -INT "$tgt_pid" 2>/dev/null || true; wait "$tgt_pid" 2>/dev/null || true; rm -rf "/var/run/dpdk/spdk_pid$tgt_pid"; }
  cp "$work"/*.log "$logs"/ 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

now_ms() { date +%s%3N; }
spdk_rpc() { python3 "$bundle/scripts/rpc.py" -s "$tgt_sock" "$@" || fail "rpc.py $*"; }
free_ports() {
  python3 -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(" ".join(str(x.getsockname()[1]) for x in s))
for x in s: x.close()' "$1"
}
# events NODE CHANGE NQN: "ms detail" of every CLUSTER-EVENT line of that change for that subsystem in NODE's log.
events() {
  awk -v change="$2" -v nqn="$3" '$1 == "CLUSTER-EVENT" && $4 == change && $5 == nqn { d = ""; for (i = 6; i <= NF; i++) d = d " " $i; print $2 d }' "$work/$1.log"
}

read -r disc_port nvm_port p_a p_b p_c < <(free_ports 5)
ports=("$p_a" "$p_b" "$p_c")

"$bundle/build/bin/nvmf_tgt" -m 0x1 --no-huge -s 1024 --disable-cpumask-locks --wait-for-rpc -r "$tgt_sock" >"$work/tgt.log" 2>&1 &
tgt_pid=$!
until [ -S "$tgt_sock" ]; do
  kill -0 "$tgt_pid" 2>/dev/null || fail "nvmf_tgt exited at start"
  [ "$SECONDS" -lt 60 ] || fail "nvmf_tgt's RPC socket did not appear within 60 s"
  sleep 0.1
done
spdk_rpc sock_impl_set_options -i posix --no-zerocopy-send-server >/dev/null
spdk_rpc framework_start_init >/dev/null
spdk_rpc nvmf_create_transport -t TCP >/dev/null
for i in $(seq 1 "$subsystems"); do
  spdk_rpc bdev_malloc_create 8 512 -b "Malloc$i" >/dev/null
  spdk_rpc nvmf_create_subsystem "$nqn_prefix$i" -a -s "SPDKCLU$(printf %013d "$i")" >/dev/null
  spdk_rpc nvmf_subsystem_add_ns "$nqn_prefix$i" "Malloc$i" >/dev/null
  spdk_rpc nvmf_subsystem_add_listener "$nqn_prefix$i" -t tcp -a 127.0.0.1 -s "$nvm_port" >/dev/null
done
spdk_rpc nvmf_subsystem_add_listener discovery -t tcp -a 127.0.0.1 -s "$disc_port" >/dev/null
echo "$me: nvmf_tgt (pid $tgt_pid): discovery on 127.0.0.1:$disc_port, ${nqn_prefix}1..$subsystems on 127.0.0.1:$nvm_port, 8 MiB malloc namespace each"

host_nqn="nqn.2014-08.org.nvmexpress:uuid:$(cat /proc/sys/kernel/random/uuid)"
t0=$(now_ms)
for i in 0 1 2; do
  name=${names[$i]}
  (cd "$work" && exec dotnet "$dll" serve --cluster --node-name "$name" --port "${ports[$i]}" --seed-node "127.0.0.1:${ports[0]}" \
    --discovery-address "127.0.0.1:$disc_port" --min-members 3 --stable-after 5 --heartbeat-pause 5 --reconcile-interval 0.5 \
    --io-writer --host-nqn "$host_nqn" --cluster-store "sqlite:$work/store.db" --rpc-socket "$work/$name.sock") >"$work/$name.log" 2>&1 &
  node_pid[$name]=$!
done

# owner NQN: the node whose latest DeviceUp (after the fence) for NQN is the newest; empty while none.
owner() {
  local name best="" best_ms=0 ms
  for name in "${names[@]}"; do
    ms=$(events "$name" DeviceUp "$1" | tail -n 1 | cut -d' ' -f1)
    if [ -n "$ms" ] && [ "$ms" -gt "$best_ms" ]; then best=$name; best_ms=$ms; fi
  done
  echo "$best"
}
declare -A owner_of=()
until_ms=$(( $(now_ms) + 150000 ))
while :; do
  up=0
  for i in $(seq 1 "$subsystems"); do
    o=$(owner "$nqn_prefix$i")
    owner_of[$i]=$o
    [ -z "$o" ] || up=$((up + 1))
  done
  [ "$up" -lt "$subsystems" ] || break
  for name in "${names[@]}"; do
    kill -0 "${node_pid[$name]}" 2>/dev/null || fail "$name exited at start"
  done
  [ "$(now_ms)" -lt "$until_ms" ] || fail "only $up of $subsystems subsystems fenced and handed to writers within 150 s"
  sleep 0.5
done
echo "$me: $(( ($(now_ms) - t0) / 1000 )) s after start, every subsystem attached, fenced and written: $(for i in $(seq 1 "$subsystems"); do printf '%s→%s ' "clusterfence$i" "${owner_of[$i]}"; done)"
sleep 3 # the writers acknowledge writes

victim=
victim_count=0
for name in node-b node-c; do
  count=0
  for i in $(seq 1 "$subsystems"); do [ "${owner_of[$i]}" != "$name" ] || count=$((count + 1)); done
  if [ "$count" -gt "$victim_count" ]; then victim=$name; victim_count=$count; fi
done
[ -n "$victim" ] || fail "the seed node owns every subsystem: nothing to take over"
moved=()
for i in $(seq 1 "$subsystems"); do [ "${owner_of[$i]}" != "$victim" ] || moved+=("$nqn_prefix$i"); done
victim_key=$(grep -m1 -o 'register key 0x[0-9a-f]*' "$work/$victim.log" | awk '{print $3}')
victim_hostid=$(grep -m1 ' NodeStarted ' "$work/$victim.log" | sed -n 's/.* hostid \([0-9a-f-]*\).*/\1/p')
[ -n "$victim_key" ] && [ -n "$victim_hostid" ] || fail "no reservation key or host identifier of $victim in its log"

kill_ms=$(now_ms)
kill -KILL "${node_pid[$victim]}"
wait "${node_pid[$victim]}" 2>/dev/null || true
unset "node_pid[$victim]"
echo "$me: kill -9 $victim (host id $victim_hostid, reservation key $victim_key), owner of ${#moved[@]}: ${moved[*]##*:}"

survivors=()
for name in "${names[@]}"; do [ "$name" = "$victim" ] || survivors+=("$name"); done
secs() { awk -v ms="$1" 'BEGIN { printf "%.2f", ms / 1000 }'; }
# after NODE CHANGE NQN: the first ms (and detail) of that event on NODE at or after the kill.
after() { events "$1" "$2" "$3" | awk -v since="$kill_ms" '!done && $1 >= since { print; done = 1 }'; } # reads all: no broken pipe

until_ms=$(( kill_ms + 90000 ))
declare -A new_owner=()
while :; do
  pending=0
  for nqn in "${moved[@]}"; do
    [ -z "${new_owner[$nqn]:-}" ] || continue
    for name in "${survivors[@]}"; do
      if [ -n "$(after "$name" DeviceUp "$nqn")" ] && grep -q "^CLUSTER-IO-ACK [0-9]* $name $nqn " "$work/$name.log"; then
        new_owner[$nqn]=$name
      fi
    done
    [ -n "${new_owner[$nqn]:-}" ] || pending=$((pending + 1))
  done
  [ "$pending" -gt 0 ] || break
  [ "$(now_ms)" -lt "$until_ms" ] || fail "$pending subsystem(s) of $victim not taken over (fenced, written) within 90 s"
  sleep 0.5
done

for nqn in "${moved[@]}"; do
  survivor=${new_owner[$nqn]}
  short=${nqn##*:}
  begun=$(after "$survivor" FenceBegin "$nqn")
  fenced=$(after "$survivor" Fenced "$nqn")
  registrants=$(after "$survivor" Registrants "$nqn")
  device_up=$(after "$survivor" DeviceUp "$nqn")
  readback_ms=$(awk -v nqn="$nqn" -v node="$survivor" -v since="$kill_ms" '$1 == "CLUSTER-IO-READBACK" && $3 == node && $4 == nqn && $2 >= since { print $2; exit }' "$work/$survivor.log")
  first_ack_ms=$(awk -v nqn="$nqn" -v node="$survivor" -v since="$kill_ms" '$1 == "CLUSTER-IO-ACK" && $3 == node && $4 == nqn && $2 >= since { print $2; exit }' "$work/$survivor.log")
  attached=$(after "$survivor" Attached "$nqn")
  for v in begun fenced registrants device_up readback_ms first_ack_ms attached; do
    [ -n "${!v}" ] || fail "$short on $survivor: no $v after the kill"
  done
  b=${begun%% *} f=${fenced%% *} r=${registrants%% *} u=${device_up%% *} a=${attached%% *}
  [ "$b" -le "$f" ] && [ "$f" -le "$u" ] && [ "$f" -le "$r" ] && [ "$r" -le "$readback_ms" ] && [ "$readback_ms" -le "$first_ack_ms" ] \
    || fail "$short on $survivor: not fence begun ($b) → fenced ($f) → registrants ($r) → ledger read back ($readback_ms) → first acknowledged write ($first_ack_ms)"
  grep -q "preempted and aborted .*(key $victim_key)" <<<"$fenced" || fail "$short on $survivor: the fence did not preempt $victim's key $victim_key:$fenced"
  survivor_key=$(after "$survivor" FenceBegin "$nqn" | grep -o 'register key 0x[0-9a-f]*' | awk '{print $3}')
  grep -q "registrants ${survivor_key}:holder\$" <<<"$registrants" || fail "$short on $survivor: the reservation report is not the survivor's key alone, as the holder:$registrants"
  ! grep -q "$victim_key" <<<"$registrants" || fail "$short on $survivor: $victim's registration is still there:$registrants"

  # The survivors may rebalance the subsystem meanwhile (a handover, CC.SHN first): any survivor's controller will do.
  survivor_ids=$(for name in "${survivors[@]}"; do grep -m1 ' NodeStarted ' "$work/$name.log" | sed -n 's/.* hostid \([0-9a-f-]*\).*/\1/p'; done | paste -sd'|')
  until_ms=$(( $(now_ms) + 20000 ))
  while :; do
    hostids=$(spdk_rpc nvmf_subsystem_get_controllers "$nqn" | python3 -c 'import json, sys; print(" ".join(c.get("hostid", "").lower() for c in json.load(sys.stdin)))')
    ! grep -qw "$victim_hostid" <<<"$hostids" || fail "$short: SPDK still lists a controller of $victim ($victim_hostid): $hostids"
    grep -qwE "$survivor_ids" <<<"$hostids" && break
    [ "$(now_ms)" -lt "$until_ms" ] || fail "$short: SPDK lists no controller of a survivor ($survivor_ids): $hostids"
    sleep 0.5
  done

  # The ledger: the killed node's last acknowledged write per block against what the survivor read back.
  ledger=$(python3 - "$work/$victim.log" "$work/$survivor.log" "$nqn" "$victim" "$survivor" "$kill_ms" <<'EOF'
import sys
victim_log, survivor_log, nqn, victim, survivor, kill_ms = sys.argv[1:7]
acked = {}
for line in open(victim_log, errors="replace"):
    f = line.split()
    if len(f) == 5 and f[0] == "CLUSTER-IO-ACK" and f[3] == nqn:
        lba, stamp = f[4].split("=", 1)
        acked[lba] = stamp
readback = None
for line in open(survivor_log, errors="replace"):
    f = line.split()
    if len(f) >= 4 and f[0] == "CLUSTER-IO-READBACK" and f[2] == survivor and f[3] == nqn and int(f[1]) >= int(kill_ms):
        readback = dict(e.split("=", 1) for e in f[4:])
        break
if readback is None:
    print("0 0 no-readback"); sys.exit()
def later(got, expected):
    g, e = got.rpartition(":"), expected.rpartition(":")
    return g[0] == e[0] and g[2].isdigit() and e[2].isdigit() and int(g[2]) > int(e[2])
lost = [f"lba {l}: acknowledged {s}, read {readback.get(l, 'missing')}" for l, s in acked.items() if readback.get(l) != s and not later(readback.get(l, "-"), s)]
print(len(acked), len(lost), "; ".join(lost[:3]) or "-")
EOF
)
  read -r checked lost detail <<<"$ledger"
  [ "$checked" -gt 0 ] || fail "$short: no write of $victim acknowledged, or no ledger read back by $survivor ($detail)"
  [ "$lost" -eq 0 ] || fail "$short: $lost acknowledged write(s) of $victim lost: $detail"
  echo "$me: $short → $survivor: seconds after the kill: attached +$(secs $((a - kill_ms))), fence begun +$(secs $((b - kill_ms))), fenced +$(secs $((f - kill_ms))) (preempted and aborted key $victim_key), registrants read +$(secs $((r - kill_ms))) (only $survivor_key, holder), device up +$(secs $((u - kill_ms))), ledger read back +$(secs $((readback_ms - kill_ms))) ($checked acknowledged block(s) of $victim checked, 0 lost), first write acknowledged +$(secs $((first_ack_ms - kill_ms))); SPDK's controllers: a survivor's host id ($hostids), not $victim's"
done

if grep -h '^CLUSTER-IO-ERROR' "$work"/node-*.log; then
  fail "a writer read back something other than its acknowledged write"
fi
echo "$me: PASS (${#moved[@]} subsystem(s) of the killed $victim fenced and taken over at SPDK's nvmf_tgt; $SECONDS s in all)"
