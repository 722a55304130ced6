#!/usr/bin/env bash
# test-timeout: 300
# Single writer at SPDK's nvmf_tgt: runs the SpdkReservationTests facts of tests/ActorNvme.RealPeer.Tests with
# ACTORNVME_SPDK_BUNDLE set to the bundle scripts/spdk-peer.sh unpacks. One nvmf_tgt (no hugepages, 127.0.0.1,
# a free port) with a subsystem per fact open to any host; two hosts with their own host identifiers: A holds a
# Write Exclusive reservation, B fences it with Reservation Acquire (preempt and abort), A's next write is
# refused with Reservation Conflict and B's writes land; then the same takeover through a writer fence, whose
# block device is handed out only once SPDK reports B as the holder.
# Needs the test project built (dotnet build -c Release). Logs in artifacts/spdk-reservations/.
# Exit: 0 passed, 1 failed, 77 skipped (no SPDK bundle at ../shared/peers/spdk, or not root).
set -euo pipefail
cd "$(dirname "$0")/../.."

me=spdk-reservations
if [ "$(id -u)" -ne 0 ]; then
  echo "$me: SKIP (nvmf_tgt is run as root only)"
  exit 77
fi
# shellcheck source=lib/preflight.sh
. tests/shell/lib/preflight.sh
# shellcheck source=lib/spdk-keys.sh
. tests/shell/lib/spdk-keys.sh
require_spdk_bundle

logs=artifacts/spdk-reservations
mkdir -p "$logs"
run_realpeer_facts SpdkReservationTests
echo "$me: PASS"
