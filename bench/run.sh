#!/usr/bin/env bash
# Companion benchmark: the helper against the Node reference peer
# (../shared/peers/node-ws), same machine, same run, alternating rounds.
# Prints a table of medians with the ratio helper/peer (docs/performance.md).
#
#   bench/run.sh [--full] [--rounds N] [--seconds S] [--no-build] [--figures]
#
#   --full      the issue's sizes: auth storm and idle with 10,000 connections,
#               idle held 60 s (default: 2,000 connections, idle 30 s, so the
#               whole run stays under 10 minutes on 2 shared cores)
#   --rounds N  alternating rounds (default 3; helper first in odd rounds)
#   --seconds S length of each closed-loop measurement window (default 5)
#   --no-build  use the existing build/companion-helper as it is
#   --figures   then bench/figures.sh with the same binary (agent relay, web
#               first screen, WhatsApp bridge, git.log with a path)
#
# Env: HELPER_BIN (default build/companion-helper), PEER_SRC (default
# ../shared/peers/node-ws), BENCH_WORK (default /tmp/companion-bench),
# BENCH_REPO (default /tmp/companion-bench-repo).
#
# Every process started here is stopped on exit (trap); loopback only.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_WORK:-/tmp/companion-bench}
REPO=${BENCH_REPO:-/tmp/companion-bench-repo}
HELPER_BIN_SET=${HELPER_BIN:+1}
HELPER_BIN=${HELPER_BIN:-$ROOT/build/companion-helper}
PEER_SRC=${PEER_SRC:-$ROOT/../shared/peers/node-ws}
ROUNDS=3
SECS=5
STORM_N=2000
IDLE_N=2000
IDLE_S=30
BUILD=1
FIGURES=0
while [[ $# -gt 0 ]]; do
    case $1 in
    --full) STORM_N=10000 IDLE_N=10000 IDLE_S=60 ;;
    --rounds) ROUNDS=$2; shift ;;
    --seconds) SECS=$2; shift ;;
    --no-build) BUILD=0 ;;
    --figures) FIGURES=1 ;;
    *) echo "usage: $0 [--full] [--rounds N] [--seconds S] [--no-build] [--figures]" >&2; exit 2 ;;
    esac
    shift
done

log() { printf '[%s] %s\n' "$(date -u +%T)" "$*" >&2; }
T_START=$(date +%s)

# ---- processes we start, and their cleanup ----
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
        fi
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    PIDS=()
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Connections: both sides of every connection live on this machine.
hard=$(ulimit -Hn)
want=$((STORM_N > IDLE_N ? STORM_N : IDLE_N))
want=$((want + 1024))
if [[ $hard != unlimited && $hard -lt $want ]]; then
    echo "ulimit -Hn is $hard; need $want open files" >&2
    exit 1
fi
ulimit -n "$want"

mkdir -p "$WORK"
# ---- build ----
log "building the load generator"
cmake -S "$ROOT/bench" -B "$WORK/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$WORK/build" -j2 >/dev/null
LG=$WORK/build/companion-loadgen
if [[ $BUILD == 1 && -z ${HELPER_BIN_SET:-} ]]; then
    log "building companion-helper"
    # Configure first: on a fresh clone build/ does not exist, and an older
    # build/ may not know the companion-git target yet.
    cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
    cmake --build "$ROOT/build" --target companion-helper companion-git -j2 >/dev/null
fi
[[ -x $HELPER_BIN ]] || { echo "no helper at $HELPER_BIN" >&2; exit 1; }
# Measure a snapshot: a rebuild of build/ during the run must not swap the
# binary under the benchmark.
cp "$HELPER_BIN" "$WORK/companion-helper.bench"
# git commands come from a module loaded from beside the binary
cp "$(dirname "$HELPER_BIN")/companion-git.so" "$WORK/companion-git.so"
HELPER_DESC="${BENCH_DESC:-$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)}, sha256 $(sha256sum "$HELPER_BIN" | cut -c1-12)"
HELPER_BIN=$WORK/companion-helper.bench

