"""Digits, numbers and yes/no as the recognizer writes them (voicebot/dialog/numbers.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from voicebot.dialog.numbers import parse_digits, parse_number, parse_yes_no, speak_digits

WORDS = {
    "0": "zero",
    "1": "one",
    "2": "two",
    "3": "three",
    "4": "four",
    "5": "five",
    "6": "six",
    "7": "seven",
    "8": "eight",
    "9": "nine",
}
_SMALL = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen",
]  # fmt: skip
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _below_thousand(n: int, *, and_: bool, hyphen: bool) -> str:
    parts = []
    if n >= 100:
        parts.append(f"{_SMALL[n // 100]} hundred")
        n %= 100
        if n and and_:
            parts.append("and")
    if n >= 20:
        tens, unit = divmod(n, 10)
        parts.append(
            f"{_TENS[tens]}{'-' if hyphen else ' '}{_SMALL[unit]}" if unit else _TENS[tens]
        )
    elif n or not parts:
        parts.append(_SMALL[n])
    return " ".join(parts)


def spelled(n: int, *, and_: bool = False, hyphen: bool = False) -> str:
    """English words for 0 <= n < 10**9, written for these tests."""
    if n == 0:
        return "zero"
    parts = []
    for scale, name in ((1_000_000, "million"), (1_000, "thousand"), (1, "")):
        group, n = divmod(n, scale)
        if group:
            words = _below_thousand(group, and_=and_, hyphen=hyphen)
            parts.append(f"{words} {name}".strip())
    return " ".join(parts)


def test_spelled_helper() -> None:
    assert spelled(3200) == "three thousand two hundred"
    assert spelled(105, and_=True) == "one hundred and five"
    assert spelled(1_000_042, hyphen=True) == "one million forty-two"


@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_digits_said_one_by_one(digits: str) -> None:
    assert parse_digits(" ".join(WORDS[c] for c in digits)) == digits


@given(st.text(alphabet="0123456789", min_size=1, max_size=20), st.sampled_from([" ", ", ", "-"]))
def test_digits_as_numerals(digits: str, separator: str) -> None:
    assert parse_digits(separator.join(digits)) == digits
    assert parse_digits(f"My number is {digits}.") == digits


@given(st.integers(min_value=0, max_value=10**6 - 1), st.booleans(), st.booleans())
def test_spelled_numbers(n: int, and_: bool, hyphen: bool) -> None:
    text = spelled(n, and_=and_, hyphen=hyphen)
    assert parse_number(text) == n
    assert parse_number(text.capitalize() + ".") == n


@given(st.integers(min_value=0, max_value=10**8))
def test_numerals_with_thousands_separators(n: int) -> None:
    assert parse_number(f"{n:,}") == n
    assert parse_number(str(n)) == n


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("four two one seven", "4217"),
        ("4 2 1 7", "4217"),
        ("4, 2, 1, 7.", "4217"),
        ("4217", "4217"),
        ("Forty-two.", "42"),
        ("forty two", "42"),
        ("twenty one oh five", "2105"),
        ("one oh five", "105"),
        ("double five", "55"),
        ("double oh seven", "007"),
        ("triple seven", "777"),
        ("one hundred", "100"),
        ("twenty-one hundred", "2100"),
        ("nineteen eighty four", "1984"),
        ("for two one seven", "4217"),
        ("Four, to, one, seven.", "4217"),
        ("for to one seven", "4217"),
        ("won two three", "123"),
        ("five ate nine", "589"),
        ("Um, it's four two one seven, please.", "4217"),
        ("my number is, uh, 555-0100", "5550100"),
        ("0042", "0042"),
        ("4,217", "4217"),
    ],
)
def test_parse_digits(text: str, digits: str) -> None:
    assert parse_digits(text) == digits


@pytest.mark.parametrize(
    ("text", "digits"),
    [
        ("a table for two", "2"),  # "for" is a word here
        ("I want to pay", None),
        ("I ate already", None),
        ("Oh really", None),
        ("hello", None),
        ("", None),
    ],
)
def test_homophones_need_a_digit_context(text: str, digits: str | None) -> None:
    assert parse_digits(text) == digits


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("forty two", 42),
        ("Forty-two.", 42),
        ("one hundred and five", 105),
        ("a hundred", 100),
        ("2,500", 2500),
        ("three thousand two hundred", 3200),
        ("twenty five hundred", 2500),
        ("two million", 2_000_000),
        ("3 thousand", 3000),
        ("one million two hundred thousand and five", 1_200_005),
        ("I'd like three tickets", 3),
        ("four two", 42),
        ("2.5", None),
        ("none at all", None),
    ],
)
def test_parse_number(text: str, number: int | None) -> None:
    assert parse_number(text) == number


@pytest.mark.parametrize(
    "text",
    ["yes", "Yeah.", "yep", "Correct.", "right", "That's right.", "Sure!", "affirmative",
     "yes please", "of course", "no problem", "No, wait, yes."],
)  # fmt: skip
def test_yes(text: str) -> None:
    assert parse_yes_no(text) is True


@pytest.mark.parametrize(
    "text",
    ["no", "No.", "nope", "wrong", "That's wrong.", "incorrect", "not right", "negative",
     "That's not correct.", "It isn't.", "not really", "Yes... no, that's wrong."],
)  # fmt: skip
def test_no(text: str) -> None:
    assert parse_yes_no(text) is False


@pytest.mark.parametrize("text", ["", "hmm", "I'm not sure", "I don't know", "maybe", "four"])
def test_neither(text: str) -> None:
    assert parse_yes_no(text) is None


@pytest.mark.parametrize(
    ("value", "spoken"),
    [
        ("4217", "4 2 1 7"),
        ("555-0100", "5 5 5, 0 1 0 0"),
        ("+1 (555) 010", "plus 1, 5 5 5, 0 1 0"),
        ("*12#", "star 1 2 pound"),
        ("ab12", "A B 1 2"),
        ("", ""),
    ],
)
def test_speak_digits(value: str, spoken: str) -> None:
    assert speak_digits(value) == spoken


@given(st.text(alphabet="0123456789", min_size=1, max_size=20))
def test_speak_digits_round_trips(digits: str) -> None:
    assert parse_digits(speak_digits(digits)) == digits


@pytest.mark.parametrize(
    ("text", "n"),
    [("100 and 20", 120), ("100, and 20.", 120), ("2,000 and 5", 2005), ("100 and 200", 100)],
)
def test_whisper_style_round_number_and_a_smaller_one_is_one_number(text: str, n: int) -> None:
    # whisper writes "one hundred and twenty" as "100 and 20"
    assert parse_number(text) == n
