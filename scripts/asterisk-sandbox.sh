#!/usr/bin/env bash
# A real Asterisk for development and tests, in a Debian-unstable chroot under .state/.
#
#   scripts/asterisk-sandbox.sh install     build the chroot once (debootstrap, ~1 min, ~500 MB)
#   scripts/asterisk-sandbox.sh start       install if needed, copy asterisk-conf/, start Asterisk,
#                                           wait for ARI; if already running, reload the config
#   scripts/asterisk-sandbox.sh stop        stop the Asterisk this script started, unmount
#   scripts/asterisk-sandbox.sh status      "running" (exit 0) or "not running" (exit 3)
#   scripts/asterisk-sandbox.sh cli "cmd"   run an Asterisk CLI command (asterisk -rx)
#   scripts/asterisk-sandbox.sh password    print the ARI password
#   scripts/asterisk-sandbox.sh softphone-password
#
# Debian 12 has no Asterisk package, so the sandbox is a minimal Debian "sid" chroot with
# Asterisk installed from the distribution. Asterisk runs as root inside it and shares the
# host network: ARI listens on 127.0.0.1:8088, SIP on UDP 5060, RTP on UDP 10000-10999.
#
# Secrets are generated on first use into .state/ari-password and .state/softphone-password
# (mode 600); the configuration in asterisk-conf/ only holds @ARI_PASSWORD@ and
# @SOFTPHONE_PASSWORD@ placeholders. VOICEBOT_ARI_PASSWORD, when set, overrides the ARI one.
# Must run as root (debootstrap, chroot, mount).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="$REPO_DIR/.state"
SANDBOX_DIR="$STATE_DIR/asterisk"
CHROOT="$SANDBOX_DIR/root"
STAMP="$SANDBOX_DIR/installed.stamp"
LOG_FILE="$SANDBOX_DIR/asterisk.log"
PID_FILE="$SANDBOX_DIR/asterisk.pid"
MOUNTS_FILE="$SANDBOX_DIR/mounts"
ARI_PASSWORD_FILE="$STATE_DIR/ari-password"
SOFTPHONE_PASSWORD_FILE="$STATE_DIR/softphone-password"
CONF_DIR="$REPO_DIR/asterisk-conf"

SUITE="${VOICEBOT_SANDBOX_SUITE:-sid}"
MIRROR="${VOICEBOT_SANDBOX_MIRROR:-http://deb.debian.org/debian}"
PACKAGES="asterisk,asterisk-modules,asterisk-core-sounds-en-wav"
ARI_URL="http://127.0.0.1:8088"
ARI_USER="voicebot"
START_TIMEOUT_S=60

log() { echo "asterisk-sandbox: $*"; }
die() { echo "asterisk-sandbox: error: $*" >&2; exit 1; }

require_root() {
    [[ $(id -u) -eq 0 ]] || die "must run as root (it uses debootstrap, chroot and mount)"
}

# --- secrets -----------------------------------------------------------------------------

