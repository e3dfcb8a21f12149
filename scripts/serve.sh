#!/usr/bin/env bash
# README's first command: install what is missing, build, and serve the
# folder it was started from (URL, workspace id and a pairing token are
# printed). Extra arguments go to `companion-helper serve`.
set -euo pipefail
here=$(pwd)
root="$(cd "$(dirname "$0")/.." && pwd)"
bash "$root/scripts/deps.sh"
dir=$(bash "$root/scripts/build.sh")
cd "$here"
exec "$root/$dir/companion-helper" serve --workspace "$here" "$@"
