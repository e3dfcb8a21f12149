#!/usr/bin/env bash
# Installs what the end-to-end test needs (see shared VSCODE-E2E-FACTS.md):
# Debian chromium + build deps, and code-server 4.100.3 + playwright-core
# from npm into vscode-ext/e2e-tools (npm ci of its lockfile). Safe to run again.
set -euo pipefail
ext="$(cd "$(dirname "$0")/.." && pwd)"
tools="$ext/e2e-tools"
CODE_SERVER_VERSION=4.100.3

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

if [ -x "$tools/node_modules/.bin/code-server" ] && [ -d "$tools/node_modules/playwright-core" ] &&
   "$tools/node_modules/.bin/code-server" --version 2>/dev/null | grep -q "^$CODE_SERVER_VERSION"; then
  echo "e2e: code-server $CODE_SERVER_VERSION already installed in $tools"
  exit 0
fi
tmp="$(mktemp -d)"
# code-server's ripgrep download cannot reach GitHub here: give it Debian's rg.
cache="$tmp/vscode-ripgrep-cache-1.15.11"
mkdir -p "$cache/pkg"
cp /usr/bin/rg "$cache/pkg/rg"
tar -czf "$cache/ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz" -C "$cache/pkg" rg
(
  cd "$tools"
  TMPDIR="$tmp" npm_config_unsafe_perm=true npm_config_yes=true npm_config_nodedir=/usr \
    npm ci --no-audit --no-fund
)
rm -rf "$tmp"
"$tools/node_modules/.bin/code-server" --version
