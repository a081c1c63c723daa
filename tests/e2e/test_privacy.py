"""Callers' secrets stay out of a real bot's log: sipp → Asterisk 22 → the bank script (102).

The caller keys 1 (balance), says the account number 4217, answers the read-back "You said
4 2 1 7" with the key 2 (no), keys 4217, and confirms with 1. The session bot runs at INFO
with ``log.transcripts`` off (the defaults): its log must tell what happened (intents, states,
slot sizes) and hold none of those digits, said, keyed or read back.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import AsteriskSandbox, RunningBot
from tests.e2e.helpers import assert_all_released, caller_intents, last_call
from tests.support.audio import FIXTURE_AUDIO
from voicebot.tools.sip import Dtmf, Pause, Play, WaitForBye, place_call, read_wav_8k

pytestmark = pytest.mark.slow
BANK_GREETING_S = 7.0  # as in test_scripts.py: the caller lets the greeting finish
# However 4217 could reach a log line: as whisper writes it ("4217", "4, 2, 1, 7"), as the
# bot reads it back ("4 2 1 7"), in words, or key by key ("#4"). Not across a "." ("421.7 ms").
ACCOUNT_PATTERNS = [
    re.compile(r"(?<![\d.])4[\s,-]{0,2}2[\s,-]{0,2}1[\s,-]{0,2}7(?!\d)"),
    re.compile(r"\bfour\W+two\W+one\W+seven\b", re.IGNORECASE),
    re.compile(r"#\d"),
]
# "2026-11-26 06:15:00,421 INFO    voicebot.call.session: call 1795673048.0: ...": the time
# stamp is cut off (",421 7..." must not look like an account number).
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d [\d:,]+ (?P<level>[A-Z]+)\s+(?P<logger>\S+): (?P<msg>.*)$")
# Counters and timings are numbers of the bot's own: {'received': 4217, ...}, "421.7 ms".
STATS = re.compile(r"\{[^}]*\}|\d+(?:\.\d+)? m?s\b")


def say(name: str) -> Play:
    return Play(read_wav_8k(FIXTURE_AUDIO / f"{name}.wav"))


def log_messages(text: str) -> list[tuple[str, str]]:
    """(level, message) of each line of the bot's log; other lines (a traceback) whole."""
    found = []
    for line in text.splitlines():
        match = LOG_LINE.match(line)
        found.append((match["level"], match["msg"]) if match else ("", line))
    return found


def leaks(messages: list[tuple[str, str]], call_id: str) -> list[str]:
    """Messages that show the account number or a key."""
    return [
        message
        for _, message in messages
        if any(p.search(STATS.sub("", message.replace(call_id, "CALL"))) for p in ACCOUNT_PATTERNS)
    ]


async def test_the_bots_info_log_holds_no_account_number_said_keyed_or_read_back(
    asterisk: AsteriskSandbox, bot: RunningBot, tmp_path: Path
) -> None:
    log_before = len(bot.log_text())
    result = await place_call(
        extension="102", workdir=tmp_path, timeout_s=150,
        steps=[Pause(BANK_GREETING_S), Dtmf("1"), Pause(4.5), say("digits-4217"), Pause(6.0),
               Dtmf("2"), Pause(4.5), Dtmf("4217"), Pause(5.5), Dtmf("1"),
               WaitForBye(timeout_s=25)],
    )  # fmt: skip
    assert result.hangup_by == "remote"  # the bot read the balance and said goodbye
    await assert_all_released(asterisk, bot)
    call = last_call(bot)
    assert call["end_reason"] == "bot-hangup"
    intents = caller_intents(call)
    assert intents[0] == "balance" and intents[-1] == "yes", call["transcript"]
    assert intents.count("account") == 2, call["transcript"]  # said, then keyed

    messages = log_messages(bot.log_text()[log_before:])
    levels = {level for level, _ in messages if level}
    assert "DEBUG" not in levels, "the session bot must log at INFO (is VOICEBOT_LOG_LEVEL set?)"
    ours = [message for _, message in messages if call["call_id"] in message]
    # The log still tells the story, by intents, states and sizes.
    assert any("keyed <a key> in state 'main' → intent 'balance'" in m for m in ours), ours
    assert sum("slot 'account' filled: <4 digits>" in m for m in ours) == 2, ours
    assert any("latency:" in m for m in ours), ours
    # None of the digits, nor the bot's read-backs of them.
    assert leaks(messages, call["call_id"]) == []
    assert not [m for _, m in messages if "You said" in m or "balance on account" in m]
