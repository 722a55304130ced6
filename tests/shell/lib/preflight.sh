# Checks shared by the shell tests that need root, tools, SPDK's bundle or the built CLI. Sourced.
# Each prints "<me>: SKIP (...)" and exits 77, or "<me>: FAIL (...)" and exits 1; $me names the test.

# require_root_and_tools TOOL...: root (network namespaces) and every tool on the PATH.
require_root_and_tools() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$me: SKIP (needs root for network namespaces)"
    exit 77
  fi
  local tool
  for tool in "$@"; do
    if ! command -v "$tool" >/dev/null; then
      echo "$me: SKIP ($tool is not installed; scripts/ensure-deps.sh installs it as root)"
      exit 77
    fi
  done
}

# require_spdk_bundle: sets bundle to SPDK's unpacked bundle (scripts/spdk-peer.sh).
require_spdk_bundle() {
  local rc=0
  bundle=$(scripts/spdk-peer.sh) || rc=$?
  if [ "$rc" -eq 77 ]; then
    echo "$me: SKIP (SPDK's bundle is not present at ../shared/peers/spdk)"
    exit 77
  elif [ "$rc" -ne 0 ]; then
    echo "$me: FAIL (scripts/spdk-peer.sh could not make SPDK's target ready)"
    exit 1
  fi
}

# require_built DLL: the CLI has been built.
require_built() {
  if [ ! -f "$1" ]; then
    echo "$me: FAIL ($1 is not built; run dotnet build -c Release first)"
    exit 1
  fi
}
