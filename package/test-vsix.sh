#!/usr/bin/env bash
# VSIX check: packages the extension (vscode-ext/scripts/package.sh), unpacks
# it, and checks the manifest (name, version = CMake's, engines, target), the
# helper in bin/ (executable bit kept, runs, right version) and the size
# budget (under 5 MB).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version=$(sed -n 's/^project(companion VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
vsix="$root/vscode-ext/companion-$version.vsix"
budget=$((5 * 1024 * 1024))
(cd "$root/vscode-ext" && bash scripts/package.sh "$vsix" >/dev/null)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 - "$vsix" "$work" <<'PY'
import sys, zipfile, stat
z = zipfile.ZipFile(sys.argv[1])
z.extractall(sys.argv[2])
for i in z.infolist():
    mode = (i.external_attr >> 16) & 0o777
    if i.filename == 'extension/bin/companion-helper' and not mode & stat.S_IXUSR:
        sys.exit('vsix: bin/companion-helper lost its executable bit')
PY
chmod +x "$work/extension/bin/companion-helper" # zipfile does not restore modes; checked above
fail=0
check() { if [ "$2" = "$3" ]; then echo "vsix: $1 = $2"; else echo "vsix: $1 is '$2', expected '$3'" >&2; fail=1; fi; }
m="$work/extension/package.json"
check name "$(node -p "require('$m').name")" companion
check version "$(node -p "require('$m').version")" "$version"
check engines.vscode "$(node -p "require('$m').engines.vscode")" "^1.100.0"
check "manifest target" "$(sed -n 's/.*TargetPlatform="\([^"]*\)".*/\1/p' "$work/extension.vsixmanifest" | head -1)" linux-x64
check "bundled helper" "$("$work/extension/bin/companion-helper" --version)" "companion-helper $version"
check "bundled git module" "$(test -f "$work/extension/bin/companion-git.so" && echo present)" present
size=$(stat -c %s "$vsix")
if [ "$size" -lt "$budget" ]; then echo "vsix: size $((size / 1024)) KiB (budget 5 MiB)"; else echo "vsix: $size bytes is over the 5 MiB budget" >&2; fail=1; fi
[ $fail -eq 0 ] && echo "vsix: 7 passed, 0 failed" || { echo "vsix: failed" >&2; exit 1; }
