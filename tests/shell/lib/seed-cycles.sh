# The seed scenario's cycles (SPDK's nvmf_discovery_remove_ifc), shared by the shell tests that run it
# against different targets. Sourced, not run (test.sh runs only tests/shell/*.sh).
#
# The caller sets: me, work, dll, serve_sock, peer_name, peer_log (the target's log), and defines
#   outage_begin  - make the target unreachable (address deleted and link taken down)
#   outage_end    - make it reachable again
# and two NVM subsystems the discovery service attaches as nvme0n1 nvme1n1.
#
# Measured, never asserted tightly (timings belong in benchmarks): detection, removal and re-attach
# times and the RPC's time to answer. The RPC is watched by `actornvme rpc --every` on one connection
# (so the figure is the daemon's answer alone, not a process start), bounded by $rpc_bound_ms.

rpc_bound_ms=${ACTORNVME_RPC_BOUND_MS:-1000}
rpc_goal_ms=50
probe_pid=

fail() {
  echo "$me: FAIL ($*)"
  echo "--- $peer_name log"; tail -n 30 "$peer_log" || true
  echo "--- actornvme serve log"; tail -n 80 "$work/serve.log" 2>/dev/null || tail -n 40 "$work/soak.log" 2>/dev/null || true
  exit 1
}

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
secs() { printf '%d.%02d' $(($1 / 1000)) $(( ($1 % 1000) / 10 )); }

wait_for_line() { # FILE PATTERN SECONDS [PID that must stay alive]
  local until=$((SECONDS + $3))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $until ] || fail "'$2' did not appear in $1 within $3 s"
    [ -z "${4:-}" ] || kill -0 "$4" 2>/dev/null || fail "the process writing $1 exited before '$2'"
    sleep 0.1
  done
}

# rpc METHOD [PARAMS]: one JSON-RPC 2.0 call to actornvme serve through socat; prints the response.
rpc_id=0
rpc() {
  rpc_id=$((rpc_id + 1))
  local request="{\"jsonrpc\":\"2.0\",\"id\":$rpc_id,\"method\":\"$1\""
  if [ -n "${2:-}" ]; then request="$request,\"params\":$2"; fi
  request="$request}"
  printf '%s' "$request" | socat -t 60 - "UNIX-CONNECT:$serve_sock"
}

# call METHOD [PARAMS]: the result, or fail with the error.
call() {
  local response
  response=$(rpc "$@") || fail "$1: no answer"
  [ -n "$response" ] || fail "$1: empty answer"
  if [ "$(jq -r 'has("error")' <<<"$response")" = "true" ]; then
    fail "$1 answered $(jq -c .error <<<"$response")"
  fi
  jq -c .result <<<"$response"
}

bdevs() { call bdev_get_bdevs | jq -r '[.[].name] | sort | join(" ")'; }

# Owners in the ownership ledger other than discovery controllers (which keep reconnecting in an outage).
ledger_holders() { call actornvme_get_ledger | jq -r '[.owners[] | select(.owner | endswith("/dc") | not) | "\(.owner): \(.connections) conn, \(.pending_commands) cmd, \(.timers) timer"] | join("; ")'; }

# expect_ledger_clear WHAT: within 10 s no controller but the discovery controllers holds anything.
expect_ledger_clear() {
  local until=$((SECONDS + 10)) held
  while :; do
    held=$(ledger_holders)
    [ -n "$held" ] || return 0
    [ $SECONDS -lt $until ] || fail "$1: the ledger still lists $held"
    sleep 0.1
  done
}

# The watcher: bdev_get_bdevs every 20 ms on one connection, one line per answer ("unix-ms took-ms result").
start_rpc_probe() {
  dotnet "$dll" rpc -s "$serve_sock" -t 30 --every 20 bdev_get_bdevs >"$work/probe.log" 2>"$work/probe.err" &
  probe_pid=$!
  local until=$((SECONDS + 60))
  until [ -s "$work/probe.log" ]; do
    [ $SECONDS -lt $until ] || fail "the RPC probe printed nothing in 60 s: $(cat "$work/probe.err")"
    kill -0 "$probe_pid" 2>/dev/null || fail "the RPC probe exited: $(cat "$work/probe.err")"
    sleep 0.1
  done
}

