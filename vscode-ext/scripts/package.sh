#!/usr/bin/env bash
# Builds the VSIX for one platform: a Release companion-helper in bin/, the
# WhatsApp bridge in bridge/, the bundled extension in out/, then `vsce package --target`. Usage:
#   scripts/package.sh [output.vsix]
#   VSCE_TARGET=linux-arm64|darwin-arm64|...  the VS Code target (default: this
#     machine's, e.g. linux-x64); a runner of that platform builds its own
#     helper, so the same script serves every target.
#   COMPANION_HELPER_BIN=/path/to/companion-helper  use that binary instead of
#     building one (it must print "companion-helper <version>").
set -euo pipefail
ext="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$ext/.." && pwd)"
cd "$ext"
version="$(sed -n 's/^project(companion VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")"
pkg_version="$(node -p 'require("./package.json").version')"
if [ "$version" != "$pkg_version" ]; then
  echo "package.json version $pkg_version differs from CMakeLists.txt $version" >&2
  exit 1
fi
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64) default_target=linux-x64 ;;
  Linux-aarch64) default_target=linux-arm64 ;;
  Darwin-arm64) default_target=darwin-arm64 ;;
  Darwin-x86_64) default_target=darwin-x64 ;;
  *) default_target=unknown ;;
esac
target="${VSCE_TARGET:-$default_target}"
out="${1:-$ext/companion-$version.vsix}"

helper="${COMPANION_HELPER_BIN:-}"
if [ -z "$helper" ]; then
  echo "== building the Release helper in build-release/"
  cmake -S "$root" -B "$root/build-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build-release" --target companion-helper companion-git -j"$(nproc)" >/dev/null
  helper="$root/build-release/companion-helper"
fi
got="$("$helper" --version)"
if [ "$got" != "companion-helper $version" ]; then
  echo "$helper --version says '$got', expected 'companion-helper $version'" >&2
  exit 1
fi
# The git commands are a module the helper loads from beside itself.
module="$(dirname "$helper")/companion-git.so"
[ -f "$module" ] || { echo "no $module beside the helper" >&2; exit 1; }
mkdir -p bin
cp "$helper" bin/companion-helper
cp "$module" bin/companion-git.so
strip bin/companion-helper 2>/dev/null || true
strip --strip-unneeded bin/companion-git.so 2>/dev/null || true
chmod +x bin/companion-helper

# The WhatsApp bridge (Link WhatsApp), one minified ESM file run with the editor's own Node.
echo "== bundling the WhatsApp bridge into bridge/"
(cd "$root/bridges/whatsapp" && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && node build.mjs --minify --out "$ext/bridge/companion-whatsapp.mjs")

cp "$root/LICENSE" LICENSE
[ -d node_modules ] || npm ci
npm run --silent build
npx --no-install vsce package --target "$target" --no-dependencies --allow-missing-repository -o "$out" </dev/null
ls -l "$out"
