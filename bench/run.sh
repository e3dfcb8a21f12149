#!/usr/bin/env bash
# Companion benchmark: the helper against the Node reference peer
# (../shared/peers/node-ws) and against the floor (bench/floor.c: the same
# work with no framework), same machine, same run, alternating rounds.
# Prints a table of medians with helper/peer and helper/floor for every
# figure (docs/performance.md).
#
# Servers: helper (`companion-helper serve`), editor (`companion-helper
# --stdio` driven by bench/editor.c, the editor stand-in that reads every
# notification), peer, floor.
#
# By default every figure is measured on a fresh process: start the server,
# wait until it is quiet, measure that one figure, stop it. --long-running
# keeps one process per server for the whole run instead (what this script
# did before; the output says "long-running").
#
#   bench/run.sh [--full] [--rounds N] [--seconds S] [--no-build]
#                [--long-running] [--servers LIST] [--figures]
#
#   --full      the issue's sizes: auth storm and idle with 10,000 connections,
#               idle held 60 s (default: 2,000 connections, idle 30 s)
#   --rounds N  alternating rounds (default 3; the order rotates each round)
#   --seconds S length of each closed-loop measurement window (default 5)
#   --no-build  use the existing build/companion-helper as it is
#   --long-running  one process per server for the whole run
#   --servers LIST  comma-separated subset of helper,editor,peer,floor
#               (default all four)
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
LONG=0
SERVERS=helper,editor,peer,floor
usage() {
    echo "usage: $0 [--full] [--rounds N] [--seconds S] [--no-build] [--long-running]" \
        "[--servers helper,editor,peer,floor] [--figures]" >&2
    exit 2
}
while [[ $# -gt 0 ]]; do
    case $1 in
    --full) STORM_N=10000 IDLE_N=10000 IDLE_S=60 ;;
    --rounds) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage; ROUNDS=$2; shift ;;
    --seconds) [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || usage; SECS=$2; shift ;;
    --no-build) BUILD=0 ;;
    --long-running) LONG=1 ;;
    --servers) SERVERS=${2:-}; shift ;;
    --figures) FIGURES=1 ;;
    *) usage ;;
    esac
    shift
done
IFS=, read -r -a ALL <<<"$SERVERS"
for who in "${ALL[@]}"; do
    case $who in
    helper | editor | peer | floor) ;;
    *) echo "--servers: unknown server '$who' (helper, editor, peer, floor)" >&2; exit 2 ;;
    esac
done
[[ ${#ALL[@]} -gt 0 ]] || usage

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
FLOOR=$WORK/build/companion-floor
STANDIN=$WORK/build/companion-editor-standin
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
mkdir -p "$HOME_DIR/config/companion" "$HOME_DIR/state"
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
# take_port: a port nobody listens on, never the previous server's, so a
# fresh process does not meet the last one's closing sockets (sets PORT).
# Below the ephemeral range (32768-60999 by default): the generator's own
# client sockets hold thousands of ports there, and a server could not bind
# one of them.
NEXT_PORT=23301
take_port() {
    PORT=$(free_port "$NEXT_PORT")
    NEXT_PORT=$((PORT + 1))
    ((NEXT_PORT < 23800)) || NEXT_PORT=23301
}

wait_port() {
    for _ in $(seq 200); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.05
    done
    echo "nothing listens on $1" >&2
    return 1
}

# wait_quiet PID: until the process has used no CPU for half a second (at
# most 20 s). The helper watches the repository and computes a first
# git.status when it starts, in the background; measuring during that would
# count it as the figure's.
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

# The helper's files (devices, tokens serve writes) stay under $HOME_DIR.
HENV=(env XDG_CONFIG_HOME="$HOME_DIR/config" XDG_STATE_HOME="$HOME_DIR/state" HOME="$HOME_DIR")
PEER_WS=peer-bench-1
FLOOR_WS=floor-bench-1
EDITOR_WS=editor-bench-1

# start_server WHO: starts one server and waits until it listens and is
# quiet. Sets S_WHO, S_PORT, S_PID (the process measured), S_WS and S_EXTRA
# (editor: the stand-in's pid, whose CPU is reported apart; else 0).
start_server() {
    local who=$1 i
    S_WHO=$who S_EXTRA=0
    take_port
    S_PORT=$PORT
    case $who in
    helper)
        ("${HENV[@]}" "$HELPER_BIN" serve --workspace "$REPO" --host 127.0.0.1 --port "$PORT" \
            --config "$CONF" >"$WORK/helper.out" 2>>"$WORK/helper.err") &
        S_PID=$!
        PIDS+=("$S_PID")
        wait_port "$PORT"
        for _ in $(seq 100); do
            grep -q 'Workspace id:' "$WORK/helper.out" && break
            sleep 0.05
        done
        S_WS=$(awk '/Workspace id:/{print $3}' "$WORK/helper.out")
        [[ -n $S_WS ]] || { echo "no workspace id from the helper" >&2; exit 1; }
        ;;
    editor)
        : >"$WORK/editor.out"
        rm -f "$WORK/editor.stats"
        ("${HENV[@]}" "$STANDIN" --helper "$HELPER_BIN" --folder "$REPO" --workspace "$EDITOR_WS" \
            --secret-file "$SECRET_FILE" --stats "$WORK/editor.stats" \
            >"$WORK/editor.out" 2>>"$WORK/editor.err") &
        S_EXTRA=$!
        PIDS+=("$S_EXTRA")
        for ((i = 0; i < 400; i++)); do
            grep -q '^port=' "$WORK/editor.out" && break
            sleep 0.05
        done
        S_PORT=$(sed -n 's/^port=\([0-9]*\) .*/\1/p' "$WORK/editor.out")
        S_PID=$(sed -n 's/^port=.* pid=\([0-9]*\)$/\1/p' "$WORK/editor.out")
        [[ -n $S_PORT && -n $S_PID ]] || { echo "the editor stand-in did not start the helper (see $WORK/editor.err)" >&2; exit 1; }
        S_WS=$EDITOR_WS
        ;;
    peer)
        (cd "$WORK/peer" && exec env SECRET="$(cat "$SECRET_FILE")" WORKSPACE_ID="$PEER_WS" REPO="$REPO" \
            PORT="$PORT" node server.js >>"$WORK/peer.log" 2>&1) &
        S_PID=$!
        PIDS+=("$S_PID")
        wait_port "$PORT"
        S_WS=$PEER_WS
        ;;
    floor)
        ("$FLOOR" --port "$PORT" --workspace "$FLOOR_WS" --folder "$REPO" \
            --secret-file "$SECRET_FILE" 2>>"$WORK/floor.err") &
        S_PID=$!
        PIDS+=("$S_PID")
        wait_port "$PORT"
        S_WS=$FLOOR_WS
        ;;
    esac
    wait_quiet "$S_PID"
}

