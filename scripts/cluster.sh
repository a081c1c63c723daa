#!/usr/bin/env bash
# A voicebot cluster on this machine: the sandbox Asterisk, N workers and HAProxy in front of
# them (docs/cluster.md). A test call: VOICEBOT_HTTP_PORT=0 make call EXTENSION=150
#
#   scripts/cluster.sh start [N]   the sandbox Asterisk, N workers (1-9, default 3), then
#                                  HAProxy on 127.0.0.1:8765; returns once every worker
#                                  answers /health and HAProxy sees them all up; on a running
#                                  cluster of N, starts again the workers that died or drained
#   scripts/cluster.sh stop        SIGTERM the workers, wait while they finish their calls (up
#                                  to calls.drain_timeout_s), then stop HAProxy (the sandbox
#                                  Asterisk keeps running: scripts/asterisk-sandbox.sh stop)
#   scripts/cluster.sh status      each worker and HAProxy ("not running": exit 3)
#   scripts/cluster.sh config [N]  print the HAProxy configuration start would use
#
# Worker K listens on its own loopback address 127.0.0.(K+1): Asterisk's per-call ARI
# WebSockets on port 8765, the status server (/health, /metrics) on port 809K, and its RTP is
# bound and advertised there, so each call's audio goes straight to the worker that owns it.
# Logs and pid files: .state/workers/worker-K.{log,pid}, .state/haproxy.{cfg,log,pid,sock}.
# HAProxy's configuration is deploy/haproxy.cfg with its worker lines replaced by these.
# VOICEBOT_CLUSTER_START_TIMEOUT_S: how long a worker may take to answer /health (120).
# Must run as root (the sandbox Asterisk, HAProxy's chroot).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"
STATE_DIR="$REPO_DIR/.state"
WORKERS_DIR="$STATE_DIR/workers"
HAPROXY_TEMPLATE="$REPO_DIR/deploy/haproxy.cfg"
HAPROXY_CFG="$STATE_DIR/haproxy.cfg"
HAPROXY_LOG="$STATE_DIR/haproxy.log"
HAPROXY_PID="$STATE_DIR/haproxy.pid"
HAPROXY_SOCK="$STATE_DIR/haproxy.sock"
SANDBOX="$REPO_DIR/scripts/asterisk-sandbox.sh"
VOICEBOT="$REPO_DIR/.venv/bin/voicebot"
PY="$REPO_DIR/.venv/bin/python"

FRONTEND="127.0.0.1:8765"
ARI_PORT=8765
APP="voicebot-pool"
DEFAULT_WORKERS=3
MAX_WORKERS=9
# Loading the speech models takes ~10-30 s; a worker not healthy after this has a problem.
WORKER_START_TIMEOUT_S="${VOICEBOT_CLUSTER_START_TIMEOUT_S:-120}"
HAPROXY_UP_TIMEOUT_S=15

log() { echo "cluster: $*"; }
die() { echo "cluster: error: $*" >&2; exit 1; }

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (the sandbox Asterisk and HAProxy need it)"
}

worker_host() { echo "127.0.0.$(($1 + 1))"; }
worker_http_port() { echo "$((8090 + $1))"; }
worker_pid_file() { echo "$WORKERS_DIR/worker-$1.pid"; }
worker_log_file() { echo "$WORKERS_DIR/worker-$1.log"; }

check_count() {
    [[ "$1" =~ ^[0-9]+$ ]] && (($1 >= 1 && $1 <= MAX_WORKERS)) \
        || die "the number of workers must be 1 to $MAX_WORKERS (got '$1')"
}

# --- processes ---------------------------------------------------------------------------

# The pid in $1 if that process is alive, not a zombie, and its command line contains $2
# (guards against a reused pid).
live_pid() {
    local file="$1" pattern="$2" pid
    [[ -f "$file" ]] || return 1
    pid=$(cat "$file")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
    local cmdline
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ "$cmdline" == *"$pattern"* ]] || return 1
    echo "$pid"
}

worker_pid() { live_pid "$(worker_pid_file "$1")" voicebot; }
haproxy_pid() { live_pid "$HAPROXY_PID" haproxy; }

