#!/usr/bin/env bash
# Builds (or reuses) the guest for the Linux NVMe/TCP target: Debian's own kernel and an initramfs
# holding static busybox, our /init and helper commands (guest/), and the modules the target and
# the Linux NVMe/TCP host need. No package is installed: each is fetched with `apt-get download`
# and unpacked with `dpkg-deb -x`.
#
# ACTORNVME_NVMET_SUITE picks the kernel:
#   unset      the kernel the system's own apt sources point linux-image-amd64 at (Debian 12: 6.1)
#   a suite    e.g. trixie (Debian 13: 6.12, with DH-HMAC-CHAP and TLS in nvmet): the kernel, and
#              ktls-utils (tlshd) with the libraries it needs, come from that suite through a private
#              apt configuration under the cache (its own sources list, lists, archives and dpkg
#              status; the system's sources are neither read for it nor changed). The archive's URI
#              is the one the system's own sources use for Debian's main component, or
#              ACTORNVME_DEBIAN_MIRROR when set.
#
# Output: .cache/nvmet-qemu/<kernel-version>/{vmlinuz,initramfs.cpio.gz,kernel-version,features} in
# the repository; the directory is printed on stdout (everything else goes to stderr). `features`
# lists what the guest's target can do beyond plain NVMe/TCP ("dhchap tls" with tlshd aboard). It is
# rebuilt only when missing or when this script or anything under guest/ changed.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${ACTORNVME_NVMET_CACHE:-$repo/.cache/nvmet-qemu}
suite=${ACTORNVME_NVMET_SUITE:-}

# Target side, then the Linux NVMe/TCP host side (used to drive our own target from the guest).
# Modules the kernel has built in are skipped; /init loads the rest in this order (etc/nvmet-modules).
# brd (RAM disks for namespaces) is loaded with its parameters by /init.
modules=(virtio_pci virtio_net crc32c_generic configfs nvmet nvmet-tcp nvme-core nvme-fabrics nvme-tcp brd)
# CPU-accelerated variants, loaded when the (emulated) CPU has the instructions.
optional_modules=(crc32c-intel crct10dif_generic crct10dif-pclmul)
if [ -n "$suite" ]; then
  # DH-HMAC-CHAP (nvme-auth, its hashes and RFC 7919 groups) and NVMe/TCP over kTLS.
  modules+=(nvme-auth nvme-keyring tls)
  optional_modules+=(sha256-ssse3 sha512-ssse3 gcm ghash-generic ghash-clmulni-intel aesni-intel ccm)
fi
# tlshd performs the TLS handshakes nvmet-tcp hands up through the kernel's handshake netlink.
tls_packages=(ktls-utils keyutils)

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in apt-get apt-cache dpkg-deb depmod modprobe cpio gzip xz sha256sum flock; do
  command -v "$tool" >/dev/null || die "'$tool' not found (scripts/ensure-deps.sh installs what is missing)"
done

# apt with the system's configuration, or the private one of $suite (set up by private_apt_setup).
apt_opts=()
debs=$cache/debs
if [ -n "$suite" ]; then
  case $suite in *[!a-z0-9-]*) die "ACTORNVME_NVMET_SUITE '$suite' is not a suite name" ;; esac
  apt_dir=$cache/apt-$suite
  debs=$cache/debs-$suite
  apt_opts=(
    -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::Etc::Preferences=/dev/null" -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
    -o "Dir::State=$apt_dir/state" -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=$apt_dir/status"
    -o "Dir::Cache=$apt_dir/cache" -o Acquire::Languages=none -o APT::Sandbox::User="$(id -un)"
    -o Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::DEP-11-icons-hidpi::DefaultEnabled=false
    -o Acquire::IndexTargets::deb::CNF::DefaultEnabled=false
  )
fi