# stop_pid PID: TERM, then KILL after 5 s; reaped.
stop_pid() {
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$1" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

# stop_server: ends the server start_server started (editor: the stand-in,
# which shuts the helper down and writes its counts).
stop_server() {
    if [[ $S_WHO == editor ]]; then
        stop_pid "$S_EXTRA"
    else
        stop_pid "$S_PID"
    fi
}

# Long-running mode: one process per server, started once.
declare -A LR_PORT LR_PID LR_WS LR_EXTRA
use_server() {
    S_WHO=$1 S_PORT=${LR_PORT[$1]} S_PID=${LR_PID[$1]} S_WS=${LR_WS[$1]} S_EXTRA=${LR_EXTRA[$1]}
}

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
# lg ROUND LABEL ARGS...: one loadgen run against the current server (S_*),
# one JSON line.
lg() {
    local round=$1 label=$2
    shift 2
    local extra=() line
    [[ $S_EXTRA != 0 ]] && extra=(--extra-pid "$S_EXTRA")
    if ! line=$("$LG" --port "$S_PORT" --secret-file "$SECRET_FILE" --workspace "$S_WS" \
        --server-pid "$S_PID" "${extra[@]}" --label "$label" "$@" 2>>"$WORK/loadgen.err"); then
        log "loadgen $label $* reported failures (see $WORK/loadgen.err)"
    fi
    [[ -n $line ]] && printf '%s\n' "${line/#\{/\{\"round\":$round,}" >>"$RESULTS"
    return 0
}

# The editor stand-in's counts, added to the last result line as "standin".
standin_stats() {
    local stats
    [[ -s $WORK/editor.stats ]] || return 0
    stats=$(tr -d '\n|&' <"$WORK/editor.stats")
    sed -i "\$ s|}\$|,\"standin\":$stats}|" "$RESULTS"
}

# figure ROUND WHO LOADGEN-ARGS...: one figure; fresh mode starts and stops
# the server around it.
figure() {
    local round=$1 who=$2
    shift 2
    if [[ $LONG == 0 ]]; then
        start_server "$who"
        lg "$round" "$who" "$@"
        stop_server
        [[ $who == editor ]] && standin_stats
    else
        use_server "$who"
        lg "$round" "$who" "$@"
        sleep 1 # let the server finish closing before the next figure
    fi
    return 0
}

startup() {
    local round=$1 who=$2 line
    take_port
    case $who in
    helper)
        line=$("${HENV[@]}" "$LG" --port "$PORT" --label helper startup-tcp 3 -- "$HELPER_BIN" serve \
            --workspace "$REPO" --host 127.0.0.1 --port "$PORT" --config "$CONF")
        ;;
    editor)
        line=$("${HENV[@]}" "$LG" --secret-file "$SECRET_FILE" --label editor startup-stdio 5 "$HELPER_BIN")
        ;;
    peer)
        local p=$PORT
        line=$(cd "$WORK/peer" && SECRET=$(cat "$SECRET_FILE") WORKSPACE_ID=$PEER_WS REPO=$REPO \
            PORT=$p "$LG" --port "$p" --label peer startup-tcp 3 -- node server.js)
        ;;
    floor)
        line=$("$LG" --port "$PORT" --label floor startup-tcp 3 -- "$FLOOR" --port "$PORT" \
            --workspace "$FLOOR_WS" --folder "$REPO" --secret-file "$SECRET_FILE")
        ;;
    esac
    printf '%s\n' "${line/#\{/\{\"round\":$round,}" >>"$RESULTS"
}

