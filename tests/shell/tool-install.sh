#!/usr/bin/env bash
# The install the README documents: `dotnet pack Host` makes the ActorNvme.Tool package in
# artifacts/packages, and `dotnet tool install --tool-path DIR --add-source artifacts/packages ActorNvme.Tool`
# installs the `actornvme` command. Here into a temporary tool path: the installed command runs, carries the
# library defaults (reference.conf, printed by `actornvme config`), and refuses a bad value with a clear error.
# Exit: 0 passed, 1 failed.
set -euo pipefail
cd "$(dirname "$0")/../.."

me=tool-install
work=$(mktemp -d /tmp/anvme-tool.XXXXXX)
trap 'rm -rf "$work"' EXIT
fail() { echo "$me: FAIL ($*)"; exit 1; }

dotnet pack Host -c Release -nologo -v quiet -o "$work/packages" >"$work/pack.log" 2>&1 || fail "dotnet pack: $(tail -n 5 "$work/pack.log")"
package=$(ls "$work/packages"/ActorNvme.Tool.*.nupkg 2>/dev/null | head -n 1)
[ -n "$package" ] || fail "no ActorNvme.Tool package in $work/packages"
dotnet tool install --tool-path "$work/tools" --add-source "$work/packages" ActorNvme.Tool >"$work/install.log" 2>&1 \
  || fail "dotnet tool install: $(tail -n 5 "$work/install.log")"
tool="$work/tools/actornvme"
[ -x "$tool" ] || fail "no actornvme command in the tool path"

grep -q "actornvme \[command\]" <<<"$("$tool" --help)" || fail "actornvme --help does not show the usage"
grep -q "keep-alive-timeout = .*# default" <<<"$("$tool" config)" || fail "actornvme config does not print the library defaults"
out=$("$tool" discover -t tcp -a 127.0.0.1 -s 1 --timeout -1 2>&1) && fail "discover --timeout -1 succeeded"
grep -q -- "--timeout" <<<"$out" || fail "discover --timeout -1 does not name the option: $out"
echo "$me: $(basename "$package") installed; actornvme --help, config and a refused option work"
echo "$me: PASS"
