#!/usr/bin/env bash
# Builds (or reuses) the guest for the Linux NVMe/TCP target: Debian's own kernel and an initramfs
# holding static busybox, our /init and helper commands (guest/), and the modules the target and
# the Linux NVMe/TCP host need. Neither package is installed: both are fetched with
# `apt-get download` and unpacked with `dpkg-deb -x`.
#
# Output: .cache/nvmet-qemu/<kernel-version>/{vmlinuz,initramfs.cpio.gz,kernel-version} in the
# repository; the directory is printed on stdout (everything else goes to stderr). It is rebuilt
# only when missing or when this script or anything under guest/ changed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${ACTORNVME_NVMET_CACHE:-$repo/.cache/nvmet-qemu}

# Target side, then the Linux NVMe/TCP host side (used to drive our own target from the guest).
modules=(virtio_pci virtio_net crc32c_generic crc32c-intel crct10dif_generic crct10dif-pclmul
  configfs nvmet nvmet-tcp brd nvme-core nvme-fabrics nvme-tcp)

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in apt-get apt-cache dpkg-deb depmod modprobe cpio gzip sha256sum flock; do
  command -v "$tool" >/dev/null || die "'$tool' not found (scripts/ensure-deps.sh installs what is missing)"
done

# The kernel package linux-image-amd64 currently points at, e.g. linux-image-6.1.0-56-amd64.
kernel_package() {
  apt-cache depends linux-image-amd64 2>/dev/null |
    awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

pkg=$(kernel_package || true)
if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
  log "package lists do not know linux-image-amd64; running apt-get update"
  timeout 600 apt-get update -q >&2 || log "apt-get update failed"
  pkg=$(kernel_package || true)
fi
if [ -z "$pkg" ]; then
  # Offline with a cache: use the newest image already built.
  newest=$(find "$cache" -mindepth 2 -maxdepth 2 -name kernel-version -printf '%h\n' 2>/dev/null | sort -V | tail -1)
  [ -n "$newest" ] || die "cannot tell which kernel linux-image-amd64 depends on (apt-cache has no package lists?) and nothing is cached in $cache"
  log "apt-cache cannot resolve linux-image-amd64; using cached $(basename "$newest")"
  echo "$newest"
  exit 0
fi
kver=${pkg#linux-image-}
out=$cache/$kver

sources_hash=$(
  cd "$here"
  printf '%s\n' "${modules[@]}"
  find build-image.sh guest -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  find guest -type f -perm -u+x -print | LC_ALL=C sort
)
sources_hash=$(printf '%s' "$sources_hash" | sha256sum | cut -d' ' -f1)

is_current() {
  [ -s "$out/vmlinuz" ] && [ -s "$out/initramfs.cpio.gz" ] &&
    [ "$(cat "$out/sources.sha256" 2>/dev/null)" = "$sources_hash" ]
}

if is_current; then
  log "reusing $out"
  echo "$out"
  exit 0
fi

mkdir -p "$cache/debs"
exec 9>"$cache/.build.lock"
flock -w 600 9 || die "another build held $cache/.build.lock for 600 s"
if is_current; then # built by whoever held the lock
  echo "$out"
  exit 0
fi

started=$SECONDS
log "building the guest for $kver"

fetch() { # fetch PACKAGE -> prints the .deb path
  local p=$1 deb
  deb=$(find "$cache/debs" -maxdepth 1 -name "${p}_*.deb" | sort -V | tail -1)
  if [ -z "$deb" ]; then
    log "apt-get download $p"
    (cd "$cache/debs" && timeout 600 apt-get download -q -o APT::Sandbox::User="$(id -un)" "$p" >&2) || die "apt-get download $p failed"
    deb=$(find "$cache/debs" -maxdepth 1 -name "${p}_*.deb" | sort -V | tail -1)
    [ -n "$deb" ] || die "apt-get download $p produced no .deb in $cache/debs"
  fi
  echo "$deb"
}
kdeb=$(fetch "$pkg")
bdeb=$(fetch busybox-static)

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "unpacking $(basename "$kdeb") and $(basename "$bdeb")"
dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$bdeb" "$work/busybox"
[ -f "$work/kernel/boot/vmlinuz-$kver" ] || die "no boot/vmlinuz-$kver in $(basename "$kdeb")"
[ -d "$work/kernel/lib/modules/$kver" ] || die "no lib/modules/$kver in $(basename "$kdeb")"
[ -x "$work/busybox/bin/busybox" ] || die "no bin/busybox in $(basename "$bdeb")"

# modules.dep for the whole package, to ask modprobe for each module's dependency closure.
depmod -b "$work/kernel" "$kver"

root=$work/initramfs
mkdir -p "$root/bin" "$root/usr/local/bin" "$root/etc" "$root/lib/modules/$kver"
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
cp "$here/guest/init" "$root/init"
cp "$here"/guest/commands/* "$root/usr/local/bin/"
cp "$here"/guest/etc/* "$root/etc/"
chmod 0755 "$root/init" "$root/bin/busybox" "$root"/usr/local/bin/*

count=0
for m in "${modules[@]}"; do
  deps=$(modprobe -d "$work/kernel" -S "$kver" --show-depends "$m") || die "modprobe cannot resolve module $m in $kver"
  while read -r kind path _; do
    [ "$kind" = insmod ] || continue # "builtin NAME" needs nothing
    rel=${path#"$work/kernel/"}
    if [ ! -f "$root/$rel" ]; then
      mkdir -p "$root/$(dirname "$rel")"
      cp "$path" "$root/$rel"
      count=$((count + 1))
    fi
  done <<<"$deps"
done
for f in modules.builtin modules.builtin.modinfo modules.order; do
  if [ -f "$work/kernel/lib/modules/$kver/$f" ]; then
    cp "$work/kernel/lib/modules/$kver/$f" "$root/lib/modules/$kver/"
  fi
done
depmod -b "$root" "$kver"
log "$count modules in the initramfs"

mkdir -p "$out"
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) |
  gzip -6 >"$out/initramfs.cpio.gz.tmp"
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$kver" >"$out/kernel-version"
echo "$sources_hash" >"$out/sources.sha256"
log "built $out in $((SECONDS - started)) s ($(du -h "$out/initramfs.cpio.gz" | cut -f1) initramfs)"
echo "$out"
