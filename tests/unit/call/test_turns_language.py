"""The turn-taking core reads the caller's words in the script's language: which words need
more, which free text has no verb yet, which numbers may go on (voicebot/call/turns.py with
voicebot/dialog/lang)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from voicebot.call.turns import (
    Begin,
    Command,
    JudgeTurn,
    PlaybackDone,
    StartTimer,
    TimerFired,
    Transcribed,
    TurnInput,
    TurnJudged,
    TurnPolicy,
    TurnTaken,
    TurnTaker,
    VoicePaused,
    VoiceStarted,
)
from voicebot.dialog.engine import enter
from voicebot.dialog.parser import parse_script

SCRIPT = """
name: turns
language: {language}
start: note
defaults:
  end_of_turn: {{silence: 600ms, max_silence: 1.2s, digit_timeout: 2s}}
states:
  note:
    say: "Что случилось?"
    collect: {{slot: note, type: text, goto: count}}
  count:
    say: "Сколько?"
    collect: {{slot: n, type: number, goto: bye}}
  bye:
    say: "До свидания."
    hangup: true
"""
AUDIO = np.zeros(1600, dtype=np.int16)


def taker(language: str, state: str = "note") -> TurnTaker:
    """A core with a turn model that has entered ``state`` and played its prompt out."""
    script = parse_script(SCRIPT.format(language=language), "turns.yaml")
    core = TurnTaker(script, TurnPolicy(turn_model=True))
    core.handle(Begin(0.0))
    if state != "note":
        core.dialog, actions = enter(script, state)
        core._apply(actions, 0.0, queued=False)
    core.handle(PlaybackDone(0.5, core.prompt))
    return core


def run(core: TurnTaker, inputs: Sequence[TurnInput]) -> list[Command]:
    out: list[Command] = []
    for item in inputs:
        out += core.handle(item)
    return out


def turn(text: str) -> list[TurnInput]:
    """The caller speaks from 1.0 s to 2.0 s, falls silent, ``text`` is decoded, and the turn
    model is sure the turn is over."""
    return [VoiceStarted(1.0), VoicePaused(2.2, 2.0, AUDIO), Transcribed(2.35, 1, text),
            TurnJudged(2.5, 1, 0.99)]  # fmt: skip


def taken(out: list[Command]) -> list[float]:
    return [c.at for c in out if isinstance(c, TurnTaken)]


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("ru", "я хотел бы"),  # stops on a word that needs more
        ("ru", "соедините с"),
        ("ru-RU", "мне нужно"),
        ("ru", "моя посылка"),  # no verb yet
        ("ru", "номер договора"),
        ("en", "I would like to"),
        ("en", "my parcel"),
    ],
)
def test_words_that_cannot_be_a_whole_answer_wait_the_ceiling(language: str, text: str) -> None:
    core = taker(language)
    out = run(core, turn(text))
    assert taken(out) == []  # the sure verdict is not enough
    out = run(core, [TimerFired(3.2, "turn", 1)])  # max_silence after the voice ended
    assert taken(out) == [3.2]


@pytest.mark.parametrize(
    ("language", "text"),
    [
        ("ru", "моя посылка не пришла"),
        ("ru", "я потерял карту"),
        ("ru", "I would like to"),  # English words are no hint in a Russian script
        ("de", "ich möchte"),  # nor any words in a language without a module
        ("de", "mein Paket"),
        ("en", "my parcel did not arrive"),
    ],
)
def test_words_that_may_be_whole_are_taken_on_the_verdict(language: str, text: str) -> None:
    core = taker(language)
    out = run(core, turn(text))
    assert taken(out) == [2.5]


@pytest.mark.parametrize(
    ("text", "judged", "waits"),
    [("сорок два", False, False), ("двести", False, True), ("две тысячи", False, True),
     ("около дюжины", True, False)],
)  # fmt: skip
def test_a_russian_number_is_judged_only_when_its_words_cannot_tell(
    text: str, judged: bool, waits: bool
) -> None:
    core = taker("ru", "count")
    out = run(core, [VoiceStarted(1.0), VoicePaused(2.2, 2.0, AUDIO), Transcribed(2.35, 1, text)])
    assert bool([c for c in out if isinstance(c, JudgeTurn)]) is judged
    if waits:  # a round number may go on: the ceiling, no verdict asked
        assert taken(out) == []
        assert [c.at for c in out if isinstance(c, StartTimer)][-1] == pytest.approx(3.2)
    elif not judged:
        assert taken(out) == [2.35]
