"""Real calls in Russian through the sandbox Asterisk: the shipped Russian scripts
(prompts/ru/bank.yaml on extension 112, prompts/ru/demo.yaml on 111), heard by whisper base
multilingual and answered with RHVoice's Irina.

The caller is RHVoice's male voice Aleksandr (tests/fixtures/audio/ru/): it chooses a menu item
by voice, says four digits with 0.8 s pauses between them, answers yes. What the caller heard
is transcribed with whisper base (ru), cut at the moments the caller spoke. (Russian questions
by meaning score too close to the bar to be a steady real-call test: docs/languages.md; an
English one is tested in test_flows.py.)
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import AsteriskSandbox, RunningBot
from tests.e2e.helpers import (
    assert_all_released,
    caller_intents,
    heard_per_step,
    last_call,
)
from voicebot.dialog.lang import language_for
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.tools.sip import Pause, Play, WaitForBye, place_call, read_wav_8k

pytestmark = pytest.mark.slow
AUDIO = Path(__file__).resolve().parents[1] / "fixtures" / "audio" / "ru"
RUSSIAN = language_for("ru")
# RHVoice's Irina reads the greetings in about 6 s (bank) and 7 s (demo).
BANK_GREETING_S = 7.0
DEMO_GREETING_S = 8.0


def say(name: str) -> Play:
    return Play(read_wav_8k(AUDIO / f"{name}.wav"))


def heard(text: str) -> str:
    """Lower case Russian words, «ё» as «е», punctuation gone."""
    return " ".join(re.findall(r"\w+", text.lower().replace("ё", "е")))


def bot_lines(call: dict[str, object], state: str) -> list[str]:
    lines = call["transcript"]
    assert isinstance(lines, list)
    return [line["text"] for line in lines if line["who"] == "bot" and line.get("state") == state]


async def test_russian_bank_menu_paused_digits_and_yes(
    asterisk: AsteriskSandbox, bot: RunningBot, whisper_ru: WhisperEngine, tmp_path: Path
) -> None:
    result = await place_call(
        extension="112", workdir=tmp_path, timeout_s=120,
        steps=[Pause(BANK_GREETING_S), say("balance"), Pause(5.0),
               say("digits-4217-paused"), Pause(6.0), say("yes"), WaitForBye(timeout_s=25)],
    )  # fmt: skip
    pieces = [heard(text) for text in await heard_per_step(result, whisper_ru)]
    assert len(pieces) == 4, pieces
    greeting, account, confirm, report = pieces
    assert "банк" in greeting and "баланс" in greeting, pieces
    assert "номер" in account and "сч" in account, pieces
    assert RUSSIAN.parse_digits(confirm) == "4217", pieces
    assert "4217" in (RUSSIAN.parse_digits(report) or ""), pieces
    assert "сорок два" in report or "42" in report, pieces
    assert result.hangup_by == "remote"  # the bot said goodbye and hung up

    await assert_all_released(asterisk, bot)
    call = last_call(bot)
    assert call["script"] == "ru/bank"
    assert call["end_reason"] == "bot-hangup"
    assert caller_intents(call)[0] == "balance"
    # One turn for the four digits, pauses and all, read back in Russian words.
    assert bot_lines(call, "confirm") == ["Вы сказали четыре два один семь. Верно?"]
    assert bot_lines(call, "report")[0].startswith("Баланс на счёте четыре два один семь")


async def test_russian_demo_menu_and_goodbye(
    asterisk: AsteriskSandbox, bot: RunningBot, whisper_ru: WhisperEngine, tmp_path: Path
) -> None:
    result = await place_call(
        extension="111", workdir=tmp_path, timeout_s=120,
        steps=[Pause(DEMO_GREETING_S), say("hours"), Pause(9.0), say("goodbye"),
               WaitForBye(timeout_s=20)],
    )  # fmt: skip
    pieces = [heard(text) for text in await heard_per_step(result, whisper_ru)]
    assert len(pieces) == 3, pieces
    greeting, hours, goodbye = pieces
    assert "демо" in greeting and "часы работы" in greeting, pieces
    assert "понедельник" in hours and "пятниц" in hours, pieces
    assert "спасибо" in goodbye and "свидания" in goodbye, pieces
    assert result.hangup_by == "remote"

    await assert_all_released(asterisk, bot)
    call = last_call(bot)
    assert call["script"] == "ru/demo"
    assert caller_intents(call) == ["hours", "goodbye"], call["transcript"]
