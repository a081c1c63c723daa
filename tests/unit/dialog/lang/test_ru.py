"""Russian: digits, numbers and yes/no as whisper writes them, digits spoken, filler words,
and the words that say an answer is not over yet (voicebot/dialog/lang/ru.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebot.dialog.lang import RUSSIAN
from voicebot.dialog.match import best_match

_UNITS = ["", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь", "девять"]
_FEMININE = {"один": "одна", "два": "две"}
_TEENS = [
    "десять", "одиннадцать", "двенадцать", "тринадцать", "четырнадцать", "пятнадцать",
    "шестнадцать", "семнадцать", "восемнадцать", "девятнадцать",
]  # fmt: skip
_TENS = ["", "", "двадцать", "тридцать", "сорок", "пятьдесят", "шестьдесят", "семьдесят",
         "восемьдесят", "девяносто"]  # fmt: skip
_HUNDREDS = ["", "сто", "двести", "триста", "четыреста", "пятьсот", "шестьсот", "семьсот",
             "восемьсот", "девятьсот"]  # fmt: skip


def _below_thousand(n: int, *, feminine: bool) -> list[str]:
    words = [_HUNDREDS[n // 100]] if n >= 100 else []
    n %= 100
    if 10 <= n < 20:
        return [*words, _TEENS[n - 10]]
    if n >= 20:
        words.append(_TENS[n // 10])
    unit = _UNITS[n % 10]
    if unit:
        words.append(_FEMININE.get(unit, unit) if feminine else unit)
    return words


def _scale_word(n: int, forms: tuple[str, str, str]) -> str:
    """тысяча / тысячи / тысяч after ``n``, as Russian agrees them."""
    if 10 <= n % 100 < 20 or n % 10 in (0, 5, 6, 7, 8, 9):
        return forms[2]
    return forms[0] if n % 10 == 1 else forms[1]


def spelled(n: int) -> str:
    """Russian words for 0 <= n < 10**9, written for these tests."""
    if n == 0:
        return "ноль"
    millions, rest = divmod(n, 1_000_000)
    thousands, units = divmod(rest, 1_000)
    words: list[str] = []
    if millions:
        words += [*_below_thousand(millions, feminine=False),
                  _scale_word(millions, ("миллион", "миллиона", "миллионов"))]  # fmt: skip
    if thousands:
        words += [*_below_thousand(thousands, feminine=True),
                  _scale_word(thousands, ("тысяча", "тысячи", "тысяч"))]  # fmt: skip
    words += _below_thousand(units, feminine=False)
    return " ".join(words)


# -- numbers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("сорок два", 42),
        ("Сорок два.", 42),
        ("двести пять", 205),
        ("сто двадцать", 120),
        ("девятьсот девяносто девять", 999),
        ("тысяча", 1000),
        ("тысяча двести", 1200),
        ("одна тысяча двести тридцать четыре", 1234),
        ("две тысячи триста", 2300),
        ("две тысячи двадцать четыре", 2024),
        ("пять тысяч", 5000),
        ("одиннадцать тысяч", 11_000),
        ("двести тысяч пятьсот", 200_500),
        ("миллион", 1_000_000),
        ("три миллиона пятьсот тысяч", 3_500_000),
        ("2 тысячи", 2000),
        ("две тысячи 300", 2300),
        ("одну", 1),
        ("одна", 1),
        ("две", 2),
        ("ноль", 0),
        ("нуль", 0),
        ("четырёх", None),  # a case callers do not answer a number in
        ("мне сорок два года", 42),
        ("ну, э, сорок два", 42),
        ("четыре э два", 42),  # a hesitation inside digits said one by one
        ("четыре два", 42),
        ("девятнадцать восемьдесят четыре", 1984),
        ("42", 42),
        ("2,500", 2500),
        ("2.5", None),
        ("не знаю", None),
        ("", None),
    ],
)
def test_parse_number(text: str, number: int | None) -> None:
    assert RUSSIAN.parse_number(text) == number


@given(st.integers(min_value=0, max_value=999_999_999))
def test_every_number_up_to_the_millions_reads_back(n: int) -> None:
    assert RUSSIAN.parse_number(spelled(n)) == n


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("четыре два один", "421"),
        ("четыре, два, один, семь", "4217"),
        ("Четыре. Два. Один. Семь.", "4217"),
        ("4217", "4217"),
        ("4, 2, 1, 7", "4217"),
        ("4 2 1 7", "4217"),
        ("мой номер 4217, пожалуйста", "4217"),
        ("ноль ноль семь", "007"),
        ("нуль один", "01"),
        ("сорок два", "42"),
        ("двадцать один ноль пять", "2105"),
        ("сто", "100"),
        ("один два три четыре пять шесть семь восемь девять ноль", "1234567890"),
        ("одна", "1"),
        ("ещё раз", None),
        ("", None),
    ],
)
def test_parse_digits(text: str, digits: str | None) -> None:
    assert RUSSIAN.parse_digits(text) == digits


def test_yo_and_ye_are_one_letter() -> None:
    assert RUSSIAN.normalize("Всё верно, ещё раз") == ["все", "верно", "еще", "раз"]
    assert RUSSIAN.parse_yes_no("Всё верно.") is True


# -- yes / no -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("да", True),
        ("Да.", True),
        ("Да-да.", True),
        ("ну да", True),
        ("конечно", True),
        ("ага", True),
        ("угу", True),
        ("верно", True),
        ("правильно", True),
        ("Всё верно", True),
        ("так точно", True),
        ("да, спасибо", True),
        ("нет, то есть да", True),  # the last clear answer counts
        ("нет", False),
        ("Нет.", False),
        ("неа", False),
        ("не-а", False),
        ("не надо", False),
        ("нет, спасибо", False),
        ("да нет", False),  # "да" only softens the no
        ("Да нет, не надо.", False),
        ("не верно", False),
        ("неверно", False),
        ("неправильно", False),
        ("не правильно", False),
        ("не так", False),
        ("конечно нет", False),
        ("да… нет, неправильно", False),
        ("не знаю", None),
        ("да не знаю", None),
        ("не уверена", None),
        ("может быть", None),
        ("спасибо", None),
        ("четыре", None),
        ("", None),
    ],
)
def test_parse_yes_no(text: str, answer: bool | None) -> None:
    assert RUSSIAN.parse_yes_no(text) is answer


# -- speaking digits ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "spoken"),
    [
        ("4217", "четыре два один семь"),
        ("007", "ноль ноль семь"),
        ("555-0100", "пять пять пять, ноль один ноль ноль"),
        ("+7 (495) 12", "плюс семь, четыре девять пять, один два"),
        ("*12#", "звёздочка один два решётка"),
        ("ab12", "A B один два"),
        ("", ""),
    ],
)
def test_speak_digits(value: str, spoken: str) -> None:
    assert RUSSIAN.speak_digits(value) == spoken


@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_speak_digits_round_trips(digits: str) -> None:
    assert RUSSIAN.parse_digits(RUSSIAN.speak_digits(digits)) == digits


# -- menu phrases ---------------------------------------------------------------------------

MENU = [
    ("hours", ["часы работы", "когда вы работаете"]),
    ("address", ["адрес", "где вы находитесь"]),
    ("goodbye", ["до свидания", "это всё"]),
    ("operator", ["оператор"]),
]


@pytest.mark.parametrize(
    ("text", "intent"),
    [
        ("Часы работы.", "hours"),
        ("Я бы хотел узнать часы работы, пожалуйста.", "hours"),
        ("Ну, э, адрес", "address"),
        ("Мне можно адрес?", "address"),
        ("Это всё.", "goodbye"),
        ("всё", "goodbye"),  # "это" is a filler on both sides; "ё" is "е"
        ("До свидания!", "goodbye"),
        ("Соедините с оператором", "operator"),
        ("пицца", None),
    ],
)
def test_menu_phrases_match_through_russian_fillers(text: str, intent: str | None) -> None:
    match = best_match(text, MENU, language=RUSSIAN)
    assert (match.intent if match else None) == intent


# -- the end of an answer -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "open_"),
    [
        ("я хотел бы", True),
        ("Я хотела бы…", True),
        ("соедините с", True),
        ("Соедините, пожалуйста, с", True),
        ("мне нужно", True),
        ("мне", True),
        ("хочу", True),
        ("можно", True),
        ("у меня проблема с", True),
        ("карта и", True),
        ("или", True),
        ("потому", True),
        ("э", True),
        ("", False),
        ("часы работы", False),
        ("я потерял карту", False),
        ("соедините с оператором", False),
        ("I would like", False),  # English words in a Russian answer say nothing
    ],
)
def test_which_endings_need_more(text: str, open_: bool) -> None:
    assert RUSSIAN.ends_open(text) is open_


@pytest.mark.parametrize(
    ("text", "lacking"),
    [
        # no verb yet: the first halves of answers with a pause in them
        ("моя посылка", True),
        ("Номер договора", True),
        ("по поводу заказа", True),
        ("человек на добавочном", True),
        ("мой счёт", True),  # ends like a verb ("-ет"), a common noun of calls
        ("стоимость доставки", True),
        ("запись к врачу", True),
        ("с моим заказом", True),
        # a verb, or a clause without one
        ("моя посылка не пришла", False),
        ("Я потерял карту.", False),
        ("карта заблокирована", False),
        ("мне нужен оператор", False),
        ("попробуйте ещё раз", False),
        ("хочу записаться", False),
        ("деньги списались дважды", False),
        ("у меня вопрос", False),
        ("это ошибка", False),
        ("спасибо", False),
        # nothing to judge
        ("", False),
        ("4217", False),
        ("my parcel", False),
    ],
)
def test_which_words_hold_a_verb(text: str, lacking: bool) -> None:
    assert RUSSIAN.lacks_verb(text) is lacking


def test_round_numbers_and_scale_words_keep_a_number_going() -> None:
    assert {"тысяча", "тысячи", "тысяч", "миллион"} <= RUSSIAN.number_continuing
    assert RUSSIAN.yes_no_phrases == ("да", "нет")
