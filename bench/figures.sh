#!/usr/bin/env bash
# Companion benchmark, other figures (issue 20, item 4): what the later
# issues added, each measured once from fresh processes, printed as one
# Markdown table per figure set (docs/performance.md, "Other figures").
#
#   bench/figures.sh [--only LIST] [--no-build] [--web-runs N] [--rate-seconds S]
#
#   --only LIST        comma-separated, any of: agents,web,whatsapp,gitlog
#                      (default: all four, in that order)
#   --no-build         use the existing build/companion-helper as it is
#   --web-runs N       runs of the web first screen (default 5; median)
#   --rate-seconds S   length of the agents' 100 chunks/s stream (default 10)
#
# agents    the agent chunk relay (bench/agent-relay.mjs, one round, no
#           memory-per-conversation part): the helper against a plain relay
#           (bench/plain-relay.mjs) on the same agent and client; the full
#           set is bench/agents.sh.
# web       the web app's first screen under throttling (web/test/perf.mjs:
#           Debian's Chromium, 1.6 Mbit/s, 150 ms, CPU x4, cold cache,
#           pairing link to live status), median of --web-runs.
# whatsapp  a chat command through the WhatsApp bridge with the IN-MEMORY
#           WhatsApp transport against the real helper, and the same command
#           straight over the helper's WebSocket (bench/whatsapp-relay.mjs).
# gitlog    git.log with a path filter on a 20,000-commit history
#           (bench/mklogrepo.sh) against `git log`, without and with a
#           commit-graph with changed-path Bloom filters (bench/gitlog.mjs).
#
# About 3 minutes on 2 cores (the repository is made once, ~20 s).
# Env: HELPER_BIN (default build/companion-helper), BENCH_WORK (default
# /tmp/companion-figures), BENCH_LOGREPO (default /tmp/companion-bench-logrepo).
# Every process started here is stopped on exit; loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_WORK:-/tmp/companion-figures}
LOGREPO=${BENCH_LOGREPO:-/tmp/companion-bench-logrepo}
HELPER_BIN_SET=${HELPER_BIN:+1}
HELPER_BIN=${HELPER_BIN:-$ROOT/build/companion-helper}
ONLY=agents,web,whatsapp,gitlog
BUILD=1
WEB_RUNS=5
RATE_S=10
usage() { echo "usage: $0 [--only agents,web,whatsapp,gitlog] [--no-build] [--web-runs N] [--rate-seconds S]" >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case $1 in
    --only | --web-runs | --rate-seconds)
        [[ $# -ge 2 ]] || { echo "$1 needs a value" >&2; usage; }
        case $1 in --only) ONLY=$2 ;; --web-runs) WEB_RUNS=$2 ;; --rate-seconds) RATE_S=$2 ;; esac
        shift
        ;;
    --no-build) BUILD=0 ;;
    *) usage ;;
    esac
    shift
