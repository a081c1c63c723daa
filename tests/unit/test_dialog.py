"""Dialog scripts: loading, validation messages with file:line, and the pure engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.dialog.engine import (
    CallStarted,
    DialogEngine,
    Hangup,
    Heard,
    KeyPressed,
    Listen,
    NoInput,
    Recognized,
    Say,
)
from voicebot.dialog.match import best_match, phrase_score
from voicebot.dialog.script import ScriptLibrary, load_script, parse_duration
from voicebot.errors import ScriptError

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "prompts" / "demo.yaml"


def says(actions: list) -> list[str]:
    return [a.text for a in actions if isinstance(a, Say)]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    return path


def test_demo_script_greets_and_listens() -> None:
    engine = DialogEngine(load_script(DEMO))
    actions = engine.handle(CallStarted())
    assert "voicebot demo" in says(actions)[0]
    assert isinstance(actions[-1], Listen)
    assert "hours" in actions[-1].phrases


def test_demo_spoken_choice_goes_to_branch_then_goodbye_hangs_up() -> None:
    engine = DialogEngine(load_script(DEMO))
    engine.handle(CallStarted())
    actions = engine.handle(Heard("Hours."))
    assert actions[0] == Recognized("main", "hours", "Hours.")
    assert "Monday to Friday" in says(actions)[0]
    actions = engine.handle(Heard("goodbye"))
    assert says(actions) == ["Thank you for calling. Goodbye!"]
    assert isinstance(actions[-1], Hangup)
    assert engine.ended
    assert engine.handle(Heard("hello?")) == []


def test_no_input_reprompts_then_escapes_after_max_retries() -> None:
    engine = DialogEngine(load_script(DEMO))
    greeting = says(engine.handle(CallStarted()))[0]
    first = engine.handle(NoInput())
    assert says(first) == ["Sorry, I didn't hear anything.", greeting]
    second = engine.handle(NoInput())
    assert says(second) == ["Sorry, I didn't hear anything.", greeting]
    third = engine.handle(NoInput())  # max_retries: 2 → on_max_retries: goto goodbye
    assert says(third) == ["Thank you for calling. Goodbye!"]
    assert isinstance(third[-1], Hangup)


def test_no_match_and_no_input_share_the_retry_count() -> None:
    engine = DialogEngine(load_script(DEMO))
    engine.handle(CallStarted())
    assert says(engine.handle(Heard("pizza")))[0] == "Sorry, I didn't get that."
    engine.handle(NoInput())
    assert isinstance(engine.handle(Heard("pizza"))[-1], Hangup)


def test_retries_reset_when_the_state_changes() -> None:
    engine = DialogEngine(load_script(DEMO))
    engine.handle(CallStarted())
    engine.handle(NoInput())
    engine.handle(NoInput())
    engine.handle(Heard("address"))
    assert engine.state is not None and engine.state.retries == 0


def test_dtmf_selects_an_intent(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
start: menu
states:
  menu:
    say: "Press 1 for sales."
    expect:
      sales: {phrases: ["sales"], dtmf: "1", goto: bye}
  bye:
    say: Bye.
    hangup: true
""",
    )
    engine = DialogEngine(load_script(path))
    engine.handle(CallStarted())
    actions = engine.handle(KeyPressed("1"))
    assert says(actions) == ["Bye."] and isinstance(actions[-1], Hangup)


def test_match_tolerates_case_punctuation_fillers_and_asr_slips() -> None:
    assert phrase_score("telephone number", "Caliphone number.") >= 0.8
    assert phrase_score("hours", "Um, the HOURS please!") == 1.0
    assert phrase_score("hours", "our") < 0.8
    intents = [("short", ["account"]), ("long", ["check my account"])]
    match = best_match("I want to check my account", intents)
    assert match is not None and match.intent == "long"
    assert best_match("pizza", intents) is None


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5.0), ("1500ms", 1.5), ("0.5m", 30.0), (3, 3.0)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


BROKEN = {
    "unknown goto": (
        """start: a
states:
  a:
    say: hi
    goto: b
""",
        "s.yaml:5: states.a.goto: unknown state 'b'",
    ),
    "dead end": (
        """start: a
states:
  a:
    say: hi
""",
        "s.yaml:3: states.a: has no next step",
    ),
    "unknown key": (
        """start: a
states:
  a:
    sya: hi
    hangup: true
""",
        "s.yaml:4: states.a.sya: unknown key 'sya'",
    ),
    "unreachable": (
        """start: a
states:
  a:
    hangup: true
  b:
    hangup: true
""",
        "s.yaml:5: states.b: state 'b' is unreachable from 'a'",
    ),
    "bad duration": (
        """start: a
defaults:
  no_input_timeout: soon
states:
  a:
    hangup: true
""",
        "s.yaml:3: defaults.no_input_timeout: bad duration 'soon'",
    ),
    "missing start": (
        """states:
  a:
    hangup: true
""",
        "s.yaml:1: missing 'start'",
    ),
    "bad yaml": ("start: [a\n", "s.yaml:2: invalid YAML"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_scripts_name_file_line_and_key(tmp_path: Path, case: str) -> None:
    text, expected = BROKEN[case]
    with pytest.raises(ScriptError) as info:
        load_script(write(tmp_path, text))
    assert str(info.value).replace(str(tmp_path) + "/", "").startswith(expected)


def test_library_picks_named_script_and_rejects_unknown_names() -> None:
    library = ScriptLibrary(ROOT / "prompts", "demo")
    assert library.get(None).name == "Voicebot demo"
    assert library.get("demo") is library.get(None)
    with pytest.raises(ScriptError, match="no script named 'nope'"):
        library.get("nope")
