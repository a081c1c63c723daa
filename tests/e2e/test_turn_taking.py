"""Turn-taking on real calls: sipp speaks the labelled turns of tests/fixtures/turns/ to a bot
through the sandbox Asterisk (extensions 3XX, ARI app voicebot-turns).

Structural assertions only: what the bot understood, that nobody was cut off, that a prompt
survived a cough. How fast is for scripts/bench-endpointing.py to print.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.e2e.conftest import AsteriskSandbox, RunningBot, bot_environment, run_bot
from tests.e2e.helpers import assert_all_released, last_call, words
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.tools.callprobe import transcribe_received, voice_to_voice_ms
from voicebot.tools.sip import CallResult, Hangup, Pause, Play, WaitForBye, place_call, read_wav_8k
from voicebot.tools.takes import take
from voicebot.tools.turnbench import BREATH_S

pytestmark = pytest.mark.slow

TURNS = Path(__file__).resolve().parents[1] / "fixtures" / "turns"
LABELS = {entry["file"]: entry for entry in json.loads((TURNS / "labels.json").read_text())}
TURNS_HTTP_PORT = 18091
# The short greetings of 311-316 ("Which service?") are over by then.
GREETING_S = 2.0
# 317's greeting is ~10 s long; the caller speaks over it this far in.
TALK_OVER_AT_S = 2.0


@pytest.fixture(scope="module")
def turns_bot(
    asterisk: AsteriskSandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningBot]:
    workdir = tmp_path_factory.mktemp("turns-bot")
    env = bot_environment(
        asterisk,
        VOICEBOT_ARI_APP="voicebot-turns",
        VOICEBOT_DIALOG_SCRIPTS_DIR=str(TURNS / "scripts"),
        VOICEBOT_DIALOG_DEFAULT_SCRIPT="311",
        VOICEBOT_HTTP_PORT=str(TURNS_HTTP_PORT),
        VOICEBOT_MEDIA_PORT_MIN="42200",
        VOICEBOT_MEDIA_PORT_MAX="42299",
    )
    yield from run_bot(env, workdir / "voicebot.log", TURNS_HTTP_PORT)


def turn_audio(name: str) -> np.ndarray:
    return read_wav_8k(TURNS / name)


def lines(call: dict[str, Any], who: str) -> list[dict[str, Any]]:
    return [line for line in call["transcript"] if line["who"] == who]


async def finished_call(sandbox: AsteriskSandbox, bot: RunningBot) -> dict[str, Any]:
    """The bot's record of its last call, once everything of it is released."""
    await assert_all_released(sandbox, bot)
    return last_call(bot)


