"""Bounded patterns for matches(): what could backtrack for long is refused when the script is
loaded; what is accepted searches at most MATCH_TEXT_LIMIT characters."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.dialog.patterns import (
    MATCH_TEXT_LIMIT,
    MAX_PATTERN_LENGTH,
    PATTERN_WORK_LIMIT,
    PatternError,
    compile_bounded,
    pattern_work,
    search_bounded,
)


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("(a+)+", "the pattern nests repetition ('(a+)+'), which can take exponential time"),
        ("(a|aa)*", "the pattern repeats an alternation ('(a|aa)*')"),
        (r"(\w+\s?)*", r"the pattern nests repetition ('(\w+\s?)*')"),
        ("(a*)*", "nests repetition ('(a*)*')"),
        ("x((a+))*", "nests repetition ('((a+))*')"),
        ("(?:a?){3,}", "nests repetition ('(?:a?){3,}')"),
        ("(a{1,3}){2}", "nests repetition ('(a{1,3}){2}')"),
        ("(?P<w>a+)+?", "nests repetition ('(?P<w>a+)+?')"),
        ("((a|b)c)+", "repeats an alternation ('((a|b)c)+')"),
        (r"(a)\1", r"backreferences ('\1') are not allowed"),
        ("(?P<x>a)(?P=x)", "backreferences ('(?P=') are not allowed"),
        ("(a)?(?(1)b|c)", "backreferences ('(?(1') are not allowed"),
        ("a(?=b)", "lookarounds ('(?=') are not allowed"),
        ("a(?!b)", "lookarounds ('(?!') are not allowed"),
        ("(?<=a)b", "lookarounds ('(?<=') are not allowed"),
        ("(?<!a)b", "lookarounds ('(?<!') are not allowed"),
        ("(?x)a b", "verbose mode ('(?x)') is not allowed"),
        # polynomial: each repetition multiplies the ways a long value can be split
        (r"\d*\d*x", "too many repetitions"),
        (".*a.*b", "too many repetitions"),
        ("a{1,1000}b{1,1000}", "too many repetitions"),
        (r"^\d*\d*\d*x", "too many repetitions"),
        ("x|.*a.*b", "too many repetitions"),
        ("a" * (MAX_PATTERN_LENGTH + 1), "the pattern is longer than 200 characters"),
        ("(", "bad pattern: missing ), unterminated subpattern at position 0"),
        ("a**", "bad pattern: multiple repeat"),
        ("a{99999999999}", "bad pattern: the repetition number is too large"),
    ],
    ids=lambda value: value[:30] if isinstance(value, str) else None,
)
def test_patterns_that_could_take_too_long_are_refused(pattern: str, problem: str) -> None:
    with pytest.raises(PatternError) as caught:
        compile_bounded(pattern)
    assert problem in str(caught.value)


@pytest.mark.parametrize(
    "pattern",
    [
        r"^\d{5}$",
        r"^\+?\d{10,15}$",
        r"^(\+7|8)\d{10}$",
        r"^[A-Z]{2}\d{9}[A-Z]{2}$",
        r"\d+",
        r"^\d+-\d+$",
        r"^\w+@\w+$",
        "yes|yeah|sure",
        "(a+)?",
        r"\+?\d+",
        r"^\+?\d+\s?\d+$",
        r"(\d{3}-)+x",
        "(ab)+",
        "[(a+)+]",
        r"^\(a+\)+",
        "[]a]+",
        "(?i)yes",
        r"(?#digits)\d+",
        "(?i:a)+",
        r"\N{DIGIT ONE}+",
        "[[a]",
        "a{,}",
    ],
    ids=str,
)
def test_ordinary_patterns_are_accepted_and_run_quickly(pattern: str) -> None:
    compiled = compile_bounded(pattern)
    started = time.perf_counter()
    for value in ("a" * 1000, "1" * 1000, " " * 1000, "a1 " * 333, "1" * 999 + "!"):
        search_bounded(compiled, value)
    assert time.perf_counter() - started < 2.0


STARTS = MATCH_TEXT_LIMIT + 1  # an unanchored search tries every place in the value


@pytest.mark.parametrize(
    ("pattern", "ways", "items"),
    [
        ("abc", STARTS, 3),
        ("^abc", 1, 4),
        (r"\Aabc", 1, 4),
        ("^a|b", 1 + STARTS, 3),  # each alternative on its own
        (r"\d+", STARTS * MATCH_TEXT_LIMIT, 1),  # 1 to 1000 digits
        (r"^\d*", MATCH_TEXT_LIMIT + 1, 2),  # 0 to 1000
        (r"^\d{2,5}x?", 4 * 2, 3),
        (r"^\d{3}", 1, 2),  # a fixed count leaves nothing to try
        (r"^(ab|cd)?x{1,3}", 2 * 2 * 3, 7),  # two alternatives, there or not, 1-3 x
        ("(ab|cd)x", STARTS * 2, 6),
        ("(^a)", STARTS, 3),  # only a ^ that leads the whole pattern anchors it
        ("[a-z(]+", STARTS * MATCH_TEXT_LIMIT, 1),  # a class is one item
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_the_work_is_the_ways_to_split_a_value_times_the_items_read(
    pattern: str, ways: int, items: int
) -> None:
    assert pattern_work(pattern) == ways * items


def test_multiline_mode_does_not_anchor() -> None:
    assert pattern_work("^a", multiline=True) == STARTS * 2
    with pytest.raises(PatternError, match="too many repetitions"):
        compile_bounded(r"(?m)^\d+\d+x")
    assert compile_bounded(r"^\d+\d+x").pattern == r"^\d+\d+x"


def test_a_text_longer_than_the_limit_is_not_searched() -> None:
    compiled = compile_bounded("a")
    assert search_bounded(compiled, "b" * (MATCH_TEXT_LIMIT - 1) + "a") is True
    assert search_bounded(compiled, "b" * MATCH_TEXT_LIMIT + "a") is False
    assert PATTERN_WORK_LIMIT >= pattern_work(r"\+?\d+")


PATTERN_PIECES = [
    "a", "1", ".", "|", "(", ")", "*", "+", "?", "^", "$", "[", "]", "[^", "-", "{2,5}", "{1,}",
    "{,3}", "{", "}", ",", "(?:", "(?P<n>", "(?i)", "(?m)", "(?=", "(?#", "(?>", "\\d", "\\w",
    "\\1", "\\(", "\\", "\\A", "\\N{DIGIT ONE}",
]  # fmt: skip


@settings(max_examples=500)
@given(st.lists(st.sampled_from(PATTERN_PIECES), max_size=12).map("".join))
def test_any_pattern_is_accepted_or_refused_with_a_pattern_error(pattern: str) -> None:
    try:
        compiled = compile_bounded(pattern)
    except PatternError:
        return
    assert isinstance(compiled, re.Pattern)
    assert isinstance(search_bounded(compiled, "a1" * 50), bool)
