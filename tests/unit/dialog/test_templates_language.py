"""Template filters that speak do it in the language they are rendered in
(voicebot/dialog/templates.py with voicebot/dialog/lang)."""

from __future__ import annotations

import pytest

from voicebot.dialog.lang import ENGLISH, NEUTRAL, RUSSIAN, Language
from voicebot.dialog.templates import parse_template, render


@pytest.mark.parametrize(
    ("language", "spoken"),
    [(ENGLISH, "Код 4 2 1 7, ABC."), (RUSSIAN, "Код четыре два один семь, ABC."),
     (NEUTRAL, "Код 4 2 1 7, ABC.")],
)  # fmt: skip
def test_digits_are_spoken_in_the_rendering_language(language: Language, spoken: str) -> None:
    assert render("Код {code|digits}, {name|upper}.", {"code": "4217", "name": "abc"},
                  language) == spoken  # fmt: skip


def test_english_is_the_default() -> None:
    assert render("{code|digits}", {"code": "+7 12"}) == "plus 7, 1 2"
    assert parse_template("{code|digits}").render({"code": "#1"}, RUSSIAN) == "решётка один"
