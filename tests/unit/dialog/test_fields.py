"""Typed values of a script file: durations."""

from __future__ import annotations

import pytest

from voicebot.dialog.fields import parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5.0), ("1500ms", 1.5), ("0.5m", 30.0), (3, 3.0)]
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds
