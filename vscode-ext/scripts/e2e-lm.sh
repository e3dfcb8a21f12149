#!/usr/bin/env bash
# End-to-end test of vscode-lm agents in a real VS Code: code-server 4.105.1
# on Node 22 (scripts/e2e-install.sh lm installs both from npm into
# vscode-ext/e2e-tools-lm), the packaged VSIX (scripts/package.sh) and the
# test extension test/e2e-lm; then scripts/e2e-lm.mjs. Results, screenshots
# and logs land in vscode-ext/e2e-artifacts-lm/. Exits non-zero on any
# failure. E2E_SKIP_PACKAGE=1 reuses the VSIX; E2E_LM_UNTIL=model stops after
# the model checks (a helper without agent.prompt).
set -euo pipefail
ext="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ext"
start=$(date +%s)
bash scripts/e2e-install.sh lm
[ -d node_modules ] || npm ci
if [ "${E2E_SKIP_PACKAGE:-0}" != 1 ]; then bash scripts/package.sh; fi
echo "e2e-lm: tools and VSIX ready in $(( $(date +%s) - start )) s"
rm -rf e2e-artifacts-lm
# The run's budget: 4 minutes.
timeout 240 node scripts/e2e-lm.mjs
