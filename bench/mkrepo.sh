#!/usr/bin/env bash
# Generates the git.status benchmark repository once: 50,000 files in 5,000
# folders (10 files each), one commit. Cached: a second run is a no-op.
# Usage: bench/mkrepo.sh [DIR]   (default /tmp/companion-bench-repo)
set -euo pipefail
dir=${1:-/tmp/companion-bench-repo}
if [[ -f "$dir/.bench-complete" ]]; then
    exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
git init -q -b main .
git config user.email bench@example.invalid
git config user.name bench
for ((d = 0; d < 5000; d++)); do
    sub=$(printf 'd%02d/s%04d' $((d / 100)) "$d")
    mkdir -p "$sub"
    for ((f = 0; f < 10; f++)); do
        printf 'file %d in folder %d\n' "$f" "$d" >"$sub/f$f.txt"
    done
done
git add -A
git commit -q -m "50,000 files in 5,000 folders"
# Warm the index's stat data so that the first status is not a rewrite.
git status --porcelain=v2 >/dev/null
touch .bench-complete
printf '.bench-complete\n' >>.git/info/exclude
