#!/usr/bin/env bash
# test-timeout: 900
# DH-HMAC-CHAP of our host against SPDK's nvmf_tgt: runs the SpdkDhChapTests facts of
# tests/ActorNvme.RealPeer.Tests with ACTORNVME_SPDK_BUNDLE set to the bundle scripts/spdk-peer.sh unpacks.
# Each fact starts nvmf_tgt (no hugepages, 127.0.0.1, a free port, keys in 0600 files on its keyring) with
# cnode1 (host key) and cnode2 (host + controller key): unidirectional SHA-256/null and bidirectional
# SHA-384/ffdhe2048 and SHA-512/ffdhe8192 authentication with writes and reads on two I/O queues after it;
# a wrong host key, a wrong controller key and a missing key refused with errors naming subsystem and step.
# Needs the test project built (dotnet build -c Release). Logs in artifacts/spdk-dhchap/.
# Exit: 0 passed, 1 failed, 77 skipped (no SPDK bundle at ../shared/peers/spdk, or not root).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=spdk-dhchap
if [ "$(id -u)" -ne 0 ]; then
  echo "$me: SKIP (nvmf_tgt is run as root only)"
  exit 77
fi
rc=0
bundle=$(scripts/spdk-peer.sh) || rc=$?
if [ "$rc" -eq 77 ]; then
  echo "$me: SKIP (SPDK's bundle is not present at ../shared/peers/spdk)"
  exit 77
elif [ "$rc" -ne 0 ]; then
  echo "$me: FAIL (scripts/spdk-peer.sh could not make SPDK's target ready)"
  exit 1
fi

logs=artifacts/spdk-dhchap
mkdir -p "$logs"
rc=0
ACTORNVME_SPDK_BUNDLE=$bundle dotnet test tests/ActorNvme.RealPeer.Tests -c Release --no-build \
  --filter "FullyQualifiedName~SpdkDhChapTests" --logger "console;verbosity=normal" >"$logs/dotnet-test.log" 2>&1 || rc=$?
summary=$(grep -E "^(Passed!|Failed!|Total tests|     Passed|     Failed|     Skipped)" "$logs/dotnet-test.log" || true)
echo "$summary"
if [ "$rc" -ne 0 ]; then
  grep -E "^\s+Failed |Error Message" -A3 "$logs/dotnet-test.log" | head -40 || true
  echo "$me: FAIL (see $logs/dotnet-test.log)"
  exit 1
fi
if grep -qE "Skipped SpdkDhChap|\[SKIP\]" "$logs/dotnet-test.log"; then
  echo "$me: FAIL (facts were skipped although the bundle is present)"
  exit 1
fi
if ! grep -qE "Passed!|Total tests" "$logs/dotnet-test.log"; then
  echo "$me: FAIL (no test ran; is tests/ActorNvme.RealPeer.Tests built?)"
  exit 1
fi
echo "$me: PASS"
