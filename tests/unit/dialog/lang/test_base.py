"""Choosing a language's tables by code, and the neutral fallback for languages without a
module (voicebot/dialog/lang/__init__.py and base.py)."""

from __future__ import annotations

import pytest

from voicebot.dialog.lang import ENGLISH, LANGUAGES, NEUTRAL, RUSSIAN, Language, language_for
from voicebot.dialog.lang.base import ascii_digits, spell_out, split_numeral, split_words


@pytest.mark.parametrize(
    ("code", "language"),
    [("en", ENGLISH), ("en-US", ENGLISH), ("en_GB", ENGLISH), ("EN", ENGLISH),
     ("ru", RUSSIAN), ("ru-RU", RUSSIAN), ("ru_RU", RUSSIAN), (" RU ", RUSSIAN),
     ("de", NEUTRAL), ("ko", NEUTRAL), ("uk-UA", NEUTRAL), ("", NEUTRAL),
     ("english", NEUTRAL)],
)  # fmt: skip
def test_language_for(code: str, language: Language) -> None:
    assert language_for(code) is language


def test_every_language_has_its_own_code_and_the_recognizer_phrases_of_its_yes_no() -> None:
    assert {code: lang.code for code, lang in LANGUAGES.items()} == {"en": "en", "ru": "ru"}
    for language in LANGUAGES.values():
        yes, no = language.yes_no_phrases
        assert language.parse_yes_no(yes) is True and language.parse_yes_no(no) is False
    assert repr(RUSSIAN) == "Language('ru')"


# -- the neutral fallback: numerals only, no words ------------------------------------------


@pytest.mark.parametrize(
    ("text", "digits", "number"),
    [
        ("4217", "4217", 4217),
        ("4, 2, 1, 7", "4217", 4217),
        ("meine Nummer ist 4217.", "4217", 4217),
        ("2,500", "2500", 2500),
        ("4 2 Hunde 5", "425", 42),  # the first run of numerals is the number
        ("٤٢", "42", 42),  # any script's decimal digits
        ("2.5", "25", None),  # not whole
        ("vier zwei", None, None),  # words of no known language
        ("", None, None),
    ],
)
def test_neutral_reads_numerals(text: str, digits: str | None, number: int | None) -> None:
    assert NEUTRAL.parse_digits(text) == digits
    assert NEUTRAL.parse_number(text) == number


@pytest.mark.parametrize("text", ["yes", "ja", "да", "no", "nein", ""])
def test_neutral_knows_no_yes_or_no(text: str) -> None:
    assert NEUTRAL.parse_yes_no(text) is None


def test_neutral_has_no_word_hints() -> None:
    assert NEUTRAL.filler_words == frozenset() and NEUTRAL.number_continuing == frozenset()
    assert NEUTRAL.yes_no_phrases == ()
    for text in ["I would like", "ich möchte", "my parcel", "mein Paket", "택배"]:
        assert NEUTRAL.ends_open(text) is False
        assert NEUTRAL.lacks_verb(text) is False
    assert NEUTRAL.normalize("Yeah, Straße!") == ["yeah", "straße"]
    # Numerals and symbols as they are: the synthesizer reads them in its own language.
    assert NEUTRAL.speak_digits("+49 (30) 1234#") == "+ 4 9, 3 0, 1 2 3 4 #"


# -- shared helpers -------------------------------------------------------------------------


def test_helpers() -> None:
    assert split_words("Всё, OK?", {"ok": "okay"}, str.maketrans({"ё": "е"})) == ["все", "okay"]
    assert split_numeral("2,500") == ["2500"]
    assert split_numeral("4,2,1,7") == ["4", "2", "1", "7"]
    assert split_numeral("2.5") == ["2.5"]
    assert ascii_digits("a١b2") == "12"
    assert spell_out("ab-1", lambda d: f"<{d}>", {}) == "A B, <1>"