generate_secret() {
    # 24 random alphanumerics: safe inside any Asterisk .conf value.
    local secret=""
    while [[ ${#secret} -lt 24 ]]; do
        secret+=$(head -c 64 /dev/urandom | base64 -w0 | tr -dc 'A-Za-z0-9')
    done
    printf '%s' "${secret:0:24}"
}

ensure_secret_file() {
    local file="$1"
    if [[ ! -s "$file" ]]; then
        mkdir -p "$STATE_DIR"
        (umask 077 && generate_secret >"$file")
        log "generated a random password in ${file#"$REPO_DIR"/}"
    fi
    chmod 600 "$file"
}

ari_password() {
    if [[ -n "${VOICEBOT_ARI_PASSWORD:-}" ]]; then
        printf '%s' "$VOICEBOT_ARI_PASSWORD"
    else
        ensure_secret_file "$ARI_PASSWORD_FILE" >&2
        cat "$ARI_PASSWORD_FILE"
    fi
}

softphone_password() {
    ensure_secret_file "$SOFTPHONE_PASSWORD_FILE" >&2
    cat "$SOFTPHONE_PASSWORD_FILE"
}

# --- install -----------------------------------------------------------------------------

cmd_install() {
    require_root
    if [[ -f "$STAMP" ]]; then
        log "already installed in ${CHROOT#"$REPO_DIR"/} (remove $STAMP to rebuild)"
        return 0
    fi
    command -v debootstrap >/dev/null \
        || die "debootstrap not found; run scripts/install-system-deps.sh first"
    if is_running; then
        die "an Asterisk started from a previous install is still running; stop it first"
    fi
    unmount_all
    mkdir -p "$SANDBOX_DIR"
    rm -rf "$CHROOT"
    local dlog="$SANDBOX_DIR/debootstrap.log"
    log "building the Debian $SUITE chroot with Asterisk (about a minute, ~500 MB)"
    local start=$SECONDS
    debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$CHROOT" "$MIRROR" \
        >"$dlog" 2>&1 &
    local pid=$!
    # Progress: elapsed time and debootstrap's current step, on one line.
    local tty=0
    [[ -t 1 ]] && tty=1
    local last=""
    while kill -0 "$pid" 2>/dev/null; do
        local step
        step=$(grep -E '^I: ' "$dlog" 2>/dev/null | tail -n 1 | cut -c4-70 || true)
        if [[ $tty -eq 1 ]]; then
            printf '\r\033[K  [%3ds] %s' $((SECONDS - start)) "$step"
        elif [[ "$step" != "$last" && $(( (SECONDS - start) % 10 )) -eq 0 ]]; then
            printf '  [%3ds] %s\n' $((SECONDS - start)) "$step"
            last="$step"
        fi
        sleep 1
    done
    [[ $tty -eq 1 ]] && printf '\r\033[K'
    if ! wait "$pid"; then
        tail -n 30 "$dlog" >&2 || true
        die "debootstrap failed (full log: $dlog)"
    fi
    # Asterisk runs as root in the sandbox: give root the directories the package gave
    # to the 'asterisk' user.
    local d
    for d in /var/lib/asterisk /var/spool/asterisk /var/log/asterisk /var/run/asterisk \
        /etc/asterisk; do
        mkdir -p "$CHROOT$d"
        chown -R root:root "$CHROOT$d"
    done
    # Keep the distribution's sample configuration for reference; start() installs ours.
    if [[ ! -d "$CHROOT/etc/asterisk.dist" ]]; then
        cp -a "$CHROOT/etc/asterisk" "$CHROOT/etc/asterisk.dist"
    fi
    ensure_secret_file "$ARI_PASSWORD_FILE"
    ensure_secret_file "$SOFTPHONE_PASSWORD_FILE"
    local version
    version=$(chroot "$CHROOT" dpkg-query -W -f='${Version}' asterisk 2>/dev/null || echo '?')
    date -u +%FT%TZ >"$STAMP"
    echo "asterisk $version" >>"$STAMP"
    log "installed Asterisk $version in $((SECONDS - start)) s"
}

# --- mounts ------------------------------------------------------------------------------

mount_needed() {
    # Record each mount we make so stop() unmounts only ours.
    touch "$MOUNTS_FILE"
    if ! mountpoint -q "$CHROOT/proc"; then
        mount -t proc proc "$CHROOT/proc"
        echo "$CHROOT/proc" >>"$MOUNTS_FILE"
    fi
    if ! mountpoint -q "$CHROOT/dev"; then
        mount --bind /dev "$CHROOT/dev"
        echo "$CHROOT/dev" >>"$MOUNTS_FILE"
    fi
}

unmount_all() {
    [[ -f "$MOUNTS_FILE" ]] || return 0
    local mounts=() m i
    mapfile -t mounts <"$MOUNTS_FILE"
    for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
        m="${mounts[i]}"
        [[ -n "$m" ]] || continue
        if mountpoint -q "$m"; then
            umount "$m" 2>/dev/null || umount -l "$m" || log "warning: could not unmount $m"
        fi
    done
    rm -f "$MOUNTS_FILE"
}

# --- process -----------------------------------------------------------------------------

running_pid() {
    # The pid of the Asterisk this script started, if it is still alive.
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid=$(cat "$PID_FILE")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # Guard against pid reuse: it must be an asterisk process.
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == asterisk* ]] || return 1
    # A killed Asterisk not yet reaped is a zombie: not running.
    [[ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ]] || return 1
    echo "$pid"
}

is_running() { running_pid >/dev/null; }

asterisk_rx() {
    chroot "$CHROOT" /usr/sbin/asterisk -rx "$1"
}

install_config() {
    [[ -d "$CONF_DIR" ]] || die "configuration directory $CONF_DIR missing"
    local ari_pw sp_pw f name content
    ari_pw=$(ari_password)
    sp_pw=$(softphone_password)
    shopt -s nullglob
    local files=("$CONF_DIR"/*.conf)
    shopt -u nullglob
    [[ ${#files[@]} -gt 0 ]] || die "no .conf files in $CONF_DIR"
    for f in "${files[@]}"; do
        name=$(basename "$f")
        content=$(<"$f")
        # Quoted replacement: no '&' or '\' interpretation of the password.
        content=${content//@ARI_PASSWORD@/"$ari_pw"}
        content=${content//@SOFTPHONE_PASSWORD@/"$sp_pw"}
        (umask 077 && printf '%s\n' "$content" >"$CHROOT/etc/asterisk/$name")
    done
    # The chroot shares the host's network; give it the host's name resolution (Asterisk
    # looks up its own host name).
    cp /etc/hosts "$CHROOT/etc/hosts" 2>/dev/null || true
    cp -L /etc/resolv.conf "$CHROOT/etc/resolv.conf" 2>/dev/null || true
    # The sample users.conf only produces a deprecation warning at every start.
    rm -f "$CHROOT/etc/asterisk/users.conf"
}

ari_status() {
    # Prints the HTTP status of GET /ari/asterisk/info with the credentials (000: no answer).
    ARI_CHECK_PASSWORD="$1" python3 - "$ARI_URL/ari/asterisk/info" "$ARI_USER" <<'EOF'
import base64, os, sys, urllib.error, urllib.request
url, user = sys.argv[1], sys.argv[2]
token = base64.b64encode(f"{user}:{os.environ['ARI_CHECK_PASSWORD']}".encode()).decode()
req = urllib.request.Request(url, headers={"Authorization": "Basic " + token})
try:
    with urllib.request.urlopen(req, timeout=2) as resp:
        print(resp.status)
except urllib.error.HTTPError as exc:
    print(exc.code)
except Exception:
    print("000")
EOF
}

wait_for_ari() {
    local pw="$1" deadline=$((SECONDS + START_TIMEOUT_S)) code="000"
    while ((SECONDS < deadline)); do
        code=$(ari_status "$pw")
        if [[ "$code" == 200 ]]; then
            return 0
        fi
        if ! is_running; then
            echo "--- last lines of $LOG_FILE ---" >&2
            tail -n 40 "$LOG_FILE" >&2 || true
            die "Asterisk exited during startup"
        fi
        sleep 0.5
    done
    echo "--- last lines of $LOG_FILE ---" >&2
    tail -n 40 "$LOG_FILE" >&2 || true
    die "ARI at $ARI_URL did not answer 200 within ${START_TIMEOUT_S}s (last status: $code)"
}

cmd_start() {
    require_root
    [[ -f "$STAMP" ]] || cmd_install
    local pw
    pw=$(ari_password)
    install_config
    local pid
    if pid=$(running_pid); then
        asterisk_rx "core reload" >/dev/null
        # 'core reload' does not re-read modules.conf; that needs a restart (stop + start).
        wait_for_ari "$pw"
        log "already running (pid $pid); configuration reloaded"
        return 0
    fi
    mount_needed
    mkdir -p "$CHROOT/run/asterisk" "$CHROOT/var/log/asterisk" "$CHROOT/usr/share/asterisk/moh"
    rm -f "$CHROOT/run/asterisk/asterisk.ctl" "$CHROOT/run/asterisk/asterisk.pid"
    local start=$SECONDS
    : >"$LOG_FILE"
    # -f: foreground (we background it ourselves, so the pid is Asterisk's), -n: no colours,
    # -vvv: verbose messages on stdout, which goes to the log file. setsid: own session, so
    # it survives the calling shell and a Ctrl-C in it.
    setsid chroot "$CHROOT" /usr/sbin/asterisk -f -n -vvv -g \
        </dev/null >>"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    wait_for_ari "$pw"
    log "started (pid $(cat "$PID_FILE")) in $((SECONDS - start)) s; ARI $ARI_URL user $ARI_USER;" \
        "log ${LOG_FILE#"$REPO_DIR"/}"
}

cmd_stop() {
    require_root
    local pid
    if pid=$(running_pid); then
        timeout 10 chroot "$CHROOT" /usr/sbin/asterisk -rx "core stop now" >/dev/null 2>&1 || true
        local i
        for ((i = 0; i < 50; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            sleep 2
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped (pid $pid)"
    else
        log "not running"
    fi
    rm -f "$PID_FILE"
    unmount_all
}

cmd_status() {
    local pid
    if pid=$(running_pid); then
        echo "running (pid $pid); ARI $ARI_URL; log ${LOG_FILE#"$REPO_DIR"/}"
        return 0
    fi
    if [[ -f "$STAMP" ]]; then
        echo "not running (installed)"
    else
        echo "not running (not installed)"
    fi
    return 3
}

cmd_cli() {
    require_root
    [[ $# -gt 0 ]] || die "usage: $0 cli \"core show channels\""
    is_running || die "Asterisk is not running (scripts/asterisk-sandbox.sh start)"
    asterisk_rx "$*"
}

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
    install) cmd_install ;;
    start) cmd_start ;;
    stop) cmd_stop ;;
    restart) cmd_stop; cmd_start ;;
    status) cmd_status ;;
    cli) shift; cmd_cli "$@" ;;
    password) ari_password; echo ;;
    softphone-password) softphone_password; echo ;;
    -h | --help | help) usage ;;
    *) usage >&2; exit 2 ;;
esac
