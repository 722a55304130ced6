#!/usr/bin/env bash
# Installs the Debian packages the real-peer tests need (QEMU for the Linux NVMe/TCP target, the
# tools that build its initramfs, tshark for dissecting captures) and the shell tests need (socat as a
# generic JSON-RPC client, jq; PostgreSQL 15 for the cluster's full-restart test, which starts a throwaway
# server of its own), but only those that are missing.
# Idempotent: when everything is present it only asks dpkg and returns.
set -euo pipefail

packages=(qemu-system-x86 cpio kmod busybox-static xz-utils tshark iproute2 socat jq postgresql-15)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  if [ "$status" != "installed" ]; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "ensure-deps: missing packages: ${missing[*]}; run as root (or install them) to enable the real-peer tests" >&2
  exit 0
fi

echo "ensure-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark's package would otherwise ask whether non-root users may capture.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
timeout 600 apt-get update -q
timeout 900 apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}"