# The URI the system's apt uses for Debian's main archive (not -updates, -security or -backports).
debian_mirror() {
  if [ -n "${ACTORNVME_DEBIAN_MIRROR:-}" ]; then
    echo "$ACTORNVME_DEBIAN_MIRROR"
    return
  fi
  local uri
  uri=$(system_mirror_from_lists)
  if [ -z "$uri" ] && [ "$(id -u)" -eq 0 ]; then
    # A machine whose package lists were never fetched (or were cleaned) knows its sources only as text.
    log "the system's package lists name no Debian archive; running apt-get update"
    timeout 600 apt-get update -q >&2 || log "apt-get update failed"
    uri=$(system_mirror_from_lists)
  fi
  [ -n "$uri" ] || uri=$(system_mirror_from_sources)
  echo "$uri"
}
system_mirror_from_lists() {
  apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(ORIGIN) $(LABEL) $(COMPONENT) $(IDENTIFIER)' 2>/dev/null |
    awk '!found && $3 == "Debian" && $4 == "Debian" && $5 == "main" && $6 == "Packages" && $2 !~ /-/ { print $1; found = 1 }'
}
# (Readers here read all their input: one that stops early breaks the pipe, and pipefail fails the pipeline.)
# The first http(s) URI of a Debian main suite without a '-' (not -updates/-security) in the sources
# files themselves, one-line or deb822 form.
system_mirror_from_sources() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
         if ($(i+1) !~ /-/ && $0 ~ / main( |$)/ && $i ~ /^https?:/) { print $i; exit } }' "$f"
  done | awk 'NR == 1' | grep . && return
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk 'BEGIN { RS = ""; FS = "\n" }
         { uri = ""; ok = 0
           for (n = 1; n <= NF; n++) {
             if ($n ~ /^URIs:/) { split($n, a, " "); uri = a[2] }
             if ($n ~ /^Suites:/) { split($n, a, " "); if (a[2] !~ /-/) ok = 1 }
           }
           if (ok && uri ~ /^https?:/ && $0 ~ /Components:[^\n]* main/) { print uri; exit } }' "$f"
  done | awk 'NR == 1'
}

# The archive key of $suite must be in the system's keyring the private sources list names. A Debian 12
# installed before Debian 13 was released has a debian-archive-keyring without it; its update has it.
ensure_suite_key() {
  [ -f "/usr/share/keyrings/debian-archive-$suite-stable.gpg" ] && return 0
  log "debian-archive-keyring has no key for $suite; upgrading it from the system's sources"
  if [ "$(id -u)" -eq 0 ]; then
    timeout 600 apt-get update -q >&2 || log "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --only-upgrade debian-archive-keyring >&2 ||
      log "apt-get install debian-archive-keyring failed"
  fi
  [ -f "/usr/share/keyrings/debian-archive-$suite-stable.gpg" ] ||
    log "still no archive key for $suite: its package lists cannot be verified"
}

# private_apt_setup — the private sources list for $suite; refreshes its package lists when they are
# missing or older than a day. Returns non-zero when it has no lists at all.
private_apt_setup() {
  local mirror lists_age=
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/state" "$apt_dir/preferences.d"
  [ -f "$apt_dir/status" ] || : >"$apt_dir/status"
  if [ ! -s "$apt_dir/sources.list" ]; then
    mirror=$(debian_mirror)
    [ -n "$mirror" ] || { log "cannot tell the URI of Debian's archive from the system's apt sources; set ACTORNVME_DEBIAN_MIRROR"; return 1; }
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] ${mirror%/} $suite main" >"$apt_dir/sources.list"
  fi
  if compgen -G "$apt_dir/lists/*_Packages*" >/dev/null; then
    lists_age=$(($(date +%s) - $(stat -c %Y "$apt_dir/lists" 2>/dev/null || echo 0)))
  fi
  if [ -z "$lists_age" ] || [ "$lists_age" -gt 86400 ]; then
    ensure_suite_key
    log "apt-get update ($suite, private configuration)"
    if timeout 600 apt-get "${apt_opts[@]}" update -q >&2; then
      touch "$apt_dir/lists"
    else
      log "apt-get update for $suite failed"
    fi
  fi
  compgen -G "$apt_dir/lists/*_Packages*" >/dev/null
}

# The kernel package linux-image-amd64 currently points at, e.g. linux-image-6.1.0-56-amd64.
kernel_package() {
  apt-cache "${apt_opts[@]}" depends linux-image-amd64 2>/dev/null |
    awk '!found && $1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; found = 1 }'
}

pkg=
if [ -n "$suite" ]; then
  if private_apt_setup; then pkg=$(kernel_package || true); fi
else
  pkg=$(kernel_package || true)
  if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
    log "package lists do not know linux-image-amd64; running apt-get update"
    timeout 600 apt-get update -q >&2 || log "apt-get update failed"
    pkg=$(kernel_package || true)
  fi
