"""What the dialog expects the caller to say now: whether a transcript completes a menu
answer, a yes/no, digits or a number; which words leave an English answer open."""

from __future__ import annotations

import pytest

from voicebot.dialog.expectation import (
    AnswerKind,
    Completion,
    Expectation,
    ends_open,
    lacks_verb,
)

MENU = Expectation(AnswerKind.MENU, intents=(("balance", ("my balance",)), ("op", ("operator",))))


@pytest.mark.parametrize(
    ("expectation", "text", "completion"),
    [
        (MENU, "my balance", Completion.COMPLETE),
        (MENU, "I would like my balance please", Completion.COMPLETE),
        (MENU, "I would like", Completion.UNKNOWN),
        (MENU, "", Completion.UNKNOWN),
        (Expectation(AnswerKind.YES_NO), "yes please", Completion.COMPLETE),
        (Expectation(AnswerKind.YES_NO), "well", Completion.UNKNOWN),
        (Expectation(AnswerKind.DIGITS, min_length=3, max_length=3), "four", Completion.PARTIAL),
        (Expectation(AnswerKind.DIGITS, min_length=3, max_length=3), "4, 2", Completion.PARTIAL),
        (Expectation(AnswerKind.DIGITS, min_length=3, max_length=3), "4 2 1", Completion.COMPLETE),
        (Expectation(AnswerKind.DIGITS, min_length=4, max_length=4), "421", Completion.PARTIAL),
        (Expectation(AnswerKind.DIGITS, min_length=1), "421", Completion.PARTIAL),
        (Expectation(AnswerKind.DIGITS, min_length=3, max_length=3), "hello", Completion.UNKNOWN),
        (Expectation(AnswerKind.NUMBER), "one hundred", Completion.PARTIAL),
        (Expectation(AnswerKind.NUMBER), "100.", Completion.PARTIAL),
        (Expectation(AnswerKind.NUMBER), "forty two and", Completion.PARTIAL),
        (Expectation(AnswerKind.NUMBER), "120", Completion.COMPLETE),
        (Expectation(AnswerKind.NUMBER), "forty", Completion.PARTIAL),
        (Expectation(AnswerKind.NUMBER), "forty two", Completion.COMPLETE),
        (Expectation(AnswerKind.NUMBER), "125", Completion.COMPLETE),
        (Expectation(AnswerKind.NUMBER), "7", Completion.COMPLETE),
        (Expectation(AnswerKind.NUMBER), "hello", Completion.UNKNOWN),
        (Expectation(AnswerKind.TEXT), "my card is lost", Completion.UNKNOWN),
    ],
)
def test_what_completes_an_answer(
    expectation: Expectation, text: str, completion: Completion
) -> None:
    assert expectation.completion(text) is completion


# -- open endings and verbs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "open_"),
    [("I would like", True), ("I'd like.", True), ("speak to", True), ("my card and", True),
     ("um", True), ("", False), ("my balance", False), ("I lost my card", False),
     ("I would like that", False), ("no thanks", False)],
)  # fmt: skip
def test_which_endings_need_more(text: str, open_: bool) -> None:
    assert ends_open(text) is open_


@pytest.mark.parametrize(
    ("text", "lacking"),
    [("my parcel", True), ("The person at extension", True), ("I", True),
     ("my parcel did not arrive", False), ("I lost my card", False), ("It broke", False),
     ("please try again", False), ("my card was charged", False), ("You have two", False),
     ("it's gone", False), ("", False)],
)  # fmt: skip
def test_which_words_hold_a_verb(text: str, lacking: bool) -> None:
    assert lacks_verb(text, "en") is lacking


def test_only_english_is_checked_for_a_verb() -> None:
    assert lacks_verb("my parcel", "en-GB") is True
    assert lacks_verb("택배", "ko") is False
    assert lacks_verb("mein Paket", "de") is False
