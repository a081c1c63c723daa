"""Branch conditions: parsing (precedence, errors with their column, hostile input, refused
patterns) and evaluation (missing variables, type mixes, in, len, matches, open, truthiness)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voicebot.dialog.expressions import (
    MAX_DEPTH,
    MAX_EXPRESSION_LENGTH,
    MAX_NUMBER_LENGTH,
    MAX_STRING_LENGTH,
    Expression,
    ExpressionError,
    evaluate,
    parse_expression,
)
from voicebot.dialog.patterns import MATCH_TEXT_LIMIT
from voicebot.dialog.templates import freeze


def never_asked(calendar: str) -> bool:
    raise AssertionError(f"open({calendar!r}) was not expected to be asked")


def holds(
    text: str, variables: dict[str, Any], is_open: Callable[[str], bool] = never_asked
) -> bool:
    # Variables as the engine keeps them: frozen (read-only mappings, tuples).
    return evaluate(parse_expression(text), freeze(variables), is_open)


def refusal(text: str) -> ExpressionError:
    with pytest.raises(ExpressionError) as caught:
        parse_expression(text)
    return caught.value


# -- precedence ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "variables", "expected"),
    [
        # or is looser than and: a or (b and c)
        ("a or b and c", {"a": True, "b": False, "c": False}, True),
        ("(a or b) and c", {"a": True, "b": False, "c": False}, False),
        ("a and b or c", {"a": False, "b": True, "c": True}, True),
        # not is looser than comparisons: not (a == b)
        ("not a == b", {"a": "x", "b": "y"}, True),
        ("(not a) == b", {"a": "x", "b": "y"}, False),
        # not is tighter than and: (not a) and b
        ("not a and b", {"a": True, "b": False}, False),
        ("not (a and b)", {"a": True, "b": False}, True),
        ("not not a", {"a": "yes"}, True),
        ("a or b or c", {"a": False, "b": False, "c": "yes"}, True),
        ("a and b and c", {"a": True, "b": True, "c": False}, False),
        ("((a))", {"a": True}, True),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_precedence(text: str, variables: dict[str, Any], expected: bool) -> None:
    assert holds(text, variables) is expected


# -- operators and types ---------------------------------------------------------------------

VARIABLES: dict[str, Any] = {
    "s42": "42",
    "n42": 42,
    "f25": 2.5,
    "s25": "2.5",
    "word": "lost",
    "t": True,
    "f": False,
    "yes_slot": "yes",
    "text": "hello world",
    "items": ["a", "b", 42],
    "map": {"k": 1},
    "parcel": {"status": "lost", "days_late": 3, "items": [{"name": "box"}]},
    "channel.LANG": "en",
    "caller_id": "+74951234567",
    "vip": {"numbers": ["+74951234567", "+74957654321"]},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # each operator on texts and on numbers
        ('word == "lost"', True),
        ('word == "Lost"', False),
        ('word != "found"', True),
        ('word != "lost"', False),
        ('word < "m"', True),
        ('word <= "lost"', True),
        ('word > "m"', False),
        ('word >= "lost"', True),
        ("n42 == 42", True),
        ("n42 != 41", True),
        ("n42 < 42.5", True),
        ("n42 <= 42", True),
        ("n42 > 41", True),
        ("n42 >= 43", False),
        ("f25 == 2.5", True),
        ("-1 < 0", True),
        # a number and a text that reads as one compare as numbers
        ("s42 == 42", True),
        ("s42 > 41.5", True),
        ("s42 < 100", True),
        ('n42 == "42"', True),
        ('"42.0" == 42', True),
        ('" 42 " == 42', True),
        ("s25 == 2.5", True),
        ('n42 < "100"', True),
        # two texts compare as texts, even when they read as numbers
        ('s42 == "42"', True),
        ('"10" < "9"', True),
        # any other mix is false, for every operator
        ("word == 42", False),
        ("word != 42", False),
        ("word < 42", False),
        ("t == true", True),
        ("t != false", True),
        ("f == false", True),
        ('t == "true"', False),
        ('t != "true"', False),
        ("yes_slot == true", False),
        ("t == 1", False),
        ("f == 0", False),
        ("t > false", False),
        ("t <= true", False),
        ('items == ["a", "b", 42]', False),
        ("map == map", False),
        ('"1e3" == 1000', False),
        # dotted names, channel variables, webhook answers
        ('parcel.status == "lost"', True),
        ("parcel.days_late > 2", True),
        ('parcel.items.0.name == "box"', True),
        ('channel.LANG == "en"', True),
        ("parcel.days_late > 2 or caller_id in vip.numbers", True),
        ('parcel.status in ["lost", "damaged"]', True),
        ('parcel.status not in ["lost", "damaged"]', False),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_comparisons(text: str, expected: bool) -> None:
    assert holds(text, VARIABLES) is expected


@pytest.mark.parametrize("operator", ["==", "!=", "<", "<=", ">", ">=", "in", "not in"])
@pytest.mark.parametrize(
    "other", ['"a"', "1", "true", '["a"]', "word", "items", "also_missing"], ids=str
)
def test_a_comparison_with_a_missing_variable_is_false(operator: str, other: str) -> None:
    assert holds(f"missing {operator} {other}", VARIABLES) is False
    assert holds(f"{other} {operator} missing", VARIABLES) is False
    assert holds(f"parcel.nothing.deeper {operator} {other}", VARIABLES) is False
    assert holds(f"not (missing {operator} {other})", VARIABLES) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("missing == null", True),
        ("null == missing", True),
        ("missing != null", False),
        ("word != null", True),
        ("word == null", False),
        ("f == null", False),
        ("parcel.gone == null", True),
        ("empty_json == null", True),
        ("null == null", True),
        ("missing < null", False),
        ("null in items", False),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_null_tests_whether_a_variable_has_a_value(text: str, expected: bool) -> None:
    assert holds(text, {**VARIABLES, "empty_json": None}) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # lists: the same equality as ==
        ('"a" in items', True),
        ('"c" in items', False),
        ('"c" not in items', True),
        ('"a" not in items', False),
        ("42 in items", True),
        ('"42" in items', True),
        ("s42 in items", True),
        ("true in items", False),
        ("true not in items", True),
        ('word in ["lost", "damaged"]', True),
        ('word in ["found"]', False),
        ("word in []", False),
        ("word not in []", True),
        ("n42 in [1, 42.0]", True),
        ("t in [true]", True),
        # texts: a part of the text
        ('"world" in text', True),
        ('"World" in text', False),
        ('"planet" not in text', True),
        ('"" in text', True),
        ("1 in text", False),
        ("1 not in text", False),
        # objects: a key
        ('"k" in map', True),
        ('"z" in map', False),
        ('"z" not in map', True),
        ("1 in map", False),
        ("1 not in map", False),
        # a right side that is no container
        ('"4" in n42', False),
        ('"4" not in n42', False),
        ('"a" in t', False),
        ('"a" not in t', False),
        # missing on either side
        ("missing in items", False),
        ("missing not in items", False),
        ('"a" in missing', False),
        ('"a" not in missing', False),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_in_and_not_in(text: str, expected: bool) -> None:
    assert holds(text, VARIABLES) is expected


def test_evaluation_takes_plain_json_values_as_well_as_frozen_ones() -> None:
    variables = {"r": {"items": ["a", {"b": 1}], "n": 2}}
    expression = parse_expression('"a" in r.items and r.items.1.b == 1 and len(r) == 2')
    assert evaluate(expression, variables, never_asked) is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("len(text) == 11", True),
        ("len(items) == 3", True),
        ("len(map) == 1", True),
        ('len("") == 0', True),
        ("len([]) == 0", True),
        ('len(["a", "b"]) >= 2', True),
        ("len(s42) == 2", True),
        ("len(missing) == 0", False),
        ("len(missing) != 0", False),
        ("len(missing) == null", True),
        ("len(n42) > 0", False),
        ("len(t) > 0", False),
        ("len(text)", True),
        ('len("")', False),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_len(text: str, expected: bool) -> None:
    assert holds(text, VARIABLES) is expected


# -- matches() -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r'matches(caller_id, "^\+7495")', True),
        (r'matches(caller_id, "^\+7812")', False),
        (r'matches(s42, "^\d+$")', True),
        (r'matches(word, "^\d+$")', False),
        ('matches(text, "world")', True),  # a search: anywhere in the value
        ('matches(text, "^world")', False),
        ('matches(text, "^hello world$")', True),
        ('matches(n42, "^4")', True),  # a number is matched as its digits
        (r'matches(f25, "^2\.5$")', True),
        ('matches(t, "true")', False),  # booleans, lists and objects never match
        ('matches(items, "a")', False),
        ('matches(map, "k")', False),
        ('matches(missing, "")', False),
        ('matches(text, "(?i)HELLO")', True),
        ("matches(text, 'o w')", True),
        (r'matches(q, "\"")', True),  # the one escape a pattern needs in a string
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_matches(text: str, expected: bool) -> None:
    assert holds(text, {**VARIABLES, "q": 'say "hi"'}) is expected


def test_matches_looks_at_values_of_at_most_1000_characters() -> None:
    expression = parse_expression('matches(v, "a")')
    assert evaluate(expression, {"v": "a" * MATCH_TEXT_LIMIT}, never_asked) is True
    assert evaluate(expression, {"v": "a" * (MATCH_TEXT_LIMIT + 1)}, never_asked) is False
    assert evaluate(expression, {"v": 10 ** (MATCH_TEXT_LIMIT * 2)}, never_asked) is False


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        (
            "(a+)+",
            "matches(): the pattern nests repetition ('(a+)+'), which can take exponential time",
        ),
        (
            "(a|aa)*",
            "matches(): the pattern repeats an alternation ('(a|aa)*'), which can take "
            "exponential time",
        ),
        ("a(?=b)", "matches(): lookarounds ('(?=') are not allowed"),
        (r"\d*\d*x", "matches(): the pattern has too many repetitions"),
        ("(", "matches(): bad pattern: missing ), unterminated subpattern at position 0"),
        ("a" * 201, "matches(): the pattern is longer than 200 characters"),
    ],
    ids=lambda value: value[:20] if isinstance(value, str) else None,
)
def test_a_pattern_that_could_take_too_long_is_refused_at_its_column(
    pattern: str, problem: str
) -> None:
    literal = pattern.replace("\\", "\\\\").replace('"', '\\"')
    error = refusal(f'x and matches(v, "{literal}")')
    assert error.problem.startswith(problem)
    assert error.column == 18  # the pattern's opening quote


# -- open() ----------------------------------------------------------------------------------


def test_open_asks_the_calendar_only_when_the_condition_gets_that_far() -> None:
    asked: list[str] = []

    def is_open(calendar: str) -> bool:
        asked.append(calendar)
        return calendar == "office"

    expression = parse_expression('open("office") and not open("night") or vip')
    assert expression.calendars == frozenset({"office", "night"})
    assert evaluate(expression, {}, is_open) is True
    assert asked == ["office", "night"]
    asked.clear()
    assert evaluate(parse_expression("false and open('office')"), {}, is_open) is False
    assert evaluate(parse_expression('true or open("office")'), {}, is_open) is True
    assert asked == []
    assert evaluate(parse_expression('open("weekend")'), {}, is_open) is False
    assert evaluate(parse_expression('open("office") == true'), {}, is_open) is True


def test_an_expression_lists_the_variables_it_uses() -> None:
    expression = parse_expression(
        'parcel.status == "x" and len(caller_id) > 0 or matches(channel.LANG, "en") or True'
    )
    assert expression == parse_expression(expression.source)
    assert isinstance(expression, Expression)
    assert expression.names == frozenset({"parcel.status", "caller_id", "channel.LANG", "True"})
    assert expression.calendars == frozenset()


# -- a value standing alone ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("yes", True),  # a yes_no slot
        ("no", False),
        ("No ", False),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("", False),
        ("  ", False),
        ("maybe", True),
        ("00", True),
        (True, True),
        (False, False),
        (0, False),
        (0.0, False),
        (7, True),
        ([], False),
        (["a"], True),
        ({}, False),
        ({"a": 1}, True),
        (None, False),
    ],
    ids=repr,
)
def test_a_value_standing_alone(value: Any, expected: bool) -> None:
    assert holds("confirmed", {"confirmed": value}) is expected
    assert holds("not confirmed", {"confirmed": value}) is not expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("true", True), ("false", False), ("null", False), ('"no"', False), ("1", True)],
)
def test_a_literal_standing_alone(text: str, expected: bool) -> None:
    assert holds(text, {}) is expected


def test_missing_and_upper_case_names_are_variables() -> None:
    assert holds("confirmed", {}) is False
    assert holds("True", {}) is False
    assert holds("True", {"True": "yes"}) is True
    assert holds("x-1 == 2", {"x-1": 2}) is True  # "-" belongs to names, as in templates


# -- syntax errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the expression is empty at column 1"),
        ("   ", "the expression is empty at column 1"),
        ("(a == b))", "unexpected ')' at column 9"),
        ("(a == b", "unclosed '(' at column 1"),
        ("a and (b or (c)", "unclosed '(' at column 7"),
        ("(", "unexpected end of expression (expected a value) at column 2"),
        ("()", "unexpected ')' (expected a value) at column 2"),
        ("a ==", "unexpected end of expression (expected a value) at column 5"),
        ("a and", "unexpected end of expression (expected a value) at column 6"),
        ("a or or b", "unexpected 'or' (expected a value) at column 6"),
        ("and a", "unexpected 'and' (expected a value) at column 1"),
        ("in a", "unexpected 'in' (expected a value) at column 1"),
        ("not", "unexpected end of expression (expected a value) at column 4"),
        ("a b", "unexpected 'b' at column 3"),
        ("a 'b'", "unexpected \"'b'\" at column 3"),
        ("a not b", "unexpected 'not' at column 3"),
        ("a == not b", "unexpected 'not' (expected a value) at column 6"),
        ("a < b < c", "comparisons cannot be chained (join them with 'and') at column 7"),
        ("a == b != c", "comparisons cannot be chained (join them with 'and') at column 8"),
        ("a in b not in c", "comparisons cannot be chained (join them with 'and') at column 8"),
        ("a = b", "unexpected '=' (did you mean '=='?) at column 3"),
        ("a === b", "unexpected '=' (did you mean '=='?) at column 5"),
        ("!a", "unexpected '!' (did you mean '!=' or 'not'?) at column 1"),
        ("a && b", "unexpected '&' (did you mean 'and'?) at column 3"),
        ("a || b", "unexpected '|' (did you mean 'or'?) at column 3"),
        ("a - 1", "unexpected '-' at column 3"),
        ("a == @", "unexpected '@' at column 6"),
        ("a == \x00", "unexpected '\\x00' at column 6"),
        ('"abc', "unterminated string at column 1"),
        ("x == 'abc", "unterminated string at column 6"),
        ('x == "abc\\"', "unterminated string at column 6"),
        ("1.2.3", "bad number '1.2.3' at column 1"),
        ("x == 12abc", "bad number '12abc' at column 6"),
        ("x == 1.", "bad number '1.' at column 6"),
        (
            "x in [a]",
            "a list holds only literals (strings, numbers, true, false, null), not 'a' at column 7",
        ),
        (
            "x in [[1]]",
            "a list holds only literals (strings, numbers, true, false, null), not '[' at column 7",
        ),
        ("x in [1, ]", "unexpected ']' (expected a literal) at column 10"),
        ("x in [1 2]", "unexpected '2' (expected ']') at column 9"),
        ("x in [1", "unclosed '[' at column 6"),
        ('opne("office")', "unknown function 'opne' (known: len, matches, open) at column 1"),
        ("a and lower(b)", "unknown function 'lower' (known: len, matches, open) at column 7"),
        ("len", "'len' is a function: write len(...) at column 1"),
        ("open == 1", "'open' is a function: write open(...) at column 1"),
        ("open(x)", 'open() takes a calendar name in quotes, e.g. open("office") at column 6'),
        ("open(1)", 'open() takes a calendar name in quotes, e.g. open("office") at column 6'),
        ("open()", "open() takes 1 argument (a calendar name in quotes), not 0 at column 1"),
        (
            'open("a", "b")',
            "open() takes 1 argument (a calendar name in quotes), not 2 at column 1",
        ),
        ('open("")', "open(): the calendar name is empty at column 6"),
        ("len()", "len() takes 1 argument, not 0 at column 1"),
        ("len(a, b)", "len() takes 1 argument, not 2 at column 1"),
        ("len(a b)", "unexpected 'b' (expected ')') at column 7"),
        ("len(a", "unclosed '(' at column 4"),
        (
            "matches(x)",
            "matches() takes 2 arguments (a value and a pattern in quotes), not 1 at column 1",
        ),
        (
            "matches(x, y)",
            'matches() takes the pattern in quotes, e.g. matches(code, "^[0-9]{5}$") at column 12',
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_syntax_errors_name_the_column(text: str, message: str) -> None:
    error = refusal(text)
    assert str(error) == message
    assert message.endswith(f" at column {error.column}")
    assert isinstance(error, ValueError)


# -- hostile input ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(" * 10_000 + "a" + ")" * 10_000, "the expression is longer than 1000 characters"),
        ("a" * (MAX_EXPRESSION_LENGTH + 1), "the expression is longer than 1000 characters"),
        ("(" * 400 + "a" + ")" * 400, "nesting deeper than 32 levels at column 33"),
        ("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1), "nesting deeper than 32 levels"),
        ("not " * 200 + "a", "nesting deeper than 32 levels at column 129"),
        ("len(" * 100 + "a" + ")" * 100, "nesting deeper than 32 levels at column 132"),
        ("(not " * 20 + "a" + ")" * 20, "nesting deeper than 32 levels"),
        ("[" * 300, "a list holds only literals"),
        ('"' + "x" * (MAX_STRING_LENGTH + 1) + '"', "string longer than 500 characters"),
        ("1" * (MAX_NUMBER_LENGTH + 1), "number longer than 30 characters"),
        ("x == -" + "1" * MAX_NUMBER_LENGTH, "number longer than 30 characters at column 6"),
    ],
    ids=lambda value: value[:20] if isinstance(value, str) else None,
)
def test_hostile_input_is_refused_quickly(text: str, message: str) -> None:
    started = time.perf_counter()
    error = refusal(text)
    assert time.perf_counter() - started < 1.0
    assert message in str(error)


@pytest.mark.parametrize(
    "text",
    [
        "(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH,
        "not " * MAX_DEPTH + "a",
        '"' + "x" * MAX_STRING_LENGTH + '"',
        "1" * MAX_NUMBER_LENGTH,
        " or ".join(["a"] * 200),  # a long chain is flat, not deep
        "x" * MAX_EXPRESSION_LENGTH,
    ],
    ids=lambda text: text[:20],
)
def test_the_limits_themselves_are_allowed(text: str) -> None:
    assert len(text) <= MAX_EXPRESSION_LENGTH
    assert isinstance(holds(text, {"a": "yes"}), bool)


# -- properties ------------------------------------------------------------------------------


@given(st.text(max_size=200))
def test_parsing_arbitrary_text_fails_only_with_an_expression_error(text: str) -> None:
    try:
        parse_expression(text)
    except ExpressionError as error:
        assert 1 <= error.column <= MAX_EXPRESSION_LENGTH + 1


OPERANDS = [
    "a", "b", "a.b", "a.0", "c.x-y", "True", '"x"', "'42'", '""', "42", "-1", "2.5", "0",
    "true", "false", "null", '["x", 1, null]', "[]", 'open("office")', "len(a)", "len(a.b)",
    'matches(a, "^\\d+")', "matches(b, 'x')",
]  # fmt: skip
COMPARISONS = ["==", "!=", "<", "<=", ">", ">=", "in", "not in"]


def compound(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.tuples(inner, st.sampled_from(COMPARISONS), inner).map(
            "({0[0]}) {0[1]} ({0[2]})".format
        ),
        st.tuples(inner, st.sampled_from(["and", "or"]), inner).map(" ".join),
        inner.map("not {}".format),
        inner.map("({})".format),
    )


EXPRESSIONS = st.recursive(st.sampled_from(OPERANDS), compound, max_leaves=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=12,
)


@settings(max_examples=300)
@given(
    EXPRESSIONS,
    st.dictionaries(st.sampled_from(["a", "b", "a.b", "c", "True"]), JSON),
    st.booleans(),
    st.booleans(),
)
def test_every_expression_evaluates_to_true_or_false_whatever_the_variables(
    text: str, variables: dict[str, Any], frozen: bool, office_open: bool
) -> None:
    try:
        expression = parse_expression(text)
    except ExpressionError as error:  # only a generated tree deeper than the limit
        assert "nesting deeper" in str(error)
        return
    answer = evaluate(expression, freeze(variables) if frozen else variables, lambda _: office_open)
    assert isinstance(answer, bool)
