# Checks shared by the multipath soaks (spdk-multipath-soak.sh, linux-multipath-soak.sh) on the summaries
# `actornvme soak --json` prints. Sourced; $me names the test. Every check prints one line; a failed one
# prints "<me>: FAIL (...)" and exits 1 (the caller's EXIT trap cleans up).

soak_fail() {
  echo "$me: FAIL ($*)"
  exit 1
}

# soak_field SUMMARY FIELD: one field of a summary.
soak_field() { jq -r ".$2" <<<"$1"; }

# soak_check_chaos SUMMARY ANA_FAULTS WORKERS KATO_MS: prints the chaos phase's figures and checks them:
# - no acknowledged write lost, no bad read, writes and reader reads completed;
# - ANA refusals bounded: a path's first ANA refusal marks it unusable for every later command (until the
#   ANA log or ANATT says otherwise), so one ANA fault can only be met by the commands already in flight on
#   that path when it flipped: at most one per writer and per reader (each has one command outstanding; a
#   checkpoint reads one block at a time while the writers are paused). Twice that allows for a second
#   wave when ANATT runs out before the next ANA log page is read. A host that kept sending to an
#   inaccessible path would pass this bound within a few faults;
# - failover: the longest gap in the readers' completions (a path lost to the first read done on the
#   other one) stays under 1 s;
# - writes resume within what the resubmit rule allows: the loss is seen within KATO (at once when the
#   connection closes), then the lost path's writes wait the write resubmit delay the soak reports (KATO
#   as the target rounds it to its keep-alive granularity, plus a quarter, plus CQT); 1 s more for a
#   loaded machine. A write stuck on a lost path, or fenced for good, would exceed it.
soak_check_chaos() {
  local summary=$1 ana_faults=$2 workers=$3 kato_ms=$4
  local lost bad writes refusals bound reader_reads read_max write_max write_limit
  lost=$(soak_field "$summary" lost_acknowledged_writes)
  bad=$(soak_field "$summary" bad_reads)
  writes=$(soak_field "$summary" writes)
  refusals=$(soak_field "$summary" ana_refusals)
  reader_reads=$(soak_field "$summary" reader_reads)
  read_max=$(soak_field "$summary" read_stall_max_ms)
  bound=$((ana_faults * workers * 2))
  write_max=$(soak_field "$summary" stall_max_ms)
  write_limit=$(awk -v fence="$(soak_field "$summary" write_resubmit_delay_ms)" -v kato="$kato_ms" 'BEGIN { printf "%.0f", fence + kato + 1000 }')
  echo "$me: $(jq -r '"\(.writes) writes, \(.reads) reads, \(.write_errors) write errors, \(.read_errors) read errors; \(.lost_acknowledged_writes) lost acknowledged writes, \(.bad_reads) bad reads; writers: \(.stall_count) stalls over \(.stalls_over_ms) ms: p50 \(.stall_p50_ms) ms, p99 \(.stall_p99_ms) ms, max \(.stall_max_ms) ms (limit '"$write_limit"' ms: write resubmit delay \(.write_resubmit_delay_ms) ms + KATO '"$kato_ms"' ms + 1 s)"' <<<"$summary")"
  echo "$me: ana refusals: $refusals commands answered with an ANA state (bound $bound = $ana_faults ANA faults x $workers writers and readers x 2)"
  echo "$me: failover time (read gaps, path loss to the first read done on the other path): $(jq -r '"p50 \(.read_stall_p50_ms) ms, p99 \(.read_stall_p99_ms) ms, max \(.read_stall_max_ms) ms over \(.read_stall_count) gaps longer than \(.stalls_over_ms) ms; readers: \(.reader_reads) reads, \(.reader_errors) errors"' <<<"$summary")"
  [ "$lost" = 0 ] || soak_fail "$lost acknowledged writes lost: $(jq -c '.problems[:5]' <<<"$summary")"
  [ "$bad" = 0 ] || soak_fail "$bad bad reads: $(jq -c '.problems[:5]' <<<"$summary")"
  [ "$writes" -gt 0 ] || soak_fail "no write completed"
  [ "$reader_reads" -gt 0 ] || soak_fail "no reader's read completed"
  [ "$refusals" -le "$bound" ] || soak_fail "$refusals ANA refusals exceed the $bound that can be in flight when $ana_faults ANA states change: I/O kept going to an inaccessible path"
  awk -v gap="$read_max" 'BEGIN { exit !(gap < 1000) }' || soak_fail "reads took $read_max ms to resume on the other path (must be under 1000 ms)"
  awk -v gap="$write_max" -v limit="$write_limit" 'BEGIN { exit !(gap <= limit) }' || soak_fail "writes stalled $write_max ms, more than the $write_limit ms the resubmit rule allows"
}

# soak_check_spread SUMMARY: the no-fault active_active round_robin run spread its commands over exactly
# two paths, within 10% of each other (|a - b| <= 10% of the larger), and lost nothing.
soak_check_spread() {
  local summary=$1 counts a b
  counts=$(jq -r '.commands_per_path | to_entries | map("\(.key)=\(.value)") | join(", ")' <<<"$summary")
  echo "$me: active_active round_robin, both paths optimized, no faults: $(soak_field "$summary" writes) writes, $(soak_field "$summary" reads) reads; commands per path: $counts"
  [ "$(soak_field "$summary" lost_acknowledged_writes)" = 0 ] || soak_fail "the spread run lost acknowledged writes: $(jq -c '.problems[:5]' <<<"$summary")"
  [ "$(soak_field "$summary" bad_reads)" = 0 ] || soak_fail "the spread run saw bad reads: $(jq -c '.problems[:5]' <<<"$summary")"
  [ "$(jq -r '.commands_per_path | length' <<<"$summary")" = 2 ] || soak_fail "the spread run has $(jq -r '.commands_per_path | length' <<<"$summary") paths, not 2: $counts"
  a=$(jq -r '[.commands_per_path[]] | .[0]' <<<"$summary")
  b=$(jq -r '[.commands_per_path[]] | .[1]' <<<"$summary")
  [ "$a" -gt 0 ] && [ "$b" -gt 0 ] || soak_fail "round robin left a path idle: $counts"
  local high=$((a > b ? a : b)) diff=$((a > b ? a - b : b - a))
  [ $((diff * 10)) -le "$high" ] || soak_fail "round robin spread $counts: $diff apart, more than 10% of $high"
  echo "$me: spread: $diff commands apart, $(awk -v d="$diff" -v h="$high" 'BEGIN { printf "%.2f", 100 * d / h }')% of the busier path (limit 10%)"
}