has() { [[ ",$SERVERS," == *",$1,"* ]]; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
if [[ $LONG == 1 ]]; then
    RUN_MODE="long-running: one process per server for the whole run (idle first, then every round on the same process)"
    for who in "${ALL[@]}"; do
        log "long-running: starting $who"
        start_server "$who"
        LR_PORT[$who]=$S_PORT LR_PID[$who]=$S_PID LR_WS[$who]=$S_WS LR_EXTRA[$who]=$S_EXTRA
    done
else
    RUN_MODE="fresh process per figure: each server started, measured for one figure, stopped"
fi
log "mode: $RUN_MODE"

# Idle first: in long-running mode on the still fresh processes (RSS per
# connection is a difference, and a server that already served storms has
# freed memory to reuse). While they are held, 16 clients ping: what idle
# connections cost the busy ones.
for who in "${ALL[@]}"; do
    log "idle: $IDLE_N authenticated connections held ${IDLE_S}s on the $who (ping c=16 meanwhile)"
    if [[ $LONG == 0 ]]; then start_server "$who"; else use_server "$who"; fi
    lg 1 "$who" idle "$IDLE_N" "$IDLE_S" &
    idle_job=$!
    sleep $((IDLE_S / 4 + 2))
    lg 1 "$who" ping 16 "$SECS"
    # mark the line just written: it is not one of the rounds' ping figures
    sed -i '$ s/^{"round":1,/{"round":1,"while_idle":'"$IDLE_N"',/' "$RESULTS"
    wait "$idle_job"
    if [[ $LONG == 0 ]]; then stop_server; else sleep 1; fi
done

for ((r = 1; r <= ROUNDS; r++)); do
    # rotate the order each round: no server is always first or last
    order=("${ALL[@]:$(((r - 1) % ${#ALL[@]}))}" "${ALL[@]:0:$(((r - 1) % ${#ALL[@]}))}")
    for who in "${order[@]}"; do
        log "round $r/$ROUNDS: $who"
        figure "$r" "$who" auth-storm "$STORM_N"
        figure "$r" "$who" ping 16 "$SECS"
        figure "$r" "$who" ping 256 "$SECS"
        figure "$r" "$who" command 16 "$SECS" workspace.info
        startup "$r" "$who"
    done
done

if [[ $LONG == 1 ]]; then
    for who in "${ALL[@]}"; do
        use_server "$who"
        stop_server
    done
    if has editor && [[ -s $WORK/editor.stats ]]; then
        printf '{"round":1,"mode":"editor-standin","label":"editor","standin":%s}\n' \
            "$(tr -d '\n' <"$WORK/editor.stats")" >>"$RESULTS"
    fi
fi

# The editor that stops reading stdout (helper --stdio only, its own process).
if has editor; then
    log "helper --stdio whose stdout is never read, command c=16 for ${SECS}s"
    line=$("${HENV[@]}" "$LG" --secret-file "$SECRET_FILE" --label editor stdio-unread 16 "$SECS" \
        "$HELPER_BIN" 2>>"$WORK/loadgen.err" | tr '\n' ' ') || true
    printf '%s\n' "$line" | sed -E 's/^\{"mode":"command"(.*)\} \{"mode":"stdio-unread",[^,]*,(.*)\} ?$/{"round":1,"mode":"stdio-unread","unread":true\1,\2}/' >>"$RESULTS"
fi

# git.status last (a fresh process each): it makes the helper load a
# 50,000-entry index (RSS). The floor has no git.
for who in helper peer; do
    has "$who" || continue
    log "git.status on $REPO: $who (and git status --porcelain=v2)"
    start_server "$who"
    lg 1 "$who" gitstatus "$REPO" 5
    stop_server
done
git -C "$REPO" checkout -q -- .

cleanup
log "done in $(($(date +%s) - T_START)) s; raw results in $RESULTS"
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
BENCH_HELPER_DESC=$HELPER_DESC BENCH_LOAD="$LOAD_START -> $LOAD_END" \
    BENCH_MODE="$RUN_MODE" node "$ROOT/bench/report.mjs" "$RESULTS" "$STORM_N" "$IDLE_N" "$IDLE_S"
if [[ $FIGURES == 1 ]]; then
    BENCH_DESC=${HELPER_DESC%%,*} HELPER_BIN=$HELPER_BIN bash "$ROOT/bench/figures.sh" --no-build
fi
