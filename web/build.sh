#!/usr/bin/env bash
# web/build.sh [OUTDIR]: builds the phone client and the C file that embeds
# it. npm ci (only when package-lock.json changed since the last one),
# typecheck, lint, bundle into web/dist/ with the size budget (fails above
# it), then web/scripts/embed.mjs writes OUTDIR/web-assets.c (default:
# web/build/). Safe to run again; prints the path of web-assets.c last.
set -euo pipefail
cd "$(dirname "$0")"
out="${1:-build}"
stamp=node_modules/.companion-lock-sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" >"$stamp"
fi
npx tsc --noEmit -p tsconfig.json
npx tsc --noEmit -p tsconfig.sw.json
npx eslint .
node scripts/build.mjs
node scripts/embed.mjs "$out" >&2
echo "$(cd "$out" && pwd)/web-assets.c"