stop_rpc_probe() {
  [ -z "$probe_pid" ] || kill -TERM "$probe_pid" 2>/dev/null || true
  [ -z "$probe_pid" ] || wait "$probe_pid" 2>/dev/null || true
  probe_pid=
}

# probe_slowest FROM_MS TO_MS: the slowest answer the probe saw between two instants, in ms (rounded up);
# fails when the probe died or saw no answer in the window (an answer that never came is the worst case).
probe_slowest() {
  kill -0 "$probe_pid" 2>/dev/null || fail "the RPC probe exited: $(cat "$work/probe.err")"
  awk -v from="$1" -v to="$2" '$1 >= from && $1 <= to { n++; if ($2 > m) m = $2 } END { if (n == 0) print -1; else printf "%d\n", m + 0.999 }' "$work/probe.log"
}

# run_cycles N: N outages, each: exactly the expected two names before; none after the loss timeout with
# the ledger clear; exactly the next two names after the restore, controllers enabled.
run_cycles() {
  local cycles=$1 c expected next outage outage_clock loss gone names states restore back slowest
  local max_loss=0 max_gone=0 max_back=0 sum_loss=0 sum_gone=0 sum_back=0 all_slowest=0
  for ((c = 0; c < cycles; c++)); do
    expected="nvme$((2 * c))n1 nvme$((2 * c + 1))n1"
    next="nvme$((2 * c + 2))n1 nvme$((2 * c + 3))n1"
    [ "$(bdevs)" = "$expected" ] || fail "cycle $c: expected '$expected' before the outage, bdev_get_bdevs lists '$(bdevs)'"

    outage_begin
    outage=$(now_ms)
    outage_clock=$(date +%T.%3N)
    loss=; gone=
    while [ -z "$gone" ]; do
      [ $(( $(now_ms) - outage )) -lt 30000 ] || fail "cycle $c: devices still listed 30 s after the outage began: '$(bdevs)'"
      if [ -z "$loss" ]; then
        states=$(call bdev_nvme_get_controllers | jq -r '[.[].ctrlrs[].state] | join(" ")')
        [ "$states" = "enabled enabled" ] || loss=$(( $(now_ms) - outage ))
      fi
      names=$(bdevs)
      if [ -z "$names" ]; then
        gone=$(( $(now_ms) - outage ))
        [ -n "$loss" ] || loss=$gone
      elif [ "$names" != "$expected" ] && [ "$names" != "${expected% *}" ] && [ "$names" != "${expected#* }" ]; then
        fail "cycle $c: during the outage bdev_get_bdevs lists '$names'"
      fi
      sleep 0.05
    done
    expect_ledger_clear "cycle $c, after the loss timeout"
    # A little more of the outage with the discovery controller reconnecting: still none, still answering.
    for _ in 1 2 3 4 5; do
      [ -z "$(bdevs)" ] || fail "cycle $c: a device came back while the target was unreachable: '$(bdevs)'"
      call bdev_nvme_get_discovery_info >/dev/null
      sleep 0.1
    done

    outage_end
    restore=$(now_ms)
    while :; do
      names=$(bdevs)
      [ "$names" = "$next" ] && break
      [ -z "$names" ] || [ "$names" = "${next% *}" ] || [ "$names" = "${next#* }" ] || fail "cycle $c: after the restore bdev_get_bdevs lists '$names', not '$next'"
      [ $(( $(now_ms) - restore )) -lt 30000 ] || fail "cycle $c: '$next' not listed 30 s after the restore (lists '$names')"
      sleep 0.05
    done
    back=$(( $(now_ms) - restore ))
    states=$(call bdev_nvme_get_controllers | jq -r '[.[].ctrlrs[].state] | join(" ")')
    [ "$states" = "enabled enabled" ] || fail "cycle $c: controllers after the restore are '$states'"

    slowest=$(probe_slowest "$outage" "$(now_ms)")
    [ "$slowest" -ge 0 ] || fail "cycle $c: the RPC probe got no answer during the whole cycle"
    [ "$slowest" -le "$rpc_bound_ms" ] || fail "cycle $c: an RPC answer took $slowest ms (bound $rpc_bound_ms ms)"
    [ "$slowest" -le "$all_slowest" ] || all_slowest=$slowest

    echo "$me: cycle $((c + 1))/$cycles (outage at $outage_clock): loss detected $(secs "$loss") s, devices removed $(secs "$gone") s after the outage began, ledger clear; $next attached $(secs "$back") s after the restore; slowest RPC answer $slowest ms"
    sum_loss=$((sum_loss + loss)); sum_gone=$((sum_gone + gone)); sum_back=$((sum_back + back))
    [ "$loss" -le "$max_loss" ] || max_loss=$loss
    [ "$gone" -le "$max_gone" ] || max_gone=$gone
    [ "$back" -le "$max_back" ] || max_back=$back
  done
  if [ "$cycles" -gt 0 ]; then
    local answers over_goal
    answers=$(wc -l <"$work/probe.log")
    over_goal=$(awk -v goal="$rpc_goal_ms" '$2 > goal { n++ } END { print n + 0 }' "$work/probe.log")
    echo "$me: over $cycles cycles (mean / max): outage -> loss detected $(secs $((sum_loss / cycles))) / $(secs "$max_loss") s; -> devices removed $(secs $((sum_gone / cycles))) / $(secs "$max_gone") s; restore -> re-attached $(secs $((sum_back / cycles))) / $(secs "$max_back") s; RPC on one connection: slowest answer in the cycles $all_slowest ms; $over_goal of all $answers answers (the probe's start included) over $rpc_goal_ms ms"
  fi
}