async def answer(
    sandbox: AsteriskSandbox, bot: RunningBot, extension: str, name: str, tmp_path: Path
) -> tuple[CallResult, dict[str, Any]]:
    pcm = turn_audio(name)
    result = await place_call(
        extension=extension, workdir=tmp_path, timeout_s=60,
        steps=[Pause(GREETING_S), Play(pcm), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    assert result.hangup_by == "remote", "the bot should have answered and hung up"
    return result, await finished_call(sandbox, bot)


@pytest.mark.parametrize(
    ("name", "intent"),
    [("menu-pause500-balance.wav", "balance"), ("menu-pause500-operator.wav", "operator")],
)
async def test_a_menu_answer_with_a_half_second_pause_is_not_cut_off(
    asterisk: AsteriskSandbox, turns_bot: RunningBot, tmp_path: Path, name: str, intent: str
) -> None:
    assert LABELS[name]["pauses_s"], "the fixture has a pause inside"
    result, call = await answer(asterisk, turns_bot, "311", name, tmp_path)
    # One caller turn, the whole answer, routed right; no "Sorry, I didn't get that."
    assert [line.get("intent") for line in lines(call, "caller")] == [intent]
    assert not any("sorry" in line["text"].lower() for line in lines(call, "bot"))
    assert f"You chose {intent}." in [line["text"] for line in lines(call, "bot")]
    print(f"{name}: voice to voice {voice_to_voice_ms(result, 0, turn_audio(name))} ms")


@pytest.mark.parametrize(
    ("extension", "name", "digits"),
    [("313", "digits-pause700-421.wav", "4 2 1"), ("314", "digits-pause700-4217.wav", "4 2 1 7")],
)
async def test_digits_spoken_with_pauses_fill_the_slot_in_one_go(
    asterisk: AsteriskSandbox,
    turns_bot: RunningBot,
    tmp_path: Path,
    extension: str,
    name: str,
    digits: str,
) -> None:
    assert len(LABELS[name]["pauses_s"]) == len(digits.split()) - 1
    _, call = await answer(asterisk, turns_bot, extension, name, tmp_path)
    assert [line.get("intent") for line in lines(call, "caller")] == ["code"]
    assert [line["text"] for line in lines(call, "bot")][-1] == f"You said {digits}."


async def test_a_cough_over_a_prompt_pauses_it_and_it_goes_on(
    asterisk: AsteriskSandbox, turns_bot: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    cough = turn_audio("noise-cough.wav")
    result = await place_call(
        extension="317", workdir=tmp_path, timeout_s=60,
        steps=[Pause(TALK_OVER_AT_S), Play(cough), Pause(11.0), Hangup()],
    )  # fmt: skip
    call = await finished_call(asterisk, turns_bot)
    assert lines(call, "caller") == []  # the cough was no turn
    assert not any("sorry" in line["text"].lower() for line in lines(call, "bot"))
    heard = " ".join(words(s.text) for s in await transcribe_received(result, whisper))
    # The greeting went on to its end after the cough ("... and I will stop talking").
    assert "stop talking" in heard, heard


async def test_real_speech_over_a_prompt_stops_it_and_is_answered(
    asterisk: AsteriskSandbox, turns_bot: RunningBot, whisper: WhisperEngine, tmp_path: Path
) -> None:
    speech = turn_audio("barge-hours-allison.wav")
    result = await place_call(
        extension="317", workdir=tmp_path, timeout_s=60,
        steps=[Pause(TALK_OVER_AT_S), Play(speech), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    call = await finished_call(asterisk, turns_bot)
    assert [line.get("intent") for line in lines(call, "caller")] == ["hours"]
    segments = [words(s.text) for s in await transcribe_received(result, whisper)]
    assert "stop talking" not in segments[0]  # cut before its end
    # The answer followed, after the stopped greeting. (Whisper on the phone's audio has
    # written "he chose ours" for Piper's "You chose hours.": only the verb is checked.)
    assert len(segments) >= 2 and "chose" in segments[-1].split()
    assert [line["text"] for line in lines(call, "bot")][-1] == "You chose hours."


# -- issue 21: carrier phrases with a pause, and other voices in the caller's room ------------

# Each is played as two seeded takes (voicebot/tools/takes.py: another lead, gain, line noise
# and dither): a turn that is right only on one of them is handled by luck.
SEEDS = (1, 2)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    ("name", "intent"),
    [
        ("menu-pause700-extension.wav", "extension"),  # "I would like … an extension"
        ("menu-carrier800-can-i-get-extension.wav", "extension"),
        ("menu-carrier500-um-the-extension.wav", "extension"),
    ],
)
async def test_a_carrier_phrase_a_pause_and_the_menu_word_is_routed_right(
    asterisk: AsteriskSandbox,
    turns_bot: RunningBot,
    tmp_path: Path,
    name: str,
    intent: str,
    seed: int,
) -> None:
    (pause,) = LABELS[name]["pauses_s"]
    assert 0.5 <= pause[1] - pause[0] <= 0.8, "a pause of 0.5-0.8 s inside"
    played = take(turn_audio(name), seed)
    await place_call(
        extension="311", workdir=tmp_path, timeout_s=60,
        steps=[Pause(GREETING_S), Play(played.pcm), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    call = await finished_call(asterisk, turns_bot)
    assert [line.get("intent") for line in lines(call, "caller")] == [intent], call["transcript"]
    assert not any("sorry" in line["text"].lower() for line in lines(call, "bot"))


# 318's greeting ("Welcome to the background test. Which service ... or extension?") is over
# by this long after the answer; the caller answers after it.
BACKGROUND_GREETING_END_S = 6.8
# Piper's audio of that greeting, trailing quiet included (6.32 s), less some slack: Piper's
# length can move by a frame or two between CPUs.
BACKGROUND_GREETING_AUDIO_S = 6.1


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "name",
    [
        "background16-extension-allison.wav",
        "background16-balance-en-gb.wav",
        # tiny.en hears "Take the return." for take 2: the answer's forced fit must take it.
        "background16-operator-en-gb.wav",
    ],
)
async def test_talk_16_db_behind_the_caller_neither_stops_the_greeting_nor_routes_the_call(
    asterisk: AsteriskSandbox,
    turns_bot: RunningBot,
    tmp_path: Path,
    name: str,
    seed: int,
) -> None:
    label = LABELS[name]
    played = take(turn_audio(name), seed)
    caller_at = played.lead_s + label["speech_start_s"]
    # The room starts talking during the greeting; the caller answers after it.
    wait = BACKGROUND_GREETING_END_S - caller_at
    assert 0.5 < wait < BACKGROUND_GREETING_END_S - 1.0, "the background must start mid-greeting"
    result = await place_call(
        extension="318", workdir=tmp_path, timeout_s=60,
        steps=[Pause(wait), Play(played.pcm), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    call = await finished_call(asterisk, turns_bot)
    # Routed by the caller's own answer, in one turn, with no "Sorry".
    assert [line.get("intent") for line in lines(call, "caller")] == [label["answer"]], call[
        "transcript"
    ]
    assert not any("sorry" in line["text"].lower() for line in lines(call, "bot"))
    # The whole greeting was heard: no gap of more than a breath in it before the caller spoke.
    sent = result.sent_start_time[0]
    assert sent is not None
    onset = sent + caller_at
    greeting = sorted(p.arrival_time for p in result.received_packets if p.arrival_time < onset)
    gaps = np.diff(greeting)
    assert gaps.size and gaps.max() <= BREATH_S, f"the greeting paused {gaps.max():.2f} s"
    # ... and went on to its end. (Whisper's text of it is no test of that: on another CPU it
    # wrote "... operator or exit" for "... operator or extension?".)
    greeting_s = greeting[-1] - greeting[0]
    assert greeting_s >= BACKGROUND_GREETING_AUDIO_S, (
        f"the greeting stopped after {greeting_s:.2f} s"
    )
