#!/usr/bin/env bash
# Installs what building and testing Companion needs on Debian 12, skipping
# what is already there. Safe to run again. Needs root (or sudo).
# --browser: also Debian's chromium, for the browser tests (web/, and the
# Socket.IO browser client in tests/integration).
set -euo pipefail

APT_PACKAGES=(build-essential cmake pkg-config git ca-certificates
  libwebsockets-dev libwebsockets-evlib-ev libev-dev libjson-c-dev libjwt-dev libgit2-dev libssl-dev uuid-dev zlib1g-dev
  libqrencode-dev libcmocka-dev valgrind clang-format faketime
  python3-socketio python3-websocket python3-requests python3-websockets)
[ "${1:-}" = "--browser" ] && APT_PACKAGES+=(chromium fonts-dejavu-core)

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ! command -v node >/dev/null 2>&1; then missing+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then missing+=(npm); fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 18 ]; then
  echo "deps: Node.js 18 or later is needed (found $(node --version))" >&2
  exit 1
fi

# promtool, Prometheus' own checker of the /metrics text format (the
# integration tests' oracle), taken out of Debian's prometheus package into
# .cache/ without installing the package: installing it would start a
# Prometheus server on a machine with systemd.
promtool_dir="$(cd "$(dirname "$0")/.." && pwd)/.cache/promtool"
if [ ! -x "$promtool_dir/promtool" ]; then
  echo "deps: fetching promtool from Debian's prometheus package"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ! (cd "$tmp" && apt-get download -qq prometheus >/dev/null 2>&1); then
    sudo_if_needed apt-get update -qq
    (cd "$tmp" && apt-get download -qq prometheus >/dev/null)
  fi
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
  mkdir -p "$promtool_dir"
  cp "$tmp/x/usr/bin/promtool" "$promtool_dir/promtool"
  rm -rf "$tmp"
  trap - EXIT
fi
