"""The turn core and intents by meaning: words no phrase of a menu fits are handed out to be
understood (``Understand``) before the dialog hears them, with what they mean (``Understood``);
a phrase that fits, a menu that understands by phrases or a call without the model costs
nothing more."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from voicebot.call.turns import (
    Begin,
    Command,
    KeyInput,
    Note,
    PlaybackDone,
    Record,
    Speak,
    TimerFired,
    Transcribed,
    TurnInput,
    TurnPolicy,
    TurnTaken,
    TurnTaker,
    Understand,
    Understood,
    VoicePaused,
    VoiceStarted,
)
from voicebot.dialog.meaning import MeaningMatch
from voicebot.dialog.parser import parse_script

SCRIPT = parse_script(
    """
start: main
defaults:
  on_no_match: {say: "Sorry?"}
  end_of_turn: {max_silence: 1.2s}
states:
  main:
    say: "Hours or goodbye?"
    expect:
      hours: {phrases: ["opening hours"], examples: ["when do you close"], dtmf: "1", goto: hours}
      bye: {phrases: ["goodbye"], dtmf: "9", goto: bye}
      strict: {phrases: ["strict"], goto: strict}
  strict:
    say: "Goodbye?"
    understand: phrases
    expect:
      bye: {phrases: ["goodbye"], goto: bye}
  hours:
    say: "Nine to five."
    hangup: true
  bye:
    say: "Bye."
    hangup: true
""",
    "turns.yaml",
)
AUDIO = np.zeros(1600, dtype=np.int16)
WORDS = "are you open tomorrow morning"
HOURS = MeaningMatch("hours", "opening hours", 0.71, 0.2)
# The examples go with the phrases: only the comparison by meaning reads them.
MAIN_MENU = (
    ("hours", ("opening hours", "when do you close")),
    ("bye", ("goodbye",)),
    ("strict", ("strict",)),
)


def taker(*, meaning: bool = True, state: str = "main") -> TurnTaker:
    core = TurnTaker(SCRIPT, TurnPolicy(meaning=meaning))
    core.handle(Begin(0.0))
    core.handle(PlaybackDone(0.5, core.prompt))
    if state != "main":
        run(core, spoken(state, 1))
        core.handle(PlaybackDone(3.5, core.prompt))
    return core


def run(core: TurnTaker, inputs: Sequence[TurnInput]) -> list[Command]:
    out: list[Command] = []
    for item in inputs:
        out += core.handle(item)
    return out


def spoken(text: str, audio: int, at: float = 1.0) -> list[TurnInput]:
    """The caller says ``text`` and falls silent; the ceiling (1.2 s) passes if need be."""
    return [
        VoiceStarted(at),
        VoicePaused(at + 0.7, at + 0.5, AUDIO),
        Transcribed(at + 0.85, audio, text),
        TimerFired(at + 1.7, "turn", audio),
    ]


def said(commands: list[Command]) -> list[str]:
    return [t for c in commands if isinstance(c, Speak) for t in c.texts if isinstance(t, str)]


def test_words_no_phrase_fits_are_understood_before_the_dialog_hears_them() -> None:
    core = taker()
    out = run(core, spoken(WORDS, 1))
    assert [c for c in out if isinstance(c, Understand)] == [
        Understand(1, "main", WORDS, MAIN_MENU)
    ]
    # Nothing is taken, recorded or said yet; the call is not waiting for the caller.
    assert not [c for c in out if isinstance(c, TurnTaken | Record | Speak)]
    assert not core.awaiting_caller()
    assert core.handle(TimerFired(9.0, "no_input")) == []
    out = core.handle(Understood(2.75, 1, HOURS, HOURS.describe()))
    [taken] = [c for c in out if isinstance(c, TurnTaken)]
    assert (taken.text, taken.at) == (WORDS, 2.7)  # when the turn was taken
    assert Record("caller", WORDS, "main", "hours") in out
    assert Note("intent", "'hours' by meaning score 0.71 margin 0.20") in out
    assert said(out) == ["Nine to five."]


def test_no_meaning_is_a_no_match_with_the_reason_in_the_log() -> None:
    core = taker()
    [ask] = [c for c in run(core, spoken(WORDS, 1)) if isinstance(c, Understand)]
    out = core.handle(Understood(2.75, ask.token, None, "best 'hours' score 0.21 is under"))
    assert Note("no intent by meaning", "(best 'hours' score 0.21 is under)") in out
    assert Record("caller", WORDS, "main", None) in out
    assert said(out) == ["Sorry?", "Hours or goodbye?"]


@pytest.mark.parametrize(
    ("meaning", "state", "text", "intent"),
    [
        (True, "main", "the opening hours please", "hours"),  # a phrase fits
        (False, "main", WORDS, None),  # no model on this call
        (True, "strict", WORDS, None),  # understand: phrases
    ],
)
def test_otherwise_the_dialog_hears_the_words_at_once(
    meaning: bool, state: str, text: str, intent: str | None
) -> None:
    core = taker(meaning=meaning, state=state)
    out = run(core, spoken(text, 1 if state == "main" else 2, at=4.0))
    assert not [c for c in out if isinstance(c, Understand)]
    assert Record("caller", text, state, intent) in out
    notes = [c for c in out if isinstance(c, Note) and c.kind == "intent"]
    assert notes == ([Note("intent", "'hours' by phrase")] if intent else [])


def test_a_key_beats_words_being_understood_and_their_answer_is_dropped() -> None:
    core = taker()
    [ask] = [c for c in run(core, spoken(WORDS, 1)) if isinstance(c, Understand)]
    out = core.handle(KeyInput(2.72, "9"))
    assert Record("caller", "#9", "main", "bye") in out
    assert core.handle(Understood(2.75, ask.token, HOURS, "")) == []
    assert core.state_name == "bye"


def test_an_answer_to_an_older_question_is_ignored() -> None:
    core = taker()
    [ask] = [c for c in run(core, spoken(WORDS, 1)) if isinstance(c, Understand)]
    assert core.handle(Understood(2.75, ask.token + 1, HOURS, "")) == []
    assert said(core.handle(Understood(2.76, ask.token, HOURS, ""))) == ["Nine to five."]
