#!/usr/bin/env bash
# Runs every ActorNvme test: unit, actor specs, and the real-peer tests (Linux kernel target in QEMU,
# tshark's NVMe/TCP dissector). Installs the Debian packages those need when they are missing.
set -euo pipefail
cd "$(dirname "$0")"

if [ -x scripts/ensure-deps.sh ]; then
  scripts/ensure-deps.sh
fi

results=artifacts/test-results
rm -rf "$results"
mkdir -p "$results"

dotnet build ActorNvme.sln -c Release -warnaserror -nologo -v quiet
status=0
dotnet test ActorNvme.sln -c Release --no-build --nologo \
  --logger "trx" --results-directory "$results" \
  --logger "console;verbosity=normal" || status=$?

# One summary line over every test project (the plain 'N passed, N failed' form).
python_free_sum() {
  local passed=0 failed=0 skipped=0 f p fl sk
  for f in "$results"/*.trx; do
    [ -f "$f" ] || continue
    p=$(grep -o 'passed="[0-9]*"' "$f" | head -1 | tr -dc 0-9); fl=$(grep -o 'failed="[0-9]*"' "$f" | head -1 | tr -dc 0-9)
    sk=$(grep -o 'notExecuted="[0-9]*"' "$f" | head -1 | tr -dc 0-9)
    passed=$((passed + ${p:-0})); failed=$((failed + ${fl:-0})); skipped=$((skipped + ${sk:-0}))
  done
  echo "Tests: $passed passed, $failed failed, $skipped skipped"
  if [ "$passed" -eq 0 ]; then echo "no test ran" >&2; return 1; fi
}
python_free_sum || status=1
exit $status
