"""What completes an answer is read in the script's language: an Expectation carries it
(voicebot/dialog/expectation.py with voicebot/dialog/lang)."""

from __future__ import annotations

import pytest

from voicebot.dialog.expectation import (
    AnswerKind,
    Completion,
    Expectation,
    ends_open,
    lacks_verb,
)
from voicebot.dialog.lang import ENGLISH, NEUTRAL, RUSSIAN

RU_MENU = Expectation(
    AnswerKind.MENU, intents=(("hours", ("часы работы",)), ("op", ("оператор",))), language=RUSSIAN
)


@pytest.mark.parametrize(
    ("expectation", "text", "completion"),
    [
        (RU_MENU, "Я бы хотел узнать часы работы", Completion.COMPLETE),
        (RU_MENU, "оператора, пожалуйста", Completion.COMPLETE),
        (RU_MENU, "я бы хотел", Completion.UNKNOWN),
        (Expectation(AnswerKind.YES_NO, language=RUSSIAN), "да", Completion.COMPLETE),
        (Expectation(AnswerKind.YES_NO, language=RUSSIAN), "Угу.", Completion.COMPLETE),
        (Expectation(AnswerKind.YES_NO, language=RUSSIAN), "не надо", Completion.COMPLETE),
        (Expectation(AnswerKind.YES_NO, language=RUSSIAN), "не знаю", Completion.UNKNOWN),
        (Expectation(AnswerKind.YES_NO, language=RUSSIAN), "yes", Completion.UNKNOWN),
        (Expectation(AnswerKind.DIGITS, min_length=3, max_length=3, language=RUSSIAN),
         "четыре два", Completion.PARTIAL),
        (Expectation(AnswerKind.DIGITS, min_length=3, max_length=3, language=RUSSIAN),
         "четыре два один", Completion.COMPLETE),
        (Expectation(AnswerKind.DIGITS, min_length=3, max_length=3, language=RUSSIAN),
         "4, 2, 1", Completion.COMPLETE),
        (Expectation(AnswerKind.NUMBER, language=RUSSIAN), "сорок", Completion.PARTIAL),
        (Expectation(AnswerKind.NUMBER, language=RUSSIAN), "сто", Completion.PARTIAL),
        (Expectation(AnswerKind.NUMBER, language=RUSSIAN), "двести", Completion.PARTIAL),
        (Expectation(AnswerKind.NUMBER, language=RUSSIAN), "тысяча", Completion.PARTIAL),
        (Expectation(AnswerKind.NUMBER, language=RUSSIAN), "две тысячи", Completion.PARTIAL),
        (Expectation(AnswerKind.NUMBER, language=RUSSIAN), "три тысячи пять", Completion.COMPLETE),
        (Expectation(AnswerKind.NUMBER, language=RUSSIAN), "сорок два", Completion.COMPLETE),
        (Expectation(AnswerKind.NUMBER, language=RUSSIAN), "двести пять", Completion.COMPLETE),
        (Expectation(AnswerKind.NUMBER, language=RUSSIAN), "привет", Completion.UNKNOWN),
        (Expectation(AnswerKind.YES_NO, language=NEUTRAL), "yes", Completion.UNKNOWN),
        (Expectation(AnswerKind.NUMBER, language=NEUTRAL), "42", Completion.COMPLETE),
    ],
)  # fmt: skip
def test_what_completes_an_answer_in_its_language(
    expectation: Expectation, text: str, completion: Completion
) -> None:
    assert expectation.completion(text) is completion


def test_english_is_the_default() -> None:
    assert Expectation(AnswerKind.YES_NO).language is ENGLISH
    assert Expectation(AnswerKind.YES_NO).completion("да") is Completion.UNKNOWN


@pytest.mark.parametrize(
    ("text", "language", "open_", "lacking"),
    [
        ("соедините с", "ru", True, False),
        ("моя посылка", "ru-RU", False, True),
        ("моя посылка не пришла", "ru", False, False),
        ("I would like", "ru", False, False),  # English words mean nothing to a Russian script
        ("I would like", "en", True, False),
        ("my parcel", "en-US", False, True),
        ("I would like", "de", False, False),  # no module: no hints
    ],
)
def test_ends_open_and_lacks_verb_by_language_code(
    text: str, language: str, open_: bool, lacking: bool
) -> None:
    assert ends_open(text, language) is open_
    assert lacks_verb(text, language) is lacking
