#!/usr/bin/env bash
# Generates the git.log benchmark repository once (bench/figures.sh): a
# linear history of 20,000 commits over 2,000 files in 100 folders, one file
# changed per commit; `src/d07/hot.txt` is changed by 1 commit in 100 (200
# in all) and `docs/rare.txt` by 1 in 1,000 (20 in all). Built with
# `git fast-import` (a few seconds), one pack, no commit-graph (the bench
# writes one in a copy). Cached: a second run is a no-op.
# Usage: bench/mklogrepo.sh [DIR]   (default /tmp/companion-bench-logrepo)
set -euo pipefail
dir=${1:-/tmp/companion-bench-logrepo}
if [[ -f "$dir/.bench-complete" ]]; then
    exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
git init -q -b main .
git config user.email bench@example.invalid
git config user.name bench
# The stream: commit 1 adds every file; commit n > 1 changes one ordinary
# file, and also hot.txt when n % 100 == 0, rare.txt when n % 1000 == 0.
awk -v N=20000 'BEGIN {
    t = 1700000000
    for (n = 1; n <= N; n++) {
        printf "commit refs/heads/main\n"
        printf "committer bench <bench@example.invalid> %d +0000\n", t + n * 60
        msg = sprintf("commit %d", n)
        printf "data %d\n%s\n", length(msg), msg
        if (n == 1) {
            for (d = 0; d < 100; d++)
                for (f = 0; f < 20; f++) {
                    body = sprintf("file %d in folder %d\n", f, d)
                    printf "M 100644 inline src/d%02d/f%02d.txt\ndata %d\n%s\n", d, f, length(body), body
                }
            body = "hot 0\n"; printf "M 100644 inline src/d07/hot.txt\ndata %d\n%s\n", length(body), body
            body = "rare 0\n"; printf "M 100644 inline docs/rare.txt\ndata %d\n%s\n", length(body), body
        } else {
            k = n % 2000
            body = sprintf("file %d in folder %d, version %d\n", k % 20, int(k / 20), n)
            printf "M 100644 inline src/d%02d/f%02d.txt\ndata %d\n%s\n", int(k / 20), k % 20, length(body), body
            if (n % 100 == 0) {
                body = sprintf("hot %d\n", n); printf "M 100644 inline src/d07/hot.txt\ndata %d\n%s\n", length(body), body
            }
            if (n % 1000 == 0) {
                body = sprintf("rare %d\n", n); printf "M 100644 inline docs/rare.txt\ndata %d\n%s\n", length(body), body
            }
        }
        printf "\n"
    }
}' | git fast-import --quiet
git checkout -q -f main
git repack -q -a -d
rm -f .git/objects/info/commit-graph
rm -rf .git/objects/info/commit-graphs
touch .bench-complete
printf '.bench-complete\n' >>.git/info/exclude
