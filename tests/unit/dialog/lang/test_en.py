"""English through its Language object (voicebot/dialog/lang/en.py): the same answers as the
functions the rest of the tests know (tests/unit/dialog/test_numbers.py, test_match.py,
test_expectation.py), reached the way a script's dialog reaches them."""

from __future__ import annotations

import pytest

from voicebot.dialog import numbers
from voicebot.dialog.lang import ENGLISH
from voicebot.dialog.match import best_match


def test_numbers_py_is_english() -> None:
    assert numbers.parse_digits is ENGLISH.parse_digits
    assert numbers.parse_number is ENGLISH.parse_number
    assert numbers.parse_yes_no is ENGLISH.parse_yes_no
    assert numbers.speak_digits is ENGLISH.speak_digits


@pytest.mark.parametrize(
    ("text", "digits", "number"),
    [
        ("four two one seven", "4217", 4217),
        ("for two one seven", "4217", 4217),
        ("4, 2, 1, 7", "4217", 4217),
        ("forty two", "42", 42),
        ("two hundred and five", "205", 205),
        ("one hundred twenty", "120", 120),
        ("three thousand two hundred", "3200", 3200),
        ("double five", "55", 55),
        ("a table for two", "2", 2),
        ("сорок два", None, None),  # Russian words are not English numbers
        ("", None, None),
    ],
)
def test_digits_and_numbers(text: str, digits: str | None, number: int | None) -> None:
    assert ENGLISH.parse_digits(text) == digits
    assert ENGLISH.parse_number(text) == number


@pytest.mark.parametrize(
    ("text", "answer"),
    [("yes", True), ("yeah sure", True), ("that's not right", False), ("nope", False),
     ("I don't know", None), ("да", None)],
)  # fmt: skip
def test_yes_no(text: str, answer: bool | None) -> None:
    assert ENGLISH.parse_yes_no(text) is answer


def test_speak_digits_and_yes_no_phrases() -> None:
    assert ENGLISH.speak_digits("4217") == "4 2 1 7"
    assert ENGLISH.speak_digits("+1 555-0100#") == "plus 1, 5 5 5, 0 1 0 0 pound"
    assert ENGLISH.yes_no_phrases == ("yes", "no")


def test_normalize_and_fillers() -> None:
    words = ["yes", "i'd", "like", "my", "balance"]
    assert ENGLISH.normalize("Yeah, I'd like my balance!") == words
    assert {"um", "please", "i'd", "would"} <= ENGLISH.filler_words
    intents = [("balance", ["balance"]), ("agent", ["speak to an agent"])]
    # English is best_match's default, and the same when named.
    for match in (best_match("um my balance please", intents),
                  best_match("um my balance please", intents, language=ENGLISH)):  # fmt: skip
        assert match is not None and match.intent == "balance"


@pytest.mark.parametrize(
    ("text", "open_", "lacking"),
    [("I would like", True, False), ("speak to", True, True), ("my card and", True, True),
     ("my parcel", False, True), ("I lost my card", False, False),
     ("please try again", False, False), ("соедините с", False, True), ("", False, False)],
)  # fmt: skip
def test_ends_open_and_lacks_verb(text: str, open_: bool, lacking: bool) -> None:
    assert ENGLISH.ends_open(text) is open_
    assert ENGLISH.lacks_verb(text) is lacking


def test_words_that_keep_a_number_going() -> None:
    assert ENGLISH.number_continuing == {"and", "hundred", "thousand", "million"}
