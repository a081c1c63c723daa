"""Typed values of a script file: durations, and the limits a call can live with."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.dialog.fields import parse_duration
from voicebot.dialog.parser import load_script
from voicebot.errors import ScriptError


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5.0), ("1500ms", 1.5), ("0.5m", 30.0), (3, 3.0)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (float("inf"), "must be a positive number of seconds"),  # YAML .inf
        (float("nan"), "must be a positive number of seconds"),  # YAML .nan
        (0, "must be a positive number of seconds"),
        ("0ms", "must be a positive number of seconds"),
        (3601, r"at most 3600 s \(one hour\)"),
        ("61m", r"at most 3600 s \(one hour\)"),
        (True, "bad duration True"),
    ],
)
def test_durations_a_call_cannot_use_are_refused(value: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_duration(value)


def test_an_infinite_timeout_is_a_check_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(
        "start: a\ndefaults:\n  no_input_timeout: .inf\nstates:\n  a:\n    hangup: true\n"
    )
    with pytest.raises(ScriptError, match=r"s\.yaml:3: defaults\.no_input_timeout: bad duration"):
        load_script(path)


def test_a_lone_surrogate_in_a_text_is_a_check_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text('start: a\nstates:\n  a:\n    say: "Hello \\ud800 there."\n    hangup: true\n')
    with pytest.raises(ScriptError, match=r"s\.yaml:4: states\.a\.say: a lone surrogate"):
        load_script(path)