done
[[ -n ${ONLY//,/} ]] || { echo "--only: name at least one figure set" >&2; usage; }
for what in ${ONLY//,/ }; do
    case $what in agents | web | whatsapp | gitlog) ;; *) echo "--only: unknown figure set '$what'" >&2; usage ;; esac
done
[[ $WEB_RUNS =~ ^[1-9][0-9]*$ ]] || { echo "--web-runs: expected a positive integer" >&2; exit 2; }
[[ $RATE_S =~ ^[1-9][0-9]*$ ]] || { echo "--rate-seconds: expected a positive integer" >&2; exit 2; }
want() { [[ ",$ONLY," == *",$1,"* ]]; }

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }
T_START=$(date +%s)

# ---- processes we start, and their cleanup ----
# bench/agent-relay.mjs writes the pid of every helper and relay it starts
# to $PIDFILE; the other drivers stop their own children on exit.
PIDS=()
PIDFILE=$WORK/pids
cleanup() {
    local pid
    if [[ -f $PIDFILE ]]; then
        while read -r pid; do PIDS+=("$pid"); done <"$PIDFILE"
        rm -f "$PIDFILE"
    fi
    for pid in "${PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Runs a driver in the background (so the trap can stop it) and waits.
run() {
    "$@" &
    PIDS+=("$!")
    wait "$!"
}

mkdir -p "$WORK"
: >"$PIDFILE"

# ---- the helper: the release build, measured as a copy (with its git module) ----
if [[ $BUILD == 1 && -z $HELPER_BIN_SET ]]; then
    log "building $ROOT/build (scripts/build.sh)"
    HELPER_BIN=$ROOT/$(cd "$ROOT" && bash scripts/build.sh)/companion-helper
fi
[[ -x $HELPER_BIN ]] || { echo "no helper at $HELPER_BIN" >&2; exit 1; }
mkdir -p "$WORK/bin"
cp "$HELPER_BIN" "$WORK/bin/companion-helper"
if [[ -f $(dirname "$HELPER_BIN")/companion-git.so ]]; then
    cp "$(dirname "$HELPER_BIN")/companion-git.so" "$WORK/bin/companion-git.so"
fi
HELPER_DESC="${BENCH_DESC:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}, sha256 $(sha256sum "$HELPER_BIN" | cut -c1-12)"
HELPER_BIN=$WORK/bin/companion-helper

# ---- what the drivers need ----
npm_ci() {
    if [[ ! -d $1/node_modules ]]; then
        log "npm ci in ${1#"$ROOT"/}"
        (cd "$1" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
}
npm_ci "$ROOT/tests/integration"
if want whatsapp; then
    npm_ci "$ROOT/bridges/whatsapp"
    log "compiling the bridge (tsc -p bridges/whatsapp)"
    (cd "$ROOT/bridges/whatsapp" && npx tsc -p .)
fi
if want web; then
    [[ -x /usr/bin/chromium ]] || { echo "web: /usr/bin/chromium is missing (bash web/test/run.sh installs it)" >&2; exit 1; }
    npm_ci "$ROOT/web"
fi
if want gitlog; then
    [[ -f $LOGREPO/.bench-complete ]] || log "making the git.log repository ($LOGREPO, ~20 s)"
    bash "$ROOT/bench/mklogrepo.sh" "$LOGREPO"
fi

# The helpers' config and state stay in the work folder.
mkdir -p "$WORK/home/config" "$WORK/home/state"
export XDG_CONFIG_HOME=$WORK/home/config XDG_STATE_HOME=$WORK/home/state HOME=$WORK/home

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
OUT=$WORK/figures.md
{
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), Linux $(uname -r), node $(node --version); helper $HELPER_DESC"
    echo "Run: $(date -u '+%Y-%m-%d %H:%M UTC'); each figure set once, fresh processes."
} >"$OUT"

if want agents; then
    log "agents: the chunk relay, helper and plain relay ($RATE_S s at 100 chunks/s, a burst, a 10 MiB answer)"
    l0=$(loadavg)
    : >"$WORK/agents.jsonl"
    run node "$ROOT/bench/agent-relay.mjs" --helper "$HELPER_BIN" --out "$WORK/agents.jsonl" --pids "$PIDFILE" \
        --rounds 1 --rate-seconds "$RATE_S" --only rate,burst,flood
    {
        echo
        echo "### Agent chunk relay (load $l0 -> $(loadavg))"
        echo
        BENCH_HELPER_DESC=$HELPER_DESC BENCH_LOAD="$l0 -> $(loadavg)" node "$ROOT/bench/agents-report.mjs" "$WORK/agents.jsonl" | sed -n '/^| figure/,$p'
    } >>"$OUT"
fi

if want web; then
    log "web: first screen under throttling, $WEB_RUNS runs"
    l0=$(loadavg)
    run env HELPER_BIN="$HELPER_BIN" node "$ROOT/web/test/perf.mjs" "$WEB_RUNS" >"$WORK/web.txt"
    cat "$WORK/web.txt" >&2
    node - "$WORK/web.txt" "$l0 -> $(loadavg)" >>"$OUT" <<'EOF'
const fs = require('node:fs');
const lines = fs.readFileSync(process.argv[2], 'utf8').split('\n');
const runs = lines.map((l) => l.match(/live status after (\d+) ms \(DOMContentLoaded (\d+) ms, (\d+) bytes/)).filter(Boolean)
  .map((m) => ({ ms: Number(m[1]), dcl: Number(m[2]), bytes: Number(m[3]) }));
const med = (xs) => { const v = [...xs].sort((a, b) => a - b); return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2; };
const ms = runs.map((r) => r.ms);
console.log(`\n### Web first screen under throttling (load ${process.argv[3]})\n`);
console.log('| figure | median | range | target | met |');
console.log('|---|---:|---|---|---|');
console.log(`| pairing link → live status, 1.6 Mbit/s, 150 ms, CPU x4, cold cache (ms, ${runs.length} runs) | ${med(ms)} | ${Math.min(...ms)}–${Math.max(...ms)} | <= 2,000 | ${med(ms) <= 2000 ? 'yes' : '**NO**'} |`);
console.log(`| DOMContentLoaded (ms) | ${med(runs.map((r) => r.dcl))} | ${Math.min(...runs.map((r) => r.dcl))}–${Math.max(...runs.map((r) => r.dcl))} |  |  |`);
console.log(`| bytes transferred | ${med(runs.map((r) => r.bytes))} |  |  |  |`);
EOF
fi

if want whatsapp; then
    log "whatsapp: chat through the bridge (in-memory WhatsApp) and straight to the helper"
    l0=$(loadavg)
    run node "$ROOT/bench/whatsapp-relay.mjs" --helper "$HELPER_BIN" --out "$WORK/whatsapp.jsonl" >"$WORK/whatsapp.md"
    {
        echo
        echo "### WhatsApp relay through the bridge, WhatsApp in memory (load $l0 -> $(loadavg))"
        echo
        cat "$WORK/whatsapp.md"
    } >>"$OUT"
fi

if want gitlog; then
    log "gitlog: git.log with a path filter against git log"
    l0=$(loadavg)
    run node "$ROOT/bench/gitlog.mjs" --helper "$HELPER_BIN" --repo "$LOGREPO" --out "$WORK/gitlog.jsonl" >"$WORK/gitlog.md"
    {
        echo
        echo "### git.log with a path filter, 20,000 commits (load $l0 -> $(loadavg))"
        echo
        cat "$WORK/gitlog.md"
    } >>"$OUT"
fi

cleanup
log "done in $(($(date +%s) - T_START)) s; tables in $OUT"
cat "$OUT"
