#!/usr/bin/env bash
# Install the Debian packages voicebot's sandbox and tests need (Debian 12, run as root).
#
#   debootstrap                  builds the Asterisk chroot (Asterisk is not packaged in Debian 12)
#   sip-tester                   sipp, the SIP test caller used by voicebot/tools/sip/
#   tshark                       captures the RTP the test caller receives
#   asterisk-core-sounds-en-wav  the stock prompts (hello-world, beep, ...) as 8 kHz WAV
#   espeak-ng, sox               make speech-like test audio
#   python3-venv                 the project's virtualenv
#   openssl                      makes the self-signed certificate of the webhook TLS test
#   haproxy                      spreads calls over the workers of a cluster (make cluster)
#   graphviz                     draws a script's flow (voicebot graph)
#   chromium, chromium-driver    the web console's browser tests (headless, through Selenium)
#   apt, debian-archive-keyring  fetch RHVoice's .deb files for Russian with a private apt
#                                configuration (scripts/fetch-rhvoice.py; already on any Debian)
#
# Idempotent: when everything is already installed it prints one line and does nothing.
set -euo pipefail

PACKAGES=(debootstrap sip-tester tshark asterisk-core-sounds-en-wav espeak-ng sox python3-venv openssl
    haproxy graphviz apt debian-archive-keyring chromium chromium-driver)

if [[ $(id -u) -ne 0 ]]; then
    echo "install-system-deps: must run as root (apt-get install)" >&2
    exit 1
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-system-deps: all system packages already installed"
    exit 0
fi

echo "install-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark's wireshark-common asks whether non-root users may capture; answer "no" up front.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-system-deps: done"
