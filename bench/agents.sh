#!/usr/bin/env bash
# Companion benchmark, agents (issue 16): what the helper adds between an ACP
# agent and a WebSocket client, against a trivial relay on the same path.
# Prints a table of medians (docs/performance.md, "Agents (issue 16)").
#
#   bench/agents.sh [--rounds N] [--rate-seconds S] [--no-build]
#
#   --rounds N        alternating rounds (default 3; helper first in odd rounds)
#   --rate-seconds S  length of the 100 chunks/s stream (default 30)
#   --no-build        use the existing build/companion-helper as it is
#
# Each round, for the helper and then the plain relay (the other way round
# in even rounds): 100 chunks/s for 30 s, a burst of 20,000 chunks, a 10 MiB
# answer in 4 KiB chunks; then, helper only, RSS per conversation after 500
# agent.new and after 500 one-turn conversations. About 4 minutes on 2 cores.
#
# Env: HELPER_BIN (default build/companion-helper), BENCH_WORK (default
# /tmp/companion-agbench). Uses `ws` and the test harness from
# tests/integration (npm ci there when node_modules is missing).
#
# Every process started here is stopped on exit (trap); loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_WORK:-/tmp/companion-agbench}
HELPER_BIN_SET=${HELPER_BIN:+1}
HELPER_BIN=${HELPER_BIN:-$ROOT/build/companion-helper}
ROUNDS=3
RATE_S=30
BUILD=1
while [[ $# -gt 0 ]]; do
    case $1 in
    --rounds) ROUNDS=$2; shift ;;
    --rate-seconds) RATE_S=$2; shift ;;
    --no-build) BUILD=0 ;;
    *) echo "usage: $0 [--rounds N] [--rate-seconds S] [--no-build]" >&2; exit 2 ;;
    esac
    shift
done

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }
T_START=$(date +%s)

# ---- processes we start, and their cleanup ----
# The driver writes the pid of every helper and relay it starts to $PIDFILE;
# the helper's agents die with their helper (its process group and the
# reaper), the relay's with the relay.
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

mkdir -p "$WORK"
: >"$PIDFILE"

# ---- the helper: the release build, measured as a copy ----
if [[ $BUILD == 1 && -z $HELPER_BIN_SET ]]; then
    log "building $ROOT/build (scripts/build.sh)"
    HELPER_BIN=$ROOT/$(cd "$ROOT" && bash scripts/build.sh)/companion-helper
fi
[[ -x $HELPER_BIN ]] || { echo "no helper at $HELPER_BIN" >&2; exit 1; }
cp "$HELPER_BIN" "$WORK/companion-helper.bench"
HELPER_DESC="${BENCH_DESC:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}, sha256 $(sha256sum "$HELPER_BIN" | cut -c1-12)"
HELPER_BIN=$WORK/companion-helper.bench

# ---- ws and the harness ----
if [[ ! -d $ROOT/tests/integration/node_modules ]]; then
    log "npm ci in tests/integration"
    (cd "$ROOT/tests/integration" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# The helpers' config and state (approval numbers) stay in the work folder.
mkdir -p "$WORK/home/config" "$WORK/home/state"
export XDG_CONFIG_HOME=$WORK/home/config XDG_STATE_HOME=$WORK/home/state HOME=$WORK/home

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
log "helper $HELPER_DESC; $ROUNDS rounds"
node "$ROOT/bench/agent-relay.mjs" --helper "$HELPER_BIN" --out "$RESULTS" --pids "$PIDFILE" \
    --rounds "$ROUNDS" --rate-seconds "$RATE_S" &
PIDS+=("$!")
wait "$!"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)

cleanup
log "done in $(($(date +%s) - T_START)) s; raw results in $RESULTS"
BENCH_HELPER_DESC=$HELPER_DESC BENCH_LOAD="$LOAD_START -> $LOAD_END" \
    node "$ROOT/bench/agents-report.mjs" "$RESULTS"
