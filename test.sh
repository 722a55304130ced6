#!/usr/bin/env bash
# Runs every ActorNvme test: unit, actor specs, and the real-peer tests (Linux kernel target in QEMU,
# tshark's NVMe/TCP dissector). Installs the Debian packages those need when they are missing.
set -euo pipefail
cd "$(dirname "$0")"

t_start=$SECONDS
if [ -x scripts/ensure-deps.sh ]; then
  scripts/ensure-deps.sh
fi
t_deps=$((SECONDS - t_start))

results=artifacts/test-results
rm -rf "$results"
mkdir -p "$results"

# The host identity every command generates once and keeps: a test run keeps its own, not the machine's.
ACTORNVME_STATE_DIR=$(mktemp -d /tmp/anvme-state.XXXXXX)
export ACTORNVME_STATE_DIR

t=$SECONDS
dotnet build ActorNvme.sln -c Release -warnaserror -nologo -v quiet
t_build=$((SECONDS - t))
status=0

# Every test project but the real-peer one, which needs the harness below. The cluster's PostgreSQL
# restart case needs a server: tests/shell/cluster-restart-postgresql.sh starts one and runs it.
t=$SECONDS
dotnet test ActorNvme.sln -c Release --no-build --nologo \
  --filter 'FullyQualifiedName!~ActorNvme.RealPeer.Tests&FullyQualifiedName!~after_a_full_restart_from_PostgreSQL' \
  --blame-hang-timeout 25m \
  --logger "trx" --results-directory "$results" \
  --logger "console;verbosity=normal" || status=$?
t_unit=$((SECONDS - t))

