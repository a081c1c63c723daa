"""The engine and intents by meaning: a meaning found by the call layer is taken where no
phrase fits, for a menu that understands by meaning, and only for one of its intents."""

from __future__ import annotations

import pytest

from voicebot.dialog.engine import Action, DialogState, Heard, Recognized, Say, step
from voicebot.dialog.meaning import MeaningMatch
from voicebot.dialog.parser import parse_script

SCRIPT = parse_script(
    """
start: main
states:
  main:
    say: "Hours or goodbye?"
    expect:
      hours: {phrases: ["hours", "when are you open"], goto: hours}
      bye: {phrases: ["goodbye"], goto: bye}
  strict:
    say: "Goodbye?"
    understand: phrases
    expect:
      bye: {phrases: ["goodbye"], goto: bye}
  hours:
    say: "Nine to five."
    goto: strict
  bye:
    say: "Bye."
    hangup: true
""",
    "m.yaml",
)
HOURS = MeaningMatch("hours", "when are you open", 0.71, 0.2)


def heard(state: str, text: str, meaning: MeaningMatch | None) -> list[Action]:
    _, actions = step(SCRIPT, DialogState(current=state), Heard(text, meaning))
    return actions


def test_a_meaning_is_taken_where_no_phrase_fits() -> None:
    actions = heard("main", "are you open tomorrow morning", HOURS)
    assert actions[0] == Recognized("main", "hours", "are you open tomorrow morning", HOURS)
    assert Say("Nine to five.") in actions


def test_a_phrase_that_fits_comes_first_and_is_recognized_by_phrase() -> None:
    bye = MeaningMatch("bye", "goodbye", 0.6, 0.3)
    actions = heard("main", "opening hours please", bye)
    assert actions[0] == Recognized("main", "hours", "opening hours please")


@pytest.mark.parametrize(
    ("state", "meaning"),
    [
        ("main", None),  # nothing meant: no-match, as without meaning
        ("strict", MeaningMatch("bye", "goodbye", 0.9, 0.9)),  # understand: phrases
        ("main", MeaningMatch("address", "where", 0.9, 0.9)),  # not an intent of the state
    ],
)
def test_otherwise_it_is_a_no_match(state: str, meaning: MeaningMatch | None) -> None:
    actions = heard(state, "something else entirely", meaning)
    assert actions[0] == Recognized(state, None, "something else entirely")
    assert Say("Sorry, I didn't get that.") in actions
