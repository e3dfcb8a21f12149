#!/usr/bin/env bash
# One version everywhere: CMakeLists.txt's project version must equal the
# newest released entry of CHANGELOG.md, `companion-helper --version`, and
# the version of every package.json that ships (extension, bridge).
set -euo pipefail
cd "$(dirname "$0")/.."
want=$(sed -n 's/^project(companion VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
fail=0
check() { # name value
  if [ "$2" = "$want" ]; then echo "version: $1 $2"; else echo "version: $1 is '$2', CMakeLists.txt says $want" >&2; fail=1; fi
}
check CHANGELOG.md "$(grep -m1 -oE '^## \[[0-9]+\.[0-9]+\.[0-9]+\]' CHANGELOG.md | tr -d '#[] ')"
bin=${1:-build/companion-helper}
[ -x "$bin" ] && check "$bin" "$("$bin" --version | awk '{print $2}')"
for pj in vscode-ext/package.json bridges/whatsapp/package.json; do
  [ -f "$pj" ] && check "$pj" "$(node -p "require('./$pj').version")"
done
exit $fail
