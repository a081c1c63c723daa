"""The engine reads and speaks in the script's language: menus, yes/no, digits and numbers
by its words, `{x|digits}` spoken in it, the recognizer told its yes/no words
(voicebot/dialog/engine.py with voicebot/dialog/lang)."""

from __future__ import annotations

import pytest

from voicebot.dialog.engine import (
    CallStarted,
    DialogEngine,
    Heard,
    KeyPressed,
    Listen,
    Recognized,
    Say,
    SlotFilled,
)
from voicebot.dialog.expectation import AnswerKind, Expectation
from voicebot.dialog.lang import NEUTRAL, RUSSIAN
from voicebot.dialog.parser import parse_script

SCRIPT = """
name: languages
language: {language}
start: menu
defaults:
  on_no_match: {{say: "?"}}
states:
  menu:
    say: "Адрес или код?"
    expect:
      address: {{phrases: ["адрес"], goto: bye}}
      code: {{phrases: ["код"], goto: code}}
  code:
    say: "Назовите код."
    collect: {{slot: code, type: digits, length: 4, goto: confirm}}
  confirm:
    say: "Вы сказали {{code|digits}}. Верно?"
    collect: {{slot: ok, type: yes_no, goto: age}}
  age:
    say: "Сколько вам лет?"
    collect: {{slot: age, type: number, goto: bye}}
  bye:
    say: "До свидания."
    hangup: true
"""


def engine(language: str) -> DialogEngine:
    return DialogEngine(parse_script(SCRIPT.format(language=language), "languages.yaml"))


def listen(actions: list) -> Listen:
    (heard,) = [a for a in actions if isinstance(a, Listen)]
    return heard


def says(actions: list) -> list[str]:
    return [a.text for a in actions if isinstance(a, Say)]


def filled(actions: list) -> list[SlotFilled]:
    return [a for a in actions if isinstance(a, SlotFilled)]


def test_a_russian_script_is_understood_and_spoken_in_russian() -> None:
    dialog = engine("ru")
    assert listen(dialog.handle(CallStarted())).expectation.language is RUSSIAN
    # A menu phrase inside Russian fillers.
    actions = dialog.handle(Heard("Мне бы код, пожалуйста"))
    assert actions[0] == Recognized("menu", "code", "Мне бы код, пожалуйста")
    assert listen(actions).expectation == Expectation(
        AnswerKind.DIGITS, min_length=4, max_length=4, language=RUSSIAN
    )
    actions = dialog.handle(Heard("Четыре, два, один, семь."))
    assert filled(actions) == [SlotFilled("code", "4217")]
    assert says(actions) == ["Вы сказали четыре два один семь. Верно?"]
    # The recognizer is told the language's yes and no.
    assert listen(actions).phrases == ("да", "нет")
    assert filled(dialog.handle(Heard("Да, всё верно."))) == [SlotFilled("ok", "yes")]
    assert filled(dialog.handle(Heard("Мне сорок два года."))) == [SlotFilled("age", "42")]


@pytest.mark.parametrize(
    ("answer", "value"),
    [("да", "yes"), ("ага", "yes"), ("конечно", "yes"), ("нет", "no"), ("да нет", "no"),
     ("неправильно", "no"), ("не надо", "no")],
)  # fmt: skip
def test_a_russian_yes_no_state_takes_russian_answers(answer: str, value: str) -> None:
    dialog = engine("ru-RU")
    dialog.handle(CallStarted())
    dialog.handle(Heard("код"))
    dialog.handle(Heard("4217"))
    assert filled(dialog.handle(Heard(answer))) == [SlotFilled("ok", value)]


def test_english_words_are_no_answer_to_a_russian_script() -> None:
    dialog = engine("ru")
    dialog.handle(CallStarted())
    dialog.handle(Heard("код"))
    assert filled(dialog.handle(Heard("four two one seven"))) == []
    dialog.handle(Heard("4217"))
    assert filled(dialog.handle(Heard("yes"))) == []
    assert filled(dialog.handle(KeyPressed("1"))) == [SlotFilled("ok", "yes")]


def test_a_language_without_a_module_reads_numerals_and_keys_only() -> None:
    dialog = engine("de")
    assert listen(dialog.handle(CallStarted())).expectation.language is NEUTRAL
    dialog.handle(Heard("Код!"))
    actions = dialog.handle(Heard("4 2 1 7"))
    assert filled(actions) == [SlotFilled("code", "4217")]
    assert says(actions) == ["Вы сказали 4 2 1 7. Верно?"]
    assert listen(actions).phrases == ()  # no words to tell the recognizer
    assert filled(dialog.handle(Heard("ja"))) == []
    assert filled(dialog.handle(KeyPressed("2"))) == [SlotFilled("ok", "no")]
    assert filled(dialog.handle(Heard("42"))) == [SlotFilled("age", "42")]


def test_an_english_script_keeps_its_english_words() -> None:
    dialog = engine("en-US")
    dialog.handle(CallStarted())
    dialog.handle(Heard("код"))
    actions = dialog.handle(Heard("four two one seven"))
    assert says(actions) == ["Вы сказали 4 2 1 7. Верно?"]
    assert listen(actions).phrases == ("yes", "no")
    assert filled(dialog.handle(Heard("yeah"))) == [SlotFilled("ok", "yes")]
    assert filled(dialog.handle(Heard("да"))) == []
