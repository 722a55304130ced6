#!/usr/bin/env bash
# The Linux kernel NVMe/TCP target (nvmet-tcp) as a test peer: Debian's kernel booted in QEMU
# (software emulation), its network reachable only inside a network namespace this script creates.
#
#   nvmet.sh up                 build/reuse the guest image, create the namespace and tap, boot,
#                               configure nvmet (nvmet-default), wait until GUEST:8009 accepts TCP
#   nvmet.sh exec 'CMD'         run CMD in the guest (sh -c), print its output, exit with its code
#   nvmet.sh run -- COMMAND...  run COMMAND inside the namespace with the ACTORNVME_NVMET_* variables
#   nvmet.sh down               stop QEMU, delete the namespace (idempotent)
#   nvmet.sh with -- COMMAND... up; run; down (down also when anything fails or is interrupted)
#   nvmet.sh status             say whether the guest is up
#
# Network (exists only inside the namespace; nothing here touches the root namespace's network):
#   guest eth0 10.0.0.2/24  <->  tap device in the namespace, 10.0.0.1/24
# The namespace has no other interface and no route out, so tests may remove addresses or take
# the guest's interface down without any traffic leaving the machine.
#
# Environment (all optional):
#   ACTORNVME_NVMET_NETNS    namespace name (default actornvme-nvmet)
#   ACTORNVME_NVMET_RUNDIR   sockets, pid files, logs (default /tmp/actornvme-nvmet.<netns>)
#   ACTORNVME_NVMET_CAPTURE  if set, a pcapng file: every packet on the tap device is captured
#                            into it from `up` until `down`
#   ACTORNVME_NVMET_LOGDIR   if set, `down` copies the guest console log and QEMU's log there
#   ACTORNVME_NVMET_BOOT_TIMEOUT  seconds to wait for the guest's ready line (default 180)
#   ACTORNVME_NVMET_LOCK_WAIT     seconds `with` waits while another `with` uses the same
#                                 namespace, e.g. a test run in another checkout (default 1200)
#   ACTORNVME_NVMET_SUITE    boot the kernel of this Debian suite instead of the system's, e.g.
#                            trixie (6.12: DH-HMAC-CHAP, TLS with tlshd); see build-image.sh
#
# One harness per namespace name: `with` holds a lock (/tmp/actornvme-nvmet.<netns>.lock) from
# before `up` until after `down`, so concurrent runs take turns instead of tearing down each
# other's guest; a standalone `up` or `down` refuses to run while a `with` holds it. QEMU and the
# capture do not inherit the lock, so a run that died leaves nothing locked, and the next `up`
# removes whatever it left behind.
#
# Variables exported to COMMAND by `run`/`with`:
#   ACTORNVME_NVMET_ADDR=10.0.0.2  ACTORNVME_NVMET_HOSTADDR=10.0.0.1  ACTORNVME_NVMET_NETNS=<ns>
#   ACTORNVME_NVMET_CONTROL=<unix socket>  ACTORNVME_NVMET_KERNEL=<guest kernel version>
#   ACTORNVME_NVMET_FEATURES=<what the target can do beyond plain NVMe/TCP: "dhchap tls" or empty>
#
# Control channel. The guest runs the same agent (guest/commands/control-agent, which documents the
# framing) on two serial ports, neither of which uses the guest network:
#   ttyS1 <-> ACTORNVME_NVMET_CONTROL, a unix stream socket (QEMU socket chardev; one client at a
#             time, connect per command or keep the connection). The C# tests use this one.
#   ttyS2 <-> the FIFOs <rundir>/ctl.in and <rundir>/ctl.out (QEMU pipe chardev), used by
#             `nvmet.sh exec` so that bash needs no socket tool; calls are serialized by a lock.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

NS=${ACTORNVME_NVMET_NETNS:-actornvme-nvmet}
RUNDIR=${ACTORNVME_NVMET_RUNDIR:-/tmp/actornvme-nvmet.$NS}
CAPTURE=${ACTORNVME_NVMET_CAPTURE:-}
LOGDIR=${ACTORNVME_NVMET_LOGDIR:-}
BOOT_TIMEOUT=${ACTORNVME_NVMET_BOOT_TIMEOUT:-180}
LOCK_WAIT=${ACTORNVME_NVMET_LOCK_WAIT:-1200}
LOCK=/tmp/actornvme-nvmet.$NS.lock
LOCK_FD=8 # fixed, so that long-lived children can be started with it closed
GUEST_ADDR=10.0.0.2
HOST_ADDR=10.0.0.1
PREFIX=24
TAP=nvmet-tap0

CONSOLE=$RUNDIR/console.log
CONTROL=$RUNDIR/control.sock
FIFO=$RUNDIR/ctl
QEMU_PID=$RUNDIR/qemu.pid
CAPTURE_PID=$RUNDIR/capture.pid

