#!/usr/bin/env bash
# End-to-end test in a real VS Code (code-server 4.100.3 + Debian chromium).
# Installs the tools (scripts/e2e-install.sh), packages the VSIX
# (scripts/package.sh) and runs scripts/e2e.mjs. Screenshots, the results
# JSON and code-server's log land in vscode-ext/e2e-artifacts/.
set -euo pipefail
ext="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ext"
bash scripts/e2e-install.sh
[ -d node_modules ] || npm ci
if [ "${E2E_SKIP_PACKAGE:-0}" != 1 ]; then bash scripts/package.sh; fi
rm -rf e2e-artifacts
timeout 600 node scripts/e2e.mjs