fi
if [ -z "$pkg" ]; then
  # Offline with a cache: use the newest image already built for the same suite.
  newest=$(find "$cache" -mindepth 2 -maxdepth 2 -name kernel-version -printf '%h\n' 2>/dev/null | sort -V |
    while read -r d; do [ "$(cat "$d/suite" 2>/dev/null || echo system)" = "${suite:-system}" ] && echo "$d"; done | tail -1)
  [ -n "$newest" ] || die "cannot tell which kernel linux-image-amd64 depends on${suite:+ in $suite} (no package lists?) and nothing is cached in $cache"
  log "apt-cache cannot resolve linux-image-amd64; using cached $(basename "$newest")"
  echo "$newest"
  exit 0
fi
kver=${pkg#linux-image-}
out=$cache/$kver

sources_hash=$(
  cd "$here"
  echo "suite=${suite:-system}"
  printf '%s\n' "${modules[@]}" -- "${optional_modules[@]}"
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

mkdir -p "$debs"
exec 9>"$cache/.build.lock"
flock -w 600 9 || die "another build held $cache/.build.lock for 600 s"
if is_current; then # built by whoever held the lock
  echo "$out"
  exit 0
fi

started=$SECONDS
log "building the guest for $kver${suite:+ ($suite)}"

# fetch PACKAGE [APT-OPTION...] -> prints the .deb path (cached in $debs, or in $cache/debs when the
# system's configuration is used)
fetch() {
  local p=$1 dir=$debs deb
  shift
  [ $# -gt 0 ] || dir=$cache/debs
  mkdir -p "$dir"
  deb=$(find "$dir" -maxdepth 1 -name "${p}_*.deb" | sort -V | tail -1)
  if [ -z "$deb" ]; then
    log "apt-get download $p"
    (cd "$dir" && timeout 600 apt-get "$@" download -q -o APT::Sandbox::User="$(id -un)" "$p" >&2) || die "apt-get download $p failed"
    deb=$(find "$dir" -maxdepth 1 -name "${p}_*.deb" | sort -V | tail -1)
    [ -n "$deb" ] || die "apt-get download $p produced no .deb in $dir"
  fi
  echo "$deb"
}
kdeb=$(fetch "$pkg" "${apt_opts[@]}")
bdeb=$(fetch busybox-static) # the system's: a static binary runs on either kernel

work=$(mktemp -d "$cache/build.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "unpacking $(basename "$kdeb") and $(basename "$bdeb")"
dpkg-deb -x "$kdeb" "$work/kernel"
dpkg-deb -x "$bdeb" "$work/busybox"
[ -f "$work/kernel/boot/vmlinuz-$kver" ] || die "no boot/vmlinuz-$kver in $(basename "$kdeb")"
# Merged-/usr packages (Debian 13) keep modules in usr/lib/modules.
kbase=$work/kernel
[ -d "$kbase/lib/modules/$kver" ] || kbase=$work/kernel/usr
[ -d "$kbase/lib/modules/$kver" ] || die "no lib/modules/$kver or usr/lib/modules/$kver in $(basename "$kdeb")"
[ -x "$work/busybox/bin/busybox" ] || die "no bin/busybox in $(basename "$bdeb")"

# modules.dep for the whole package, to ask modprobe for each module's dependency closure.
depmod -b "$kbase" "$kver"

root=$work/initramfs
mkdir -p "$root/bin" "$root/usr/local/bin" "$root/etc" "$root/lib/modules/$kver"
cp "$work/busybox/bin/busybox" "$root/bin/busybox"
cp "$here/guest/init" "$root/init"
cp "$here"/guest/commands/* "$root/usr/local/bin/"
cp "$here"/guest/etc/* "$root/etc/"
chmod 0755 "$root/init" "$root/bin/busybox" "$root"/usr/local/bin/*

# copy_module NAME REQUIRED — NAME's dependency closure into the initramfs (decompressed: busybox's
# modprobe loads plain .ko only); NAME goes into the load list unless the kernel has it built in.
count=0
: >"$root/etc/nvmet-modules"
copy_module() {
  local m=$1 required=$2 deps kind path rel loadable=false
  if ! deps=$(modprobe -d "$kbase" -S "$kver" --show-depends "$m" 2>/dev/null); then
    [ "$required" = required ] && die "modprobe cannot resolve module $m in $kver"
    log "note: optional module $m is not in $kver"
    return 0
  fi
  while read -r kind path _; do
    [ "$kind" = insmod ] || continue # "builtin NAME" needs nothing
    loadable=true
    rel=${path#"$kbase/"}
    case $rel in *.ko.xz) rel=${rel%.xz} ;; *.ko.zst) rel=${rel%.zst} ;; *.ko.gz) rel=${rel%.gz} ;; esac
    if [ ! -f "$root/$rel" ]; then
      mkdir -p "$root/$(dirname "$rel")"
      case $path in
        *.xz) xz -dc "$path" >"$root/$rel" ;;
        *.zst) zstd -q -dc "$path" >"$root/$rel" ;;
        *.gz) gzip -dc "$path" >"$root/$rel" ;;
        *) cp "$path" "$root/$rel" ;;
      esac
      count=$((count + 1))
    fi
  done <<<"$deps"
  if [ "$loadable" = true ]; then echo "$required ${m//-/_}" >>"$root/etc/nvmet-modules"; fi
}
for m in "${modules[@]}"; do copy_module "$m" required; done
for m in "${optional_modules[@]}"; do copy_module "$m" optional; done
for f in modules.builtin modules.builtin.modinfo modules.order; do
  if [ -f "$kbase/lib/modules/$kver/$f" ]; then
    sed -e 's/\.ko\.\(xz\|zst\|gz\)$/.ko/' "$kbase/lib/modules/$kver/$f" >"$root/lib/modules/$kver/$f"
  fi
done
depmod -b "$root" "$kver"
log "$count modules in the initramfs"

features=
if [ -n "$suite" ]; then
  # tlshd and keyctl with their Depends closure from the same suite, unpacked into the initramfs.
  closure=$(apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
    --no-breaks --no-replaces --no-enhances "${tls_packages[@]}" 2>/dev/null | grep -E '^[a-z0-9]' | sort -u)
  [ -n "$closure" ] || die "apt-cache cannot resolve ${tls_packages[*]} in $suite"
  tls=$work/tls
  mkdir -p "$tls"
  wanted=()
  for p in $closure; do
    case $p in
      # Maintainer-script and shell machinery the guest never runs.
      debconf | perl-base | dpkg | bash | coreutils | tar | sed | grep | findutils | diffutils | base-files | usrmerge) continue ;;
    esac
    wanted+=("$p")
  done
  # One apt-get call for every package not cached yet (each call reads the package lists again).
  missing=()
  for p in "${wanted[@]}"; do
    compgen -G "$debs/${p}_*.deb" >/dev/null || missing+=("$p")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "apt-get download ${missing[*]}"
    (cd "$debs" && timeout 600 apt-get "${apt_opts[@]}" download -q "${missing[@]}" >&2) || die "apt-get download from $suite failed"
  fi
  for p in "${wanted[@]}"; do
    dpkg-deb -x "$(fetch "$p" "${apt_opts[@]}")" "$tls"
  done
  n=${#wanted[@]}
  [ -x "$tls/usr/sbin/tlshd" ] || die "no usr/sbin/tlshd after unpacking ${tls_packages[*]}"
  rm -rf "$tls"/usr/share/{doc,man,info,locale,lintian,bug,bash-completion} "$tls"/usr/lib/x86_64-linux-gnu/gconv
  # The initramfs keeps a real /lib (modules); the program interpreter lives in usr/lib64 or usr/lib.
  rm -rf "$tls/lib" "$tls/lib64" "$tls/bin" "$tls/sbin" "$tls/etc/init.d"
  rm -f "$tls/etc/tlshd.conf" # guest/etc's takes its place
  (cd "$tls" && find . -mindepth 1 -print0 | cpio --null -pdm --quiet "$root")
  mkdir -p "$root/lib64"
  for ld in "$root/usr/lib64/ld-linux-x86-64.so.2" "$root/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"; do
    if [ -e "$ld" ]; then
      ln -sf "/${ld#"$root/"}" "$root/lib64/ld-linux-x86-64.so.2"
      break
    fi
  done
  [ -e "$root/lib64/ld-linux-x86-64.so.2" ] || die "no ld-linux-x86-64.so.2 among the unpacked libraries"
  log "tlshd and $n packages from $suite in the initramfs"
  features="dhchap tls"
fi

mkdir -p "$out"
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc -R 0:0 --quiet) |
  gzip -6 >"$out/initramfs.cpio.gz.tmp"
cp "$work/kernel/boot/vmlinuz-$kver" "$out/vmlinuz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
mv "$out/vmlinuz.tmp" "$out/vmlinuz"
echo "$kver" >"$out/kernel-version"
echo "${suite:-system}" >"$out/suite"
echo "$features" >"$out/features"
echo "$sources_hash" >"$out/sources.sha256"
log "built $out in $((SECONDS - started)) s ($(du -h "$out/initramfs.cpio.gz" | cut -f1) initramfs)"
echo "$out"