# Shell tests: actornvme serve and actornvme target as processes, driven over their sockets by a
# generic JSON-RPC client (socat). Exit 77 means skipped (a tool missing), which CI and root refuse.
t=$SECONDS
shell_passed=0
shell_failed=0
shell_failed_names=()
shell_skipped=0
shell_logs=artifacts/shell-logs
rm -rf "$shell_logs"
mkdir -p "$shell_logs"
for shell_test in tests/shell/*.sh; do
  [ -f "$shell_test" ] || continue
  rc=0
  # A script may declare a longer limit in a '# test-timeout: SECONDS' line (the seed scenarios run 20 cycles).
  limit=$(sed -n 's/^# test-timeout: \([0-9][0-9]*\)$/\1/p' "$shell_test" | head -n 1)
  # Each script's output is kept in a file (not a pipe, which a leftover daemon could hold open) and then
  # shown, so that a failure can be summed up again at the end of the log.
  shell_log="$shell_logs/$(basename "$shell_test" .sh).log"
  timeout "${limit:-300}" "$shell_test" >"$shell_log" 2>&1 || rc=$?
  cat "$shell_log"
  if [ "$rc" -eq 0 ]; then
    shell_passed=$((shell_passed + 1))
  elif [ "$rc" -eq 77 ] && [ "${CI:-}" != "true" ] && [ "$(id -u)" -ne 0 ]; then
    shell_skipped=$((shell_skipped + 1))
  else
    echo "test.sh: $shell_test failed (exit $rc)" >&2
    shell_failed=$((shell_failed + 1))
    shell_failed_names+=("$shell_test")
    status=1
  fi
done
echo "shell: $shell_passed passed, $shell_failed failed, $shell_skipped skipped"
t_shell=$((SECONDS - t))

# Real-peer tests: inside the harness's network namespace, against the Linux kernel NVMe/TCP target
# in QEMU, capturing the traffic for tshark's dissector. They need root (namespace, tap device).
# In CI, or whenever we are root (scripts/ensure-deps.sh then installed what they need), they must
# run: a skipped or empty real-peer run fails the whole test run.
realpeer_trx=realpeer.trx
# SpdkDhChapTests, SpdkTlsTests and SpdkReservationTests need SPDK's target, not the Linux guest:
# tests/shell/spdk-dhchap.sh, spdk-tls.sh and spdk-reservations.sh run them. LinuxAuthTlsTests and
# OurTargetSecurityTests need the 6.12 guest: tests/shell/linux-auth-tls.sh.
realpeer_args=(tests/ActorNvme.RealPeer.Tests -c Release --no-build --nologo
  --filter 'FullyQualifiedName!~SpdkDhChapTests&FullyQualifiedName!~SpdkTlsTests&FullyQualifiedName!~SpdkReservationTests&FullyQualifiedName!~LinuxAuthTlsTests&FullyQualifiedName!~OurTargetSecurityTests'
  --blame-hang-timeout 10m --blame-hang-dump-type none
  --logger "trx;LogFileName=$realpeer_trx" --results-directory "$results"
  --logger "console;verbosity=normal")
realpeer_required=false
if [ "${CI:-}" = "true" ] || [ "$(id -u)" -eq 0 ]; then
  realpeer_required=true
fi
t=$SECONDS
if [ "$(id -u)" -eq 0 ]; then
  capture=$results/realpeer.pcapng
  ACTORNVME_NVMET_CAPTURE=$capture ACTORNVME_NVMET_LOGDIR=$results \
    scripts/nvmet-qemu/nvmet.sh with -- dotnet test "${realpeer_args[@]}" || status=$?
  # Wireshark's dissector must read all of that traffic without complaint.
  if [ ! -f "$results/$realpeer_trx" ]; then
    echo "test.sh: no real-peer test ran, so there is no traffic to dissect" >&2
  elif [ -f "$capture" ]; then
    # 4430: our own Target, driven by the guest's kernel host (OurTargetTests).
    scripts/tshark-check.sh "$capture" 8009,4420,4430 || status=1
  else
    echo "test.sh: no capture of the real-peer traffic at $capture" >&2
    status=1
  fi
else
  echo "test.sh: not root, so the Linux target cannot be started; the real-peer tests will be skipped" >&2
  dotnet test "${realpeer_args[@]}" || status=$?
fi
t_realpeer=$((SECONDS - t))

# trx_counts FILE -> "passed failed skipped" for one TRX file. Skipped tests are the results with
# outcome NotExecuted (xunit's skips do not show in the notExecuted counter).
trx_counts() {
  local p fl sk
  p=$(grep -o 'passed="[0-9]*"' "$1" | head -1 | tr -dc 0-9 || true)
  fl=$(grep -o 'failed="[0-9]*"' "$1" | head -1 | tr -dc 0-9 || true)
  sk=$({ grep -o '<UnitTestResult [^>]*outcome="NotExecuted"' "$1" || true; } | wc -l)
  echo "${p:-0} ${fl:-0} ${sk:-0}"
}
if [ "$realpeer_required" = true ]; then
  if [ ! -f "$results/$realpeer_trx" ]; then
    echo "test.sh: the real-peer tests did not run (no $results/$realpeer_trx); see the harness output above" >&2
    status=1
  else
    read -r rp_passed _ rp_skipped < <(trx_counts "$results/$realpeer_trx")
    if [ "$rp_passed" -eq 0 ] || [ "$rp_skipped" -ne 0 ]; then
      echo "test.sh: the real-peer run must pass with nothing skipped here (CI or root), but it reports $rp_passed passed, $rp_skipped skipped" >&2
      status=1
    fi
  fi
fi

echo "Timings: deps ${t_deps} s, build ${t_build} s, unit tests ${t_unit} s, shell tests ${t_shell} s, real-peer (image, boot, tests, teardown) ${t_realpeer} s, total $((SECONDS - t_start)) s"

# One summary line over every test project and the shell tests (the plain 'N passed, N failed' form).
python_free_sum() {
  local passed=$shell_passed failed=$shell_failed skipped=$shell_skipped f p fl sk
  for f in "$results"/*.trx; do
    [ -f "$f" ] || continue
    read -r p fl sk < <(trx_counts "$f")
    passed=$((passed + p)); failed=$((failed + fl)); skipped=$((skipped + sk))
  done
  echo "Tests: $passed passed, $failed failed, $skipped skipped"
  if [ "$passed" -eq 0 ]; then echo "no test ran" >&2; return 1; fi
}
# Name every failed test last, so the tail of a CI log says what broke.
# failed_tests FILE: "FAILED: name" and the first lines of its message and stack, for each failed test in a TRX file.
failed_tests() {
  if command -v python3 >/dev/null; then
    python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
ns = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}
failed = ET.parse(sys.argv[1]).getroot().findall(".//t:UnitTestResult[@outcome='Failed']", ns)
for result in failed[:20]:
    print("FAILED: " + result.get("testName", "?"))
    for tag, keep in (("Message", 6), ("StackTrace", 4)):
        node = result.find(".//t:ErrorInfo/t:" + tag, ns)
        for line in (node.text or "").strip().splitlines()[:keep] if node is not None else []:
            print("  why> " + line.strip()[:300])
PY
  else
    { grep -o '<UnitTestResult [^>]*outcome="Failed"' "$1" || true; } \
      | sed -n 's/.*testName="\([^"]*\)".*/FAILED: \1/p' | head -20
  fi
}
for f in "$results"/*.trx; do
  [ -f "$f" ] || continue
  failed_tests "$f"
done
for name in "${shell_failed_names[@]}"; do
  # The lines that say why (assertions, exceptions, the script's own FAIL), else its last lines.
  log="$shell_logs/$(basename "$name" .sh).log"
  why=$(grep -a -E -A2 "FAIL|Error Message|Exception|Assert|timed out|exit [0-9]" "$log" | grep -a -v -x -e "--" | tail -n 16 || true)
  [ -n "$why" ] || why=$(tail -n 12 "$log")
  printf '%s\n' "$why" | cut -c1-300 | sed "s|^|  $(basename "$name" .sh)> |"
  echo "FAILED: shell test $name"
done
python_free_sum || status=1
exit $status