# --- The network: two namespaces joined by a veth pair; nothing is addressed in the root namespace.
# The caller sets tag (unique), and gets ns_tgt ns_host if_tgt if_host tgt_ip host_ip.
setup_netns_pair() {
  ns_tgt=anvme-t$tag
  ns_host=anvme-h$tag
  if_tgt=avt$tag
  if_host=avh$tag
  tgt_ip=10.0.0.2
  host_ip=10.0.0.1
  ip netns add "$ns_tgt"
  ip netns add "$ns_host"
  ip link add "$if_host" type veth peer name "$if_tgt"
  ip link set "$if_tgt" netns "$ns_tgt"
  ip link set "$if_host" netns "$ns_host"
  ip -n "$ns_tgt" addr add "$tgt_ip/24" dev "$if_tgt"
  ip -n "$ns_host" addr add "$host_ip/24" dev "$if_host"
  local ns
  for ns in "$ns_tgt" "$ns_host"; do ip -n "$ns" link set lo up; done
  ip -n "$ns_tgt" link set "$if_tgt" up
  ip -n "$ns_host" link set "$if_host" up
}

teardown_netns_pair() {
  [ -z "${ns_tgt:-}" ] || ip netns del "$ns_tgt" 2>/dev/null || true
  [ -z "${ns_host:-}" ] || ip netns del "$ns_host" 2>/dev/null || true
}

# The outage of nvmf_discovery_remove_ifc: the target's address deleted and its link taken down; then both back.
netns_outage_begin() {
  ip -n "$ns_tgt" addr del "$tgt_ip/24" dev "$if_tgt"
  ip -n "$ns_tgt" link set "$if_tgt" down
}

netns_outage_end() {
  ip -n "$ns_tgt" addr add "$tgt_ip/24" dev "$if_tgt"
  ip -n "$ns_tgt" link set "$if_tgt" up
}