log() { printf 'nvmet: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 125
}

console_tail() {
  if [ -s "$CONSOLE" ]; then
    printf '%s\n' "--- last console lines ($CONSOLE) ---" >&2
    tail -n "${1:-25}" "$CONSOLE" | sed -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1bc//g' | tr -d '\r' >&2
    printf '%s\n' "---" >&2
  fi
}

require_root() {
  [ "$(id -u)" -eq 0 ] || die "needs root (network namespaces and tap devices)"
}

# pid_alive PIDFILE COMM — true when the pid in PIDFILE runs a program named COMM (guards against
# a recycled pid).
pid_alive() {
  local pid
  pid=$(cat "$1" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$2" ]
}

# stop_pid PIDFILE COMM SIGNAL WHAT — signal the process, wait up to 10 s, then SIGKILL it.
stop_pid() {
  local file=$1 comm=$2 sig=$3 what=$4 pid i
  if pid_alive "$file" "$comm"; then
    pid=$(cat "$file")
    kill "-$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
      pid_alive "$file" "$comm" || break
      sleep 0.1
    done
    if pid_alive "$file" "$comm"; then
      log "$what (pid $pid) ignored SIG$sig for 10 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 0.2
    fi
  fi
  rm -f "$file"
}

# lock_namespace WAIT_S — take the namespace's lock on fd 8, waiting up to WAIT_S seconds.
lock_namespace() {
  exec 8>>"$LOCK"
  if flock -n "$LOCK_FD"; then
    return 0
  fi
  if [ "$1" -gt 0 ]; then
    log "another harness run ('nvmet.sh with') is using namespace $NS; waiting up to $1 s for it"
  fi
  if ! flock -w "$1" "$LOCK_FD"; then
    die "another harness run ('nvmet.sh with') is using namespace $NS (lock $LOCK; waited $1 s)"
  fi
}

# unlock_namespace — let go of the lock (a standalone up/down only checks it).
unlock_namespace() { exec 8>&-; }

netns_exists() { ip netns list | awk -v ns="$NS" '$1 == ns { found = 1 } END { exit !found }'; } # reads all: no broken pipe

# teardown — stop what a run started and delete the namespace; safe when nothing is there.
teardown() {
  require_root
  stop_pid "$CAPTURE_PID" dumpcap INT "packet capture"
  stop_pid "$QEMU_PID" qemu-system-x86 TERM QEMU
  if netns_exists; then
    ip netns del "$NS" || die "cannot delete network namespace $NS"
  fi
  rm -f "$CONTROL" "$FIFO.in" "$FIFO.out" "$FIFO.lock"
}

cmd_down() {
  teardown
  if [ -n "$LOGDIR" ] && [ -d "$RUNDIR" ]; then
    mkdir -p "$LOGDIR"
    for f in console.log qemu.log capture.log; do
      if [ -f "$RUNDIR/$f" ]; then cp "$RUNDIR/$f" "$LOGDIR/nvmet-$f"; fi
    done
  fi
}

# tcp_open_in_ns HOST PORT — one TCP connect attempt from inside the namespace (3 s limit).
tcp_open_in_ns() {
  # shellcheck disable=SC2016 # $1 and $2 are expanded by the inner bash
  ip netns exec "$NS" timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null
}

cmd_up() {
  require_root
  local t0=$SECONDS t image kver qemu_args line
  for tool in qemu-system-x86_64 ip flock base64 timeout; do
    command -v "$tool" >/dev/null || die "'$tool' not found (scripts/ensure-deps.sh installs what is missing)"
  done
  [ -c /dev/net/tun ] || die "/dev/net/tun is missing; QEMU needs it for the tap device"

  # A previous run may have left QEMU or the namespace behind.
  teardown

  t=$SECONDS
  image=$("$here/build-image.sh") || die "building the guest image failed"
  kver=$(cat "$image/kernel-version")
  log "timing: image ready in $((SECONDS - t)) s ($image)"

  rm -rf "$RUNDIR"
  mkdir -m 0700 "$RUNDIR" || die "cannot create $RUNDIR"
  echo "$kver" >"$RUNDIR/kernel-version"
  cat "$image/features" >"$RUNDIR/features" 2>/dev/null || : >"$RUNDIR/features"

  ip netns add "$NS" || die "cannot create network namespace $NS"
  ip -n "$NS" link set lo up
  ip -n "$NS" tuntap add dev "$TAP" mode tap || die "cannot create tap device $TAP in $NS"
  ip -n "$NS" addr add "$HOST_ADDR/$PREFIX" dev "$TAP"
  ip -n "$NS" link set "$TAP" up

  if [ -n "$CAPTURE" ]; then
    command -v dumpcap >/dev/null || die "ACTORNVME_NVMET_CAPTURE is set but dumpcap is not installed"
    mkdir -p "$(dirname "$CAPTURE")"
    rm -f "$CAPTURE"
    ip netns exec "$NS" dumpcap -q -i "$TAP" -w "$CAPTURE" >"$RUNDIR/capture.log" 2>&1 8>&- &
    echo $! >"$CAPTURE_PID"
    t=$SECONDS
    # dumpcap says "Capturing on" once its interface and file are open; the file itself may stay empty
    # until the first packet flushes the buffered header, and the tap has no traffic before QEMU runs.
    until [ -s "$CAPTURE" ] || grep -qa "^Capturing on" "$RUNDIR/capture.log" 2>/dev/null; do
      # Until `ip netns exec` has exec'd dumpcap, the process is still named ip: both are alive.
      if { ! pid_alive "$CAPTURE_PID" dumpcap && ! pid_alive "$CAPTURE_PID" ip; } || [ $((SECONDS - t)) -ge 90 ]; then
        cat "$RUNDIR/capture.log" >&2 || true
        die "dumpcap did not start capturing on $TAP into $CAPTURE within 90 s"
      fi
      sleep 0.1
    done
  fi

  mkfifo "$FIFO.in" "$FIFO.out"
  : >"$CONSOLE"
  qemu_args=(
    -name actornvme-nvmet -accel tcg -cpu max -smp 1 -m 512 -nographic -no-reboot
    -kernel "$image/vmlinuz" -initrd "$image/initramfs.cpio.gz"
    -append "console=ttyS0 quiet panic=-1"
    -monitor none
    -serial "file:$CONSOLE"
    -chardev "socket,id=control,path=$CONTROL,server=on,wait=off" -serial chardev:control
    -chardev "pipe,id=ctlpipe,path=$FIFO" -serial chardev:ctlpipe
    -netdev "tap,id=net0,ifname=$TAP,script=no,downscript=no"
    -device "virtio-net-pci,netdev=net0,romfile="
    -pidfile "$QEMU_PID"
  )
  t=$SECONDS
  ip netns exec "$NS" setsid qemu-system-x86_64 "${qemu_args[@]}" </dev/null >"$RUNDIR/qemu.log" 2>&1 8>&- &

  # Boot: wait for the guest's ready line (its /init powers off with a FATAL line on failure).
  while :; do
    if grep -q 'actornvme-guest: READY' "$CONSOLE" 2>/dev/null; then
      break
    fi
    if line=$(grep -a 'actornvme-guest: FATAL' "$CONSOLE" 2>/dev/null); then
      console_tail 40
      die "guest init failed: ${line#*FATAL: }"
    fi
    if [ -s "$QEMU_PID" ] && ! pid_alive "$QEMU_PID" qemu-system-x86; then
      cat "$RUNDIR/qemu.log" >&2 || true
      console_tail 40
      die "QEMU exited before the guest reported ready"
    fi
    if [ $((SECONDS - t)) -ge 10 ] && [ ! -s "$QEMU_PID" ]; then
      cat "$RUNDIR/qemu.log" >&2 || true
      die "QEMU did not start within 10 s (no pid file)"
    fi
    if [ $((SECONDS - t)) -ge "$BOOT_TIMEOUT" ]; then
      console_tail 40
      die "guest did not report ready within $BOOT_TIMEOUT s"
    fi
    sleep 0.2
  done
  log "timing: guest booted in $((SECONDS - t)) s ($(grep -a -o 'actornvme-guest: READY.*' "$CONSOLE" | tr -d '\r' | head -1))"

  t=$SECONDS
  ctl_exec nvmet-default 60 >&2 || {
    console_tail 40
    die "nvmet-default failed in the guest"
  }
  until tcp_open_in_ns "$GUEST_ADDR" 8009; do
    if [ $((SECONDS - t)) -ge 60 ]; then
      console_tail 40
      die "$GUEST_ADDR:8009 did not accept TCP from namespace $NS within 60 s after nvmet-default"
    fi
    sleep 0.5
  done
  log "timing: nvmet listening in $((SECONDS - t)) s; up in $((SECONDS - t0)) s total"
}

# ctl_exec CMD [TIMEOUT_S] — run CMD in the guest through the FIFO channel (ttyS2); prints the
# output; returns the guest's exit code, or 125 when the guest did not answer in time.
ctl_exec() {
  local cmd=$1 limit=${2:-120} id lock tx rx line state=wait out="" rc="" deadline remaining
  case $cmd in *$'\n'*) log "error: a command cannot contain a newline"; return 125 ;; esac
  if [ ! -p "$FIFO.in" ] || [ ! -p "$FIFO.out" ]; then
    log "error: no guest control FIFOs in $RUNDIR (is the guest up?)"
    return 125
  fi
  pid_alive "$QEMU_PID" qemu-system-x86 || { log "error: QEMU is not running (see $CONSOLE)"; return 125; }
  id="sh$$-$RANDOM$RANDOM"
  deadline=$((SECONDS + limit))
  exec {lock}>"$FIFO.lock"
  if ! flock -w "$limit" "$lock"; then
    exec {lock}>&-
    log "error: another 'nvmet.sh exec' held the control channel for $limit s"
    return 125
  fi
  # Read-write opens never block on a FIFO, whether or not QEMU still holds the other end.
  exec {tx}<>"$FIFO.in" {rx}<>"$FIFO.out"
  printf '%s %s\n' "$id" "$cmd" >&"$tx"
  while :; do
    remaining=$((deadline - SECONDS))
    if [ "$remaining" -le 0 ] || ! IFS= read -r -t "$remaining" line <&"$rx"; then
      log "error: the guest did not finish '$cmd' within $limit s (request $id, state $state)"
      rc=125
      break
    fi
    case $state in
      wait) [ "$line" = "%BEGIN $id" ] && state=body ;;
      body)
        case $line in
          "%END $id "*) rc=${line##* }; break ;;
          *) out+=$line$'\n' ;;
        esac
        ;;
    esac
  done
  exec {tx}>&- {rx}<&- {lock}>&-
  if [ -n "$out" ]; then
    printf '%s' "$out" | base64 -d || { log "error: undecodable output from the guest"; return 125; }
  fi
  return "$rc"
}

