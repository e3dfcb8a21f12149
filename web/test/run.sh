#!/usr/bin/env bash
# bash web/test/run.sh: installs what the web suite needs (Debian's
# chromium and the project's build dependencies via scripts/deps.sh, the
# npm packages via web/build.sh), builds the helper (which embeds the app)
# and the app (typecheck, lint, web/dist/ for the embedding test), then runs
# the browser tests against the real helper serving the app, and the
# embedding test. Works
# as root with CI=true and no stdin; safe to run again.
set -euo pipefail
web="$(cd "$(dirname "$0")/.." && pwd)"
root="$(cd "$web/.." && pwd)"

bash "$root/scripts/deps.sh" --browser </dev/null

echo "== helper"
dir=$(cd "$root" && bash scripts/build.sh)
export HELPER_BIN="${HELPER_BIN:-$root/$dir/companion-helper}"

echo "== app: npm ci, typecheck, lint, bundle, budget, embed"
bash "$web/build.sh" "$web/build" >/dev/null

echo "== the scripted ACP agent's SDK (tests/integration)"
if [ ! -d "$root/tests/integration/node_modules/@agentclientprotocol/sdk" ]; then
  (cd "$root/tests/integration" && npm ci --no-audit --no-fund --loglevel=error </dev/null)
fi

echo "== web tests (phone-sized Chromium against the real helper)"
cd "$web"
node --test --test-concurrency=1 test/*.test.mjs </dev/null