# --- actornvme serve in the host namespace, started as SPDK's host is in the scenario (--wait-for-rpc,
# options, framework_start_init), then discovery on $tgt_ip:8009 with wait_for_attach. Sets serve_pid, attach_ms.
start_serve_and_discover() {
  local kato_ms=$1 t0 started info
  ip netns exec "$ns_host" dotnet "$dll" serve -r "$serve_sock" --wait-for-rpc >"$work/serve.log" 2>&1 &
  serve_pid=$!
  wait_for_line "$work/serve.log" "JSON-RPC server listening" 90 "$serve_pid"
  call bdev_nvme_set_options "{\"keep_alive_timeout_ms\":$kato_ms,\"transport_retry_count\":4,\"bdev_retry_count\":-1}" >/dev/null
  call framework_start_init >/dev/null
  call framework_wait_init >/dev/null

  t0=$(now_ms)
  started=$(call bdev_nvme_start_discovery "{\"name\":\"nvme\",\"trtype\":\"tcp\",\"traddr\":\"$tgt_ip\",\"adrfam\":\"ipv4\",\"trsvcid\":\"8009\",\"wait_for_attach\":true,\"ctrlr_loss_timeout_sec\":2,\"reconnect_delay_sec\":1,\"fast_io_fail_timeout_sec\":1}")
  attach_ms=$(( $(now_ms) - t0 ))
  [ "$started" = "true" ] || fail "bdev_nvme_start_discovery answered $started"
  [ "$(bdevs)" = "nvme0n1 nvme1n1" ] || fail "expected nvme0n1 nvme1n1 after discovery, bdev_get_bdevs lists '$(bdevs)'"
  # A target may list its discovery subsystem too (SUBTYPE 3): another address of the same discovery
  # controller, never a referral, so one discovery service with no referral and nothing else attached.
  info=$(call bdev_nvme_get_discovery_info)
  [ "$(jq 'length' <<<"$info")" = 1 ] || fail "expected one discovery service, bdev_nvme_get_discovery_info: $info"
  [ "$(jq '[.[].referrals[]] | length' <<<"$info")" = 0 ] || fail "a referral was followed: $info"
  [ "$(jq -r '.[0].actornvme.controllers | sort | join(" ")' <<<"$info")" = "nvme0 nvme1" ] || fail "expected controllers nvme0 nvme1: $info"
  echo "$me: discovery log: $(jq -r '.[0].actornvme | "\(.entries | length) NVM entries, \(.alternate_addresses | length) of this discovery subsystem (SUBTYPE 3), \(.skipped | length) skipped"' <<<"$info")"
  echo "$me: $peer_name at $tgt_ip (discovery 8009, two NVM subsystems); attached nvme0n1 nvme1n1 in $(secs "$attach_ms") s; keep-alive-timeout $kato_ms ms, ctrlr_loss_timeout 2 s, reconnect_delay 1 s"
}

# Stop discovery: no device left, and (within 10 s) nothing in the ledger at all.
stop_discovery_and_check() {
  call bdev_nvme_stop_discovery '{"name":"nvme"}' >/dev/null
  [ -z "$(bdevs)" ] || fail "devices left after bdev_nvme_stop_discovery: '$(bdevs)'"
  local until=$((SECONDS + 10)) total
  while :; do
    total=$(call actornvme_get_ledger | jq -c '.total')
    [ "$total" != '{"connections":0,"pending_commands":0,"timers":0}' ] || return 0
    [ $SECONDS -lt $until ] || fail "after bdev_nvme_stop_discovery the ledger still holds $total: $(call actornvme_get_ledger | jq -c .owners)"
    sleep 0.1
  done
}

# --- SPDK's nvmf_tgt in the target namespace, without hugepages, on core 0, without the core lock (so another
# SPDK process on this machine does not keep it from starting). Zero-copy sends are turned off before the
# framework starts: across a veth pair they delay every answer by about 40-50 ms (measured: 18 IOPS at
# queue depth 1 with them, 8,400 without, for SPDK's own perf as for ours). Sets tgt_pid; needs bundle.
start_spdk_target() { # SOCKET LOG
  ip netns exec "$ns_tgt" "$bundle/build/bin/nvmf_tgt" -m 0x1 --no-huge -s 1024 --disable-cpumask-locks --wait-for-rpc -r "$1" >"$2" 2>&1 &
  tgt_pid=$!
  local until=$((SECONDS + 60))
  until [ -S "$1" ]; do
    [ $SECONDS -lt $until ] || fail "nvmf_tgt's RPC socket did not appear within 60 s"
    kill -0 "$tgt_pid" 2>/dev/null || fail "nvmf_tgt exited at start"
    sleep 0.1
  done
  python3 "$bundle/scripts/rpc.py" -s "$1" sock_impl_set_options -i posix --no-zerocopy-send-server >/dev/null || fail "rpc.py sock_impl_set_options"
  python3 "$bundle/scripts/rpc.py" -s "$1" framework_start_init >/dev/null || fail "rpc.py framework_start_init"
  wait_for_line "$2" "Reactor started on core 0" 60 "$tgt_pid"
}
