#!/usr/bin/env bash
# Builds the VSIX: a Release companion-helper in bin/, the bundled extension
# in out/, then vsce. Usage: scripts/package.sh [output.vsix]
#   COMPANION_HELPER_BIN=/path/to/companion-helper  use that binary instead of
#   building one (it must print "companion-helper <version>").
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
out="${1:-$ext/companion-$version.vsix}"

helper="${COMPANION_HELPER_BIN:-}"
if [ -z "$helper" ]; then
  echo "== building the Release helper in build-release/"
  cmake -S "$root" -B "$root/build-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$root/build-release" --target companion-helper -j"$(nproc)" >/dev/null
  helper="$root/build-release/companion-helper"
fi
got="$("$helper" --version)"
if [ "$got" != "companion-helper $version" ]; then
  echo "$helper --version says '$got', expected 'companion-helper $version'" >&2
  exit 1
fi
mkdir -p bin
cp "$helper" bin/companion-helper
strip bin/companion-helper 2>/dev/null || true
chmod +x bin/companion-helper

[ -d node_modules ] || npm ci
npm run --silent build
npx --no-install vsce package --no-dependencies --skip-license --allow-missing-repository -o "$out" </dev/null
ls -l "$out"
