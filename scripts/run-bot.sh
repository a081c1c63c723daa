#!/usr/bin/env bash
# Start the bot in the foreground with the demo script (used by `make run`), or stop it (--stop).
# The ARI password comes from VOICEBOT_ARI_PASSWORD, else the sandbox's generated one.
set -euo pipefail
REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_DIR"
PID_FILE=.state/voicebot.pid

if [[ "${1:-}" == "--stop" ]]; then
    if [[ -f $PID_FILE ]] && kill -0 "$(cat $PID_FILE)" 2>/dev/null; then
        kill -TERM "$(cat $PID_FILE)" && echo "voicebot: stopped (pid $(cat $PID_FILE))"
    else
        echo "voicebot: not running"
    fi
    rm -f $PID_FILE
    exit 0
fi

if [[ -z "${VOICEBOT_ARI_PASSWORD:-}" && -z "${VOICEBOT_ARI_URL:-}" ]]; then
    VOICEBOT_ARI_PASSWORD="$(scripts/asterisk-sandbox.sh password)"
    export VOICEBOT_ARI_PASSWORD
fi
mkdir -p .state
# The web console needs a token: one generated once for this checkout, unless one is given.
if [[ -z "${VOICEBOT_HTTP_TOKEN:-}" ]]; then
    if [[ ! -s .state/console-token ]]; then
        (umask 077 && head -c 24 /dev/urandom | base64 | tr -d '/+=' > .state/console-token)
    fi
    VOICEBOT_HTTP_TOKEN="$(cat .state/console-token)"
    export VOICEBOT_HTTP_TOKEN
fi
host_ip="$(hostname -I 2>/dev/null | awk '{print $1}')"
cat <<INFO

  voicebot is starting with prompts/demo.yaml.
  Call it from this machine:   make call          (sipp, in another terminal)
  Call it from a softphone:    sip:100@${host_ip:-<this-host>}   (or 101)
      account  user: softphone   password: $(scripts/asterisk-sandbox.sh softphone-password 2>/dev/null || echo '<see .state/softphone-password>')
               domain/registrar: ${host_ip:-<this-host>}:5060 (UDP)
  Watch the calls:             the "console: http://..." URL printed below (docs/console.md)
  Stop:  Ctrl-C (bot only) or  make stop  (bot and sandbox Asterisk)

INFO
echo $$ > $PID_FILE
exec .venv/bin/voicebot run
