#!/usr/bin/env bash
# web/build.sh [--bundle] [OUTDIR]: builds the phone client and the C file
# that embeds it. npm ci (only when package-lock.json changed since the last
# one), typecheck and lint (skipped with --bundle: CMake's build step, the
# tests run them), bundle with the size budget (fails above it), then
# web/scripts/embed.mjs writes OUTDIR/web-assets.c (default: web/build/).
# The bundle goes to $WEB_DIST when set (CMake: its own build tree, so two
# build trees never share one dist/), else web/dist/. Safe to run again;
# prints the path of web-assets.c last.
set -euo pipefail
cd "$(dirname "$0")"
checks=1
if [ "${1:-}" = "--bundle" ]; then
  checks=0
  shift
fi
out="${1:-build}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
# One npm ci at a time when several build trees build at once.
exec 9>node_modules.lock
flock 9
stamp=node_modules/.companion-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error >&2
  echo "$want" >"$stamp"
fi
flock -u 9
if [ $checks -eq 1 ]; then
  npx tsc --noEmit -p tsconfig.json
  npx tsc --noEmit -p tsconfig.sw.json
  npx eslint .
fi
if [ $checks -eq 1 ]; then
  node scripts/build.mjs >&2
  node scripts/embed.mjs "$out" >&2
else
  # CMake's step: quiet unless something fails (the report stays in
  # dist-report.json beside the bundle).
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  if ! { node scripts/build.mjs && node scripts/embed.mjs "$out"; } >"$log" 2>&1; then
    cat "$log" >&2
    exit 1
  fi
fi
echo "$out/web-assets.c"