cmd_exec() {
  [ $# -ge 1 ] || die "usage: nvmet.sh exec 'COMMAND' [TIMEOUT_S]"
  local rc=0
  ctl_exec "$@" || rc=$?
  exit "$rc"
}

cmd_run() {
  require_root
  [ "${1:-}" = "--" ] && shift
  [ $# -ge 1 ] || die "usage: nvmet.sh run -- COMMAND..."
  netns_exists || die "network namespace $NS does not exist (run 'nvmet.sh up' first)"
  pid_alive "$QEMU_PID" qemu-system-x86 || die "QEMU is not running (run 'nvmet.sh up' first)"
  exec ip netns exec "$NS" env \
    ACTORNVME_NVMET_ADDR="$GUEST_ADDR" \
    ACTORNVME_NVMET_HOSTADDR="$HOST_ADDR" \
    ACTORNVME_NVMET_NETNS="$NS" \
    ACTORNVME_NVMET_CONTROL="$CONTROL" \
    ACTORNVME_NVMET_KERNEL="$(cat "$RUNDIR/kernel-version")" \
    ACTORNVME_NVMET_FEATURES="$(cat "$RUNDIR/features" 2>/dev/null)" \
    "$@"
}

with_child=
# On SIGINT/SIGTERM: stop the command (by its pid), then exit, which runs the EXIT trap (down).
with_interrupted() {
  log "interrupted; stopping the command and tearing down"
  if [ -n "$with_child" ]; then
    kill -TERM "$with_child" 2>/dev/null || true
    wait "$with_child" 2>/dev/null || true
  fi
  exit 130
}

cmd_with() {
  [ "${1:-}" = "--" ] && shift
  [ $# -ge 1 ] || die "usage: nvmet.sh with -- COMMAND..."
  local rc=0
  require_root
  lock_namespace "$LOCK_WAIT"
  trap 'cmd_down' EXIT
  trap 'with_interrupted' INT TERM
  cmd_up
  # In the background so that a signal is handled at once rather than when COMMAND ends; cmd_run
  # execs COMMAND, so $! is its pid. Standard input is passed on explicitly.
  cmd_run "$@" <&0 &
  with_child=$!
  wait "$with_child" || rc=$?
  with_child=
  trap - EXIT
  cmd_down
  return "$rc"
}

cmd_status() {
  if pid_alive "$QEMU_PID" qemu-system-x86 && netns_exists; then
    echo "up: namespace $NS, QEMU pid $(cat "$QEMU_PID"), control $CONTROL"
  else
    echo "down"
    return 1
  fi
}

sub=${1:-}
[ $# -gt 0 ] && shift
case $sub in
  up)
    require_root
    lock_namespace 0
    unlock_namespace
    trap 'teardown' EXIT # leave nothing running when up fails
    cmd_up
    trap - EXIT
    ;;
  down)
    require_root
    lock_namespace 0
    unlock_namespace
    cmd_down
    ;;
  exec) cmd_exec "$@" ;;
  run) cmd_run "$@" ;;
  with) cmd_with "$@" ;;
  status) cmd_status ;;
  *) die "usage: nvmet.sh up | down | status | exec 'CMD' [TIMEOUT_S] | run -- COMMAND... | with -- COMMAND..." ;;
esac