# ---- the Node peer, copied outside the repository ----
if ! cmp -s "$PEER_SRC/package-lock.json" "$WORK/peer/package-lock.json" ||
    ! cmp -s "$PEER_SRC/server.js" "$WORK/peer/server.js" || [[ ! -d $WORK/peer/node_modules ]]; then
    log "installing the Node peer in $WORK/peer"
    rm -rf "$WORK/peer"
    mkdir -p "$WORK/peer"
    cp "$PEER_SRC/server.js" "$PEER_SRC/package.json" "$PEER_SRC/package-lock.json" "$WORK/peer/"
    (cd "$WORK/peer" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
fi

# ---- the git.status repository (cached) ----
if [[ ! -f $REPO/.bench-complete ]]; then
    log "generating $REPO (50,000 files in 5,000 folders; about a minute)"
fi
"$ROOT/bench/mkrepo.sh" "$REPO"
git -C "$REPO" checkout -q -- . # undo a previous run's one-file change

# ---- secret and the benchmark configuration ----
HOME_DIR=$WORK/home
rm -rf "$HOME_DIR"
mkdir -p "$HOME_DIR/config/companion"
SECRET_FILE=$HOME_DIR/config/companion/secret
(umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$SECRET_FILE")
# A BENCHMARK configuration: limits far above the defaults (64 connections,
# 20 commands/s) so that the limits are not what is measured.
CONF=$WORK/bench-config.json
# serve signs with a key derived per workspace from its stored secret; the
# load generator signs with the secret it is given, so serve gets that one as
# auth.secret (as the stdio modes do). The file is the user's only (0600).
(umask 077 && cat >"$CONF") <<EOF
{"limits": {"maxConnections": 20000, "maxUnauthenticated": 20000, "commandsPerSecond": 10000},
 "auth": {"secret": "$(cat "$SECRET_FILE")"},
 "log": {"level": "warn"}}
EOF

free_port() {
    local p
    for p in $(seq "$1" $(($1 + 200))); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            echo "$p"
            return
        fi
    done
    echo "no free port near $1" >&2
    exit 1
}
HPORT=$(free_port 39301)
PPORT=$(free_port $((HPORT + 1)))
PEER_WS=peer-bench-1

wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}

log "starting companion-helper serve on 127.0.0.1:$HPORT"
(exec env XDG_CONFIG_HOME="$HOME_DIR/config" HOME="$HOME_DIR" "$HELPER_BIN" serve \
    --workspace "$REPO" --host 127.0.0.1 --port "$HPORT" --config "$CONF" \
    >"$WORK/helper.out" 2>"$WORK/helper.err") &
HPID=$!
PIDS+=("$HPID")
wait_port "$HPORT"
for _ in $(seq 100); do
    grep -q 'Workspace id:' "$WORK/helper.out" && break
    sleep 0.05
done
HWS=$(awk '/Workspace id:/{print $3}' "$WORK/helper.out")
[[ -n $HWS ]] || { echo "no workspace id from the helper" >&2; exit 1; }

log "starting the Node peer on 127.0.0.1:$PPORT"
(cd "$WORK/peer" && exec env SECRET="$(cat "$SECRET_FILE")" WORKSPACE_ID="$PEER_WS" REPO="$REPO" \
    PORT="$PPORT" node server.js >"$WORK/peer.log" 2>&1) &
PPID_NODE=$!
PIDS+=("$PPID_NODE")
wait_port "$PPORT"

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
# lg ROUND LABEL ARGS...: one loadgen run against LABEL's server, one JSON line.
lg() {
    local round=$1 label=$2
    shift 2
    local port=$HPORT ws=$HWS pid=$HPID
    if [[ $label == peer ]]; then
        port=$PPORT ws=$PEER_WS pid=$PPID_NODE
    fi
    local line
    if ! line=$("$LG" --port "$port" --secret-file "$SECRET_FILE" --workspace "$ws" \
        --server-pid "$pid" --label "$label" "$@" 2>>"$WORK/loadgen.err"); then
        log "loadgen $label $* reported failures (see $WORK/loadgen.err)"
    fi
    [[ -n $line ]] && printf '%s\n' "${line/#\{/\{\"round\":$round,}" >>"$RESULTS"
    sleep 1 # let the server finish closing before the next figure
}

startup() {
    local round=$1 label=$2 line
    if [[ $label == helper ]]; then
        line=$("$LG" --secret-file "$SECRET_FILE" --label helper startup-stdio 5 "$HELPER_BIN")
    else
        local sp
        sp=$(free_port $((PPORT + 1)))
        line=$(cd "$WORK/peer" && SECRET=$(cat "$SECRET_FILE") WORKSPACE_ID=$PEER_WS REPO=$REPO \
            PORT=$sp "$LG" --port "$sp" --label peer startup-tcp 3 -- node server.js)
    fi
    printf '%s\n' "${line/#\{/\{\"round\":$round,}" >>"$RESULTS"
}

# wait_quiet PID: until the process has used no CPU for half a second (at
# most 20 s). The helper watches the repository and computes a first
# git.status when it starts, in the background; measuring memory per held
# connection during that would count the status's memory as theirs.
wait_quiet() {
    local last=-1 now i
    for ((i = 0; i < 40; i++)); do
        now=$(awk '{print $14 + $15}' "/proc/$1/stat")
        [[ $now == "$last" ]] && return 0
        last=$now
        sleep 0.5
    done
    log "process $1 still busy after 20 s"
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
wait_quiet "$HPID"
wait_quiet "$PPID_NODE"
# Idle first, on fresh processes: RSS per connection is a difference, and a
# server that already served storms has freed memory to reuse.
# While they are held, 16 clients ping: what idle connections cost the busy ones.
for who in helper peer; do
    log "idle: $IDLE_N authenticated connections held ${IDLE_S}s on the $who (ping c=16 meanwhile)"
    lg 1 "$who" idle "$IDLE_N" "$IDLE_S" &
    idle_job=$!
    sleep $((IDLE_S / 4 + 2))
    lg_tag=',"while_idle":'$IDLE_N
    lg 1 "$who" ping 16 "$SECS"
    # mark the line just written: it is not one of the rounds' ping figures
    sed -i '$ s/^{"round":1,/{"round":1'"$lg_tag"',/' "$RESULTS"
    wait "$idle_job"
done

for ((r = 1; r <= ROUNDS; r++)); do
    order=(helper peer)
    ((r % 2 == 0)) && order=(peer helper)
    for who in "${order[@]}"; do
        log "round $r/$ROUNDS: $who"
        lg "$r" "$who" auth-storm "$STORM_N"
        lg "$r" "$who" ping 16 "$SECS"
        lg "$r" "$who" ping 256 "$SECS"
        lg "$r" "$who" command 16 "$SECS" workspace.info
        startup "$r" "$who"
    done
done

# The editor that stops reading stdout (helper only: the peer has no stdio).
log "helper --stdio whose stdout is never read, command c=16 for ${SECS}s"
line=$("$LG" --secret-file "$SECRET_FILE" --label helper stdio-unread 16 "$SECS" "$HELPER_BIN" \
    2>>"$WORK/loadgen.err" | tr '\n' ' ') || true
printf '%s\n' "$line" | sed -E 's/^\{"mode":"command"(.*)\} \{"mode":"stdio-unread",[^,]*,(.*)\} ?$/{"round":1,"mode":"stdio-unread","unread":true\1,\2}/' >>"$RESULTS"

# git.status last: it makes the helper load a 50,000-entry index (RSS).
for who in helper peer; do
    log "git.status on $REPO: $who (and git status --porcelain=v2)"
    lg 1 "$who" gitstatus "$REPO" 5
done
git -C "$REPO" checkout -q -- .

cleanup
log "done in $(($(date +%s) - T_START)) s; raw results in $RESULTS"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_HELPER_DESC=$HELPER_DESC BENCH_LOAD="$LOAD_START -> $LOAD_END" \
    node "$ROOT/bench/report.mjs" "$RESULTS" "$STORM_N" "$IDLE_N" "$IDLE_S"
if [[ $FIGURES == 1 ]]; then
    BENCH_DESC=${HELPER_DESC%%,*} HELPER_BIN=$HELPER_BIN bash "$ROOT/bench/figures.sh" --no-build
fi
