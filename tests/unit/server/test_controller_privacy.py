"""Callers' secrets stay out of the log: a whole bank call through the controller (fake ARI, a
real UDP caller, the test doubles), its log read back at INFO.

The caller presses 1 (balance), says the account number, says no to the read-back, keys the
account number, and confirms. At INFO the log names intents, states, slots and lengths; the
account number (said, keyed or read back), the keys and the caller's number are in it only
with ``log.transcripts = true`` (the number not even then) or at DEBUG.
"""

from __future__ import annotations

import logging
import re

import pytest

from tests.support.controller import ROOT, Harness, allison, harness
from tests.support.doubles import ListAsr, ToneTts
from voicebot.config import LogConfig

FAST_TTS_S_PER_CHAR = 0.002
CALLER_NUMBER = "5550123"
SPOKEN_ACCOUNT = "six zero five nine"
# However the account number could reach a log line: as said, as a slot value, as read back,
# or key by key ("#6").
ACCOUNT_PATTERNS = [
    re.compile(r"6\W{0,2}0\W{0,2}5\W{0,2}9"),
    re.compile(r"six\W+zero\W+five\W+nine", re.IGNORECASE),
    re.compile(r"#\d"),
]


def said(h: Harness, fragment: str) -> int:
    return sum(fragment in text for text in h.tts.spoken)


async def bank_call(h: Harness) -> None:
    """Balance by key, the account said, "no", the account keyed, "yes": to the goodbye."""
    async with h.call(channel_id="bank-call", caller_number=CALLER_NUMBER) as (caller, peer):
        await peer.wait_quiet()
        await h.fake.send_dtmf_event(caller, "1")  # balance
        await h.wait_until(lambda: said(h, "account number") == 1)
        await peer.wait_quiet(since=len(peer.received))
        await peer.send_speech(allison("hours"))  # ListAsr hears it as the account number
        await h.wait_until(lambda: said(h, "You said") == 1)
        await peer.wait_quiet(since=len(peer.received))
        await h.fake.send_dtmf_event(caller, "2")  # no: again
        await h.wait_until(lambda: said(h, "account number") == 2)
        for digit in "6059":
            await h.fake.send_dtmf_event(caller, digit)
        await h.wait_until(lambda: said(h, "You said") == 2)
        await h.fake.send_dtmf_event(caller, "1")  # yes
        await h.wait_until(lambda: any(c["call_id"] == caller for c in h.controller.recent))
    summary = h.controller.recent[-1]
    assert summary["end_reason"] == "bot-hangup"
    states = [line.get("state") for line in summary["transcript"] if line["who"] == "caller"]
    assert states == ["main", "account", "confirm", "account", "account", "account", "account",
                      "confirm"]  # fmt: skip
    assert said(h, "The balance on account") == 1


async def logged_bank_call(
    caplog: pytest.LogCaptureFixture, level: int, *, transcripts: bool
) -> list[logging.LogRecord]:
    caplog.set_level(level)
    asr = ListAsr([SPOKEN_ACCOUNT])
    tts = ToneTts(FAST_TTS_S_PER_CHAR)
    log = LogConfig(transcripts=transcripts)
    async with harness(
        [], asr=asr, tts=tts, scripts_dir=ROOT / "prompts", default="bank", log=log
    ) as h:
        await bank_call(h)
    return [r for r in caplog.records if r.name.startswith("voicebot")]


def leaks(records: list[logging.LogRecord], minimum: int = logging.INFO) -> list[str]:
    """Messages at ``minimum`` or above that show the account number or a key."""
    return [
        r.getMessage()
        for r in records
        if r.levelno >= minimum and any(p.search(r.getMessage()) for p in ACCOUNT_PATTERNS)
    ]


def messages(records: list[logging.LogRecord]) -> str:
    return "\n".join(r.getMessage() for r in records if r.levelno >= logging.INFO)


async def test_at_info_the_log_names_intents_slots_and_sizes_never_what_the_caller_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = await logged_bank_call(caplog, logging.INFO, transcripts=False)

    assert leaks(records) == []
    text = messages(records)
    assert CALLER_NUMBER not in text
    assert "call bank-call: from <7 digits> (PJSIP/1000-" in text
    assert "keyed <a key> in state 'main' → intent 'balance'" in text
    assert "heard <4 words, 18 chars> in state 'account' → intent 'account'" in text
    assert text.count("slot 'account' filled: <4 digits>") == 2  # said, then keyed
    assert "keyed <a key> in state 'confirm' → intent 'yes'" in text
    assert "You said" not in text and "The balance on account" not in text  # read-backs
    assert "latency:" in text  # the turn's timing line is still there


async def test_with_log_transcripts_the_words_keys_and_read_backs_are_at_info(
    caplog: pytest.LogCaptureFixture,
) -> None:
    records = await logged_bank_call(caplog, logging.INFO, transcripts=True)

    text = messages(records)
    assert f"heard {SPOKEN_ACCOUNT!r} in state 'account' → intent 'account'" in text
    assert "keyed '#6' in state 'account'" in text
    assert text.count("slot 'account' filled: '6059'") == 2
    assert "bot says 'You said 6 0 5 9. Is that right?'" in text
    # The caller's number is not what they said: at DEBUG only, even now.
    assert CALLER_NUMBER not in text


async def test_at_debug_the_words_are_logged(caplog: pytest.LogCaptureFixture) -> None:
    records = await logged_bank_call(caplog, logging.DEBUG, transcripts=False)

    assert leaks(records, minimum=logging.DEBUG)
    debug = "\n".join(r.getMessage() for r in records)
    assert f"heard {SPOKEN_ACCOUNT!r}" in debug and "'6059'" in debug
    assert "You said 6 0 5 9" in debug and CALLER_NUMBER in debug
