#!/usr/bin/env bash
# Makes SPDK's NVMe-oF target (nvmf_tgt, rpc.py, host tools) usable as a test peer: unpacks the prebuilt
# bundle from ../shared/peers/spdk (relative to the repository root; ACTORNVME_SPDK_PEER overrides it)
# into .cache/spdk-peer/ (git-ignored) and, as root, installs the Debian runtime packages it needs
# (only those missing). On success prints the absolute path of the unpacked bundle (the directory that
# holds build/bin and scripts/rpc.py) as its only line on stdout.
# Exit: 0 ready, 77 the bundle is not there, 1 it could not be made ready.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

peer_dir=${ACTORNVME_SPDK_PEER:-../shared/peers/spdk}
tarball=$(ls "$peer_dir"/spdk-*-nvmf-x86_64.tar.xz 2>/dev/null | sort | tail -n 1 || true)
if [ -z "$tarball" ]; then
  echo "spdk-peer: no SPDK bundle (spdk-*-nvmf-x86_64.tar.xz) in $peer_dir" >&2
  exit 77
fi

# nvmf_tgt's shared libraries (libc comes with the base system) and rpc.py's interpreter.
packages=(libnuma1 libuuid1 libssl3 libfuse3-3 libkeyutils1 libaio1 python3)
missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
  [ "$status" = "installed" ] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "spdk-peer: missing packages: ${missing[*]}; run as root (or install them)" >&2
    exit 1
  fi
  echo "spdk-peer: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt_opts=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
  timeout 900 apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" >&2 \
    || { timeout 600 apt-get update -q >&2 && timeout 900 apt-get install "${apt_opts[@]}" --no-install-recommends "${missing[@]}" >&2; }
fi

# Unpacked once per bundle: a stamp names the tarball and its size, so a new bundle replaces the old.
cache=$repo/.cache/spdk-peer
name=$(basename "$tarball" .tar.xz)
stamp="$name $(stat -c %s "$tarball")"
if [ ! -x "$cache/$name/build/bin/nvmf_tgt" ] || [ "$(cat "$cache/stamp" 2>/dev/null || true)" != "$stamp" ]; then
  rm -rf "$cache"
  mkdir -p "$cache"
  tar -xJf "$tarball" -C "$cache"
  printf '%s\n' "$stamp" >"$cache/stamp"
fi

bundle=$cache/$name
for f in build/bin/nvmf_tgt scripts/rpc.py; do
  [ -e "$bundle/$f" ] || { echo "spdk-peer: $f missing from $tarball" >&2; exit 1; }
done
if ldd "$bundle/build/bin/nvmf_tgt" | grep -q 'not found'; then
  echo "spdk-peer: nvmf_tgt lacks libraries: $(ldd "$bundle/build/bin/nvmf_tgt" | grep 'not found' | tr -s ' \n' ' ')" >&2
  exit 1
fi
echo "$bundle"