# Worker numbers that have a pid file, in order.
known_workers() {
    local f k
    shopt -s nullglob
    for f in "$WORKERS_DIR"/worker-*.pid; do
        k=${f##*/worker-}
        k=${k%.pid}
        if [[ "$k" =~ ^[0-9]+$ ]]; then echo "$k"; fi
    done | sort -n
    shopt -u nullglob
}

# HTTP status of GET http://HOST:PORT/health (000: no answer).
health_status() {
    python3 - "http://$1:$2/health" <<'EOF'
import sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via http_proxy
try:
    with opener.open(sys.argv[1], timeout=2) as resp:
        print(resp.status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except Exception:
    print("000")
EOF
}

# A command on HAProxy's admin socket (e.g. "show stat"); prints the answer.
haproxy_cmd() {
    python3 - "$HAPROXY_SOCK" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(2)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode() + b"\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
print(data.decode(), end="")
EOF
}

# "worker1 UP", ... from HAProxy's statistics.
haproxy_server_states() {
    haproxy_cmd "show stat" 2>/dev/null \
        | awk -F, '$1 == "voicebot-workers" && $2 != "BACKEND" {print $2, $18}'
}

# calls.drain_timeout_s as the workers will see it (voicebot.toml and VOICEBOT_* variables).
drain_timeout_s() {
    "$PY" - 2>/dev/null <<'EOF' || echo 30
from pathlib import Path
from voicebot.config import load_config
path = Path("voicebot.toml")
print(int(load_config(path if path.exists() else None).calls.drain_timeout_s + 0.999))
EOF
}

# --- HAProxy configuration ---------------------------------------------------------------

haproxy_config() {
    local n="$1" k lines=""
    [[ -f "$HAPROXY_TEMPLATE" ]] || die "$HAPROXY_TEMPLATE missing"
    grep -q '# >>> workers' "$HAPROXY_TEMPLATE" && grep -q '# <<< workers' "$HAPROXY_TEMPLATE" \
        || die "$HAPROXY_TEMPLATE has no '# >>> workers' ... '# <<< workers' markers"
    for ((k = 1; k <= n; k++)); do
        lines+="    server worker$k $(worker_host "$k"):$ARI_PORT"
        lines+=" check port $(worker_http_port "$k")"$'\n'
    done
    echo "# Generated by scripts/cluster.sh from deploy/haproxy.cfg for $n worker(s)."
    echo "# Edit that file, not this one."
    # Logs go to stdout (the log file) instead of syslog, the admin socket to .state/.
    SERVERS="$lines" SOCK="$HAPROXY_SOCK" awk '
        /# >>> workers/ { print; printf "%s", ENVIRON["SERVERS"]; skip = 1; next }
        /# <<< workers/ { skip = 0 }
        skip { next }
        /^[ \t]*log \/dev\/log/ { print "    log stdout format iso local0"; next }
        /^[ \t]*stats socket / { print "    stats socket " ENVIRON["SOCK"] " mode 600 level admin"; next }
        { print }
    ' "$HAPROXY_TEMPLATE"
}

# --- start -------------------------------------------------------------------------------

start_worker() {
    local k="$1" password="$2" host port logf
    host=$(worker_host "$k")
    port=$(worker_http_port "$k")
    logf=$(worker_log_file "$k")
    : >"$logf"
    # setsid: own session, so a Ctrl-C in the calling terminal does not reach it.
    VOICEBOT_ARI_MODE=accept \
    VOICEBOT_ARI_LISTEN="$host:$ARI_PORT" \
    VOICEBOT_ARI_APP="$APP" \
    VOICEBOT_ARI_PASSWORD="$password" \
    VOICEBOT_HTTP_HOST="$host" \
    VOICEBOT_HTTP_PORT="$port" \
    VOICEBOT_MEDIA_BIND_HOST="$host" \
    VOICEBOT_MEDIA_ADVERTISE_HOST="$host" \
        setsid "$VOICEBOT" run </dev/null >>"$logf" 2>&1 &
    echo $! >"$(worker_pid_file "$k")"
}

fail_start() {
    # fail_start MESSAGE... LOG_FILE: the message, after the end of the log that explains it;
    # then stop what was started.
    local logf="${*: -1}" msg="${*:1:$#-1}"
    echo "--- last lines of ${logf#"$REPO_DIR"/} ---" >&2
    tail -n 30 "$logf" >&2 || true
    echo "cluster: error: $msg" >&2
    log "stopping what was started"
    cmd_stop >&2 || true
    exit 1
}

wait_for_workers() {
    local n="$1" deadline=$((SECONDS + WORKER_START_TIMEOUT_S)) k pending code
    local -A healthy=()
    while true; do
        pending=0
        for ((k = 1; k <= n; k++)); do
            [[ -n "${healthy[$k]:-}" ]] && continue
            if ! worker_pid "$k" >/dev/null; then
                fail_start "worker $k exited during startup" "$(worker_log_file "$k")"
            fi
            code=$(health_status "$(worker_host "$k")" "$(worker_http_port "$k")")
            if [[ "$code" == 200 ]]; then
                healthy[$k]=1
                log "worker $k is up ($(worker_host "$k"), $((SECONDS - START)) s)"
            else
                pending=$((pending + 1))
                if ((SECONDS >= deadline)); then
                    local where
                    where="$(worker_host "$k"):$(worker_http_port "$k")"
                    fail_start "worker $k: /health on $where did not answer 200 within" \
                        "${WORKER_START_TIMEOUT_S} s (last status: $code)" "$(worker_log_file "$k")"
                fi
            fi
        done
        ((pending == 0)) && return 0
        sleep 1
    done
}

start_haproxy() {
    local n="$1"
    command -v haproxy >/dev/null || die "haproxy not found; run scripts/install-system-deps.sh"
    haproxy_config "$n" >"$HAPROXY_CFG"
    haproxy -c -f "$HAPROXY_CFG" >/dev/null || die "the generated $HAPROXY_CFG is invalid (haproxy -c)"
    : >"$HAPROXY_LOG"
    # -db: stay in the foreground (we background it, so the pid is HAProxy's; logs on stdout).
    setsid haproxy -db -f "$HAPROXY_CFG" </dev/null >>"$HAPROXY_LOG" 2>&1 &
    echo $! >"$HAPROXY_PID"
    wait_for_haproxy "$n"
}

# Until HAProxy's health checks see all $1 workers up (rise 2: about 1-2 s).
wait_for_haproxy() {
    local n="$1" deadline=$((SECONDS + HAPROXY_UP_TIMEOUT_S)) up states
    while true; do
        haproxy_pid >/dev/null || fail_start "HAProxy exited during startup" "$HAPROXY_LOG"
        states=$(haproxy_server_states || true)
        up=$(grep -c ' UP$' <<<"$states" || true)
        ((up == n)) && return 0
        if ((SECONDS >= deadline)); then
            echo "$states" >&2
            fail_start "HAProxy does not see all $n workers up after ${HAPROXY_UP_TIMEOUT_S} s" \
                "$HAPROXY_LOG"
        fi
        sleep 0.5
    done
}

cmd_start() {
    local n="${1:-$DEFAULT_WORKERS}" k running=0
    check_count "$n"
    require_root
    [[ -x "$VOICEBOT" ]] || die "$VOICEBOT missing; run make setup first"
    for k in $(known_workers); do
        worker_pid "$k" >/dev/null && running=$((running + 1))
    done
    if ((running > 0)) || haproxy_pid >/dev/null; then
        if [[ -z "$(known_workers | awk -v n="$n" '$1 > n')" ]] && haproxy_pid >/dev/null \
            && [[ "$(grep -c '^ *server worker' "$HAPROXY_CFG" 2>/dev/null)" == "$n" ]]; then
            if ((running == n)); then
                log "already running with $n worker(s)"
            else
                restart_missing "$n"
            fi
            return 0
        fi
        die "a cluster is already running ($running worker(s)); scripts/cluster.sh stop first"
    fi
    START=$SECONDS
    "$SANDBOX" start
    local password
    password=$("$SANDBOX" password)
    mkdir -p "$WORKERS_DIR"
    rm -f "$WORKERS_DIR"/worker-*.pid
    for ((k = 1; k <= n; k++)); do
        start_worker "$k" "$password"
    done
    log "started $n worker(s); loading models (10-30 s)"
    wait_for_workers "$n"
    start_haproxy "$n"
    log "HAProxy on $FRONTEND (pid $(cat "$HAPROXY_PID")) sees $n worker(s) up;" \
        "ready in $((SECONDS - START)) s"
    cat <<INFO

  Call the pool:  VOICEBOT_HTTP_PORT=0 make call EXTENSION=150
                  (sipp; VOICEBOT_HTTP_PORT=0: there is no single bot's /health to ask first)
                  or sip:150@this-host from a softphone
  Status:         scripts/cluster.sh status
  Logs:           .state/workers/worker-K.log, .state/haproxy.log, .state/asterisk/asterisk.log
  Stop:           scripts/cluster.sh stop     (or make stop: also the sandbox Asterisk)

INFO
}

# Start the workers of a running cluster that died or were drained (HAProxy keeps its config).
restart_missing() {
    local n="$1" k password
    START=$SECONDS
    password=$("$SANDBOX" password)
    for ((k = 1; k <= n; k++)); do
        if ! worker_pid "$k" >/dev/null; then
            log "worker $k is not running: starting it again"
            start_worker "$k" "$password"
        fi
    done
    wait_for_workers "$n"
    wait_for_haproxy "$n"
    log "all $n worker(s) up again in $((SECONDS - START)) s"
}

# --- stop --------------------------------------------------------------------------------

cmd_stop() {
    require_root
    local k pid pids=() names=() stopped=0
    for k in $(known_workers); do
        if pid=$(worker_pid "$k"); then
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
            names+=("$k")
        fi
    done
    if ((${#pids[@]} > 0)); then
        # A worker finishes its calls for up to calls.drain_timeout_s, then hands the rest
        # back; the margin covers closing its sockets and threads.
        local wait_s i alive
        wait_s=$(($(drain_timeout_s) + 15))
        log "SIGTERM sent to worker(s) ${names[*]}; waiting up to $wait_s s while they finish their calls"
        local deadline=$((SECONDS + wait_s))
        while true; do
            alive=0
            for i in "${!pids[@]}"; do
                kill -0 "${pids[i]}" 2>/dev/null \
                    && [[ "$(awk '{print $3}' "/proc/${pids[i]}/stat" 2>/dev/null)" != Z ]] \
                    && alive=$((alive + 1))
            done
            ((alive == 0)) && break
            if ((SECONDS >= deadline)); then
                log "warning: $alive worker(s) still running after $wait_s s; killing them"
                for i in "${!pids[@]}"; do
                    kill -KILL "${pids[i]}" 2>/dev/null || true
                done
                break
            fi
            sleep 0.5
        done
        log "stopped worker(s) ${names[*]}"
        stopped=1
    fi
    rm -f "$WORKERS_DIR"/worker-*.pid
    if pid=$(haproxy_pid); then
        # SIGTERM: immediate stop (SIGUSR1 would wait for the calls' WebSockets to end).
        kill -TERM "$pid" 2>/dev/null || true
        for ((k = 0; k < 50; k++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        log "stopped HAProxy (pid $pid)"
        stopped=1
    fi
    rm -f "$HAPROXY_PID" "$HAPROXY_SOCK"
    ((stopped == 1)) || log "not running"
    return 0
}

# --- status ------------------------------------------------------------------------------

cmd_status() {
    local k pid any=0 host port code
    for k in $(known_workers); do
        host=$(worker_host "$k")
        port=$(worker_http_port "$k")
        if pid=$(worker_pid "$k"); then
            any=1
            code=$(health_status "$host" "$port")
            echo "worker $k: running (pid $pid) on $host, ARI :$ARI_PORT, /health :$port -> $code;" \
                "log ${WORKERS_DIR#"$REPO_DIR"/}/worker-$k.log"
        else
            echo "worker $k: not running (log ${WORKERS_DIR#"$REPO_DIR"/}/worker-$k.log)"
        fi
    done
    if pid=$(haproxy_pid); then
        any=1
        echo "HAProxy: running (pid $pid) on $FRONTEND; log ${HAPROXY_LOG#"$REPO_DIR"/}"
        haproxy_server_states | sed 's/^/  HAProxy sees /' || true
    else
        echo "HAProxy: not running"
    fi
    ((any == 1)) || { echo "not running"; return 3; }
}

usage() {
    sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
    start) cmd_start "${2:-$DEFAULT_WORKERS}" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    config) n="${2:-$DEFAULT_WORKERS}"; check_count "$n"; haproxy_config "$n" ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
