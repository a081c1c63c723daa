"""Branch conditions: a small expression language of its own (never Python's ``eval``).

A branch's ``if:`` is parsed when the script is loaded (:func:`parse_expression`, which raises
:class:`ExpressionError` naming the column) and evaluated on every pass (:func:`evaluate`,
which never raises and always answers True or False)::

    parcel.status == "delivered"
    parcel.days_late > 2 or caller_id in vip.numbers
    status in ["lost", "damaged"] and not verified
    open("office") and len(account) == 8
    matches(caller_id, "^\\+7495")

**Values.** Variables are named as in templates: slots, ``caller_id``, ``called``,
``channel.NAME``, webhook answers with dots (``result.items.0.name``); a name is
``[A-Za-z_][A-Za-z0-9_-]*`` with ``.PART`` after it, so ``-`` belongs to names (``x-1`` is one
variable: there is no arithmetic). Literals: strings in double or single quotes (a backslash
escapes the quote and the backslash; any other backslash stays as written, so patterns read
``"^\\d{5}$"``), numbers (``42``, ``-1``, ``2.5``), ``true``, ``false``, ``null`` (lower case:
``True`` is a variable), and lists of literals (``["lost", "damaged"]``).

**Operators**, loosest first: ``or``; ``and``; ``not``; comparisons ``== != < <= > >= in``
``not in`` (one per operand: ``a < b < c`` is an error; write ``a < b and b < c``); then
values, function calls and parentheses. ``not a == b`` is ``not (a == b)``. ``and``/``or``
stop at the first operand that decides (so ``open()`` may not be asked at all).

**Functions** (a fixed set; their names are not variables): ``len(x)``, the length of a
text, list or object (none for anything else); ``open("CALENDAR")``, whether the calendar is
open now (the name must be in quotes); ``matches(x, "PATTERN")``, whether the pattern is found
anywhere in ``x`` (a search: anchor with ``^``/``$`` to match the whole value). ``x`` is a text
or a number; a value longer than 1000 characters does not match. The pattern is checked at
load time (:mod:`voicebot.dialog.patterns`): at most 200 characters, no backreferences,
lookarounds or verbose mode, no repeated group that itself holds a repetition or an
alternation (``(a+)+``, ``(a|aa)*``), and not so many repetitions that a 1000-character value
could take long (``\\d*\\d*x`` is refused; anchoring with ``^`` allows more).

**Missing variables and types.** A comparison with a missing variable is false, whatever the
operator: ``x == "a"``, ``x != "a"``, ``x in [...]`` and ``x not in [...]`` are all false when
``x`` is missing, while ``not (x == "a")`` is true. ``null`` tests presence: ``x == null`` is
true when ``x`` is missing (or JSON null), ``x != null`` when it has a value. Texts compare with
texts (exactly, by code point), numbers with numbers, booleans with booleans (``==``/``!=``
only); a number and a text that reads as a number (``"42"``, ``"-2.5"``: slots are text)
compare as numbers. Any other mix is false, for every operator (``"yes" == true`` and
``"a" != 1`` are false). ``in`` is membership in a list (with the same rules), a key of an
object, or a part of a text; ``not in`` is its opposite when the right side is such a
container, and false otherwise.

**Conditions.** A value standing alone (``if: verified``) is true unless it is missing, false,
zero, empty, or a text that reads ``false``, ``no`` or ``0`` (any case, spaces ignored): a
``yes_no`` slot holds ``"yes"`` or ``"no"``, so ``if: confirmed`` does what it says.

**Limits.** An expression has at most 1000 characters, nests at most 32 levels (parentheses,
``not``, lists, calls), and its texts and numbers at most 500 and 30 characters.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, TypeAlias, TypeVar

from .patterns import PatternError, compile_bounded, search_bounded
from .templates import lookup

MAX_EXPRESSION_LENGTH = 1000
MAX_DEPTH = 32
MAX_STRING_LENGTH = 500
MAX_NUMBER_LENGTH = 30
FUNCTIONS = ("len", "matches", "open")
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null"})
# Texts that read as "no" when a value stands alone as a condition.
FALSE_TEXTS = frozenset({"", "false", "no", "0"})


class ExpressionError(ValueError):
    """An expression is malformed; ``str()`` says what and where (``... at column N``)."""

    def __init__(self, problem: str, column: int) -> None:
        super().__init__(f"{problem} at column {column}")
        self.problem = problem
        self.column = column


# -- the syntax tree --------------------------------------------------------------------------


@dataclass(frozen=True)
class Literal:
    value: Any  # str, int, float, bool, None (null), or a tuple of those (a list literal)


@dataclass(frozen=True)
class Variable:
    name: str


@dataclass(frozen=True)
class Not:
    operand: Node


@dataclass(frozen=True)
class Logic:
    operator: str  # "and" or "or"; a chain is kept flat, not as a deep tree
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Compare:
    operator: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Length:
    operand: Node


@dataclass(frozen=True)
class IsOpen:
    calendar: str


@dataclass(frozen=True)
class Matches:
    operand: Node
    pattern: re.Pattern[str]


Node: TypeAlias = Literal | Variable | Not | Logic | Compare | Length | IsOpen | Matches


@dataclass(frozen=True)
class Expression:
    """A parsed condition: its text, the calendars and variables it uses, and its tree."""

    source: str
    calendars: frozenset[str]
    names: frozenset[str]
    root: Node = field(repr=False)


# -- tokens -----------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>[ \t\r\n]+)
      | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
      | (?P<number>-?[0-9][A-Za-z0-9_.]*)
      | (?P<name>[A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*)
      | (?P<operator>==|!=|<=|>=|<|>)
      | (?P<punctuation>[()\[\],])""",
    re.VERBOSE | re.DOTALL,
)
_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
# Only the quotes and the backslash are escapes: "\d" stays "\d" for patterns.
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)
_HINTS = {
    "=": " (did you mean '=='?)",
    "!": " (did you mean '!=' or 'not'?)",
    "&": " (did you mean 'and'?)",
    "|": " (did you mean 'or'?)",
}


@dataclass(frozen=True)
class _Token:
    kind: str  # "name", "keyword", "string", "number", "operator", one of "()[],", or "end"
    text: str
    column: int
    value: Any = None


def _show(text: str) -> str:
    """A token as an error message quotes it: short, and printable."""
    text = text if len(text) <= 30 else text[:27] + "..."
    if not text.isprintable():
        return ascii(text)
    return f'"{text}"' if "'" in text else f"'{text}'"


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    i = 0
    while i < len(text):
        token, column = _TOKEN.match(text, i), i + 1
        if token is None:
            if text[i] in "\"'":
                raise ExpressionError("unterminated string", column)
            raise ExpressionError(f"unexpected {_show(text[i])}{_HINTS.get(text[i], '')}", column)
        kind, word, i = token.lastgroup, token.group(), token.end()
        if kind == "string":
            value = _ESCAPE.sub(lambda m: m[1] if m[1] in "\"'\\" else m[0], word[1:-1])
            if len(value) > MAX_STRING_LENGTH:
                raise ExpressionError(f"string longer than {MAX_STRING_LENGTH} characters", column)
            found.append(_Token("string", word, column, value))
        elif kind == "number":
            if not _NUMBER.fullmatch(word):
                raise ExpressionError(f"bad number {_show(word)}", column)
            if len(word) > MAX_NUMBER_LENGTH:
                raise ExpressionError(f"number longer than {MAX_NUMBER_LENGTH} characters", column)
            found.append(_Token("number", word, column, _number_from_text(word)))
        elif kind == "name":
            found.append(_Token("keyword" if word in KEYWORDS else "name", word, column))
        elif kind == "operator":
            found.append(_Token("operator", word, column))
        elif kind == "punctuation":
            found.append(_Token(word, word, column))
    found.append(_Token("end", "", len(text) + 1))
    return found


# -- the parser -------------------------------------------------------------------------------

_LITERALS = {"true": True, "false": False, "null": None}
_ARGUMENTS = {
    "len": "1 argument",
    "open": "1 argument (a calendar name in quotes)",
    "matches": "2 arguments (a value and a pattern in quotes)",
}
_Item = TypeVar("_Item")


class _Parser:
    """Recursive descent with the nesting counted, so hostile input is an error, not a crash."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.position = 0
        self.depth = 0
        self.names: set[str] = set()
        self.calendars: set[str] = set()

    def parse(self) -> Node:
        if self._peek().kind == "end":
            raise ExpressionError("the expression is empty", 1)
        node = self._or()
        if self._peek().kind != "end":
            raise self._unexpected(self._peek())
        return node

    def _peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.position + ahead, len(self.tokens) - 1)]

    def _advance(self) -> _Token:
        token = self._peek()
        self.position += token.kind != "end"
        return token

    @staticmethod
    def _is(token: _Token, keyword: str) -> bool:
        return token.kind == "keyword" and token.text == keyword

    def _enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"nesting deeper than {MAX_DEPTH} levels", token.column)

    @staticmethod
    def _unexpected(token: _Token, expected: str = "") -> ExpressionError:
        what = "end of expression" if token.kind == "end" else _show(token.text)
        hint = f" (expected {expected})" if expected else ""
        return ExpressionError(f"unexpected {what}{hint}", token.column)

    def _close(self, opening: _Token, closing: str) -> None:
        token = self._advance()
        if token.kind == "end":
            raise ExpressionError(f"unclosed '{opening.text}'", opening.column)
        if token.kind != closing:
            raise self._unexpected(token, f"'{closing}'")

    # the grammar, loosest first: or, and, not, a comparison, a primary

    def _or(self) -> Node:
        return self._chain("or", self._and)

    def _and(self) -> Node:
        return self._chain("and", self._not)

    def _chain(self, keyword: str, operand: Callable[[], Node]) -> Node:
        operands = [operand()]
        while self._is(self._peek(), keyword):
            self._advance()
            operands.append(operand())
        return operands[0] if len(operands) == 1 else Logic(keyword, tuple(operands))

    def _not(self) -> Node:
        token = self._peek()
        if not self._is(token, "not"):
            return self._comparison()
        self._advance()
        self._enter(token)
        operand = self._not()
        self.depth -= 1
        return Not(operand)

    def _comparison(self) -> Node:
        left = self._primary()
        operator_text = self._comparison_operator()
        if operator_text is None:
            return left
        right = self._primary()
        second = self._peek()
        if self._comparison_operator() is not None:
            raise ExpressionError(
                "comparisons cannot be chained (join them with 'and')", second.column
            )
        return Compare(operator_text, left, right)

    def _comparison_operator(self) -> str | None:
        """The comparison operator at the current token, consumed; None when there is none."""
        token = self._peek()
        if token.kind == "operator" or self._is(token, "in"):
            self._advance()
            return token.text
        if self._is(token, "not") and self._is(self._peek(1), "in"):
            self.position += 2
            return "not in"
        return None

    def _primary(self) -> Node:
        token = self._advance()
        literal = self._literal(token)
        if literal is not None:
            return literal
        if token.kind == "(":
            self._enter(token)
            node = self._or()
            self._close(token, ")")
            self.depth -= 1
            return node
        if token.kind == "[":
            return Literal(tuple(self._items(token, "]", lambda: self._list_item(token))))
        if token.kind != "name":
            raise self._unexpected(token, "a value")
        if self._peek().kind == "(":
            return self._call(token)
        if token.text in FUNCTIONS:
            raise ExpressionError(
                f"'{token.text}' is a function: write {token.text}(...)", token.column
            )
        self.names.add(token.text)
        return Variable(token.text)

    @staticmethod
    def _literal(token: _Token) -> Literal | None:
        if token.kind in ("string", "number"):
            return Literal(token.value)
        if token.kind == "keyword" and token.text in _LITERALS:
            return Literal(_LITERALS[token.text])
        return None

    def _items(self, opening: _Token, closing: str, item: Callable[[], _Item]) -> list[_Item]:
        """The comma-separated items after ``opening`` up to ``closing``: one level deeper."""
        self._enter(opening)
        items = []
        if self._peek().kind != closing:
            items.append(item())
            while self._peek().kind == ",":
                self._advance()
                items.append(item())
        self._close(opening, closing)
        self.depth -= 1
        return items

    def _list_item(self, opening: _Token) -> Any:
        token = self._advance()
        literal = self._literal(token)
        if literal is not None:
            return literal.value
        if token.kind == "end":
            raise ExpressionError("unclosed '['", opening.column)
        if token.kind in ("]", ","):
            raise self._unexpected(token, "a literal")
        raise ExpressionError(
            "a list holds only literals (strings, numbers, true, false, null), "
            f"not {_show(token.text)}",
            token.column,
        )

    def _call(self, name: _Token) -> Node:
        if name.text not in FUNCTIONS:
            known = ", ".join(FUNCTIONS)
            raise ExpressionError(f"unknown function '{name.text}' (known: {known})", name.column)
        opening = self._advance()
        arguments = self._items(opening, ")", lambda: (self._peek(), self._or()))
        if len(arguments) != (2 if name.text == "matches" else 1):
            raise ExpressionError(
                f"{name.text}() takes {_ARGUMENTS[name.text]}, not {len(arguments)}", name.column
            )
        if name.text == "len":
            return Length(arguments[0][1])
        token, text = arguments[-1][0], _text_literal(arguments[-1][1])
        if name.text == "open":
            if text is None:
                raise ExpressionError(
                    'open() takes a calendar name in quotes, e.g. open("office")', token.column
                )
            if not text:
                raise ExpressionError("open(): the calendar name is empty", token.column)
            self.calendars.add(text)
            return IsOpen(text)
        if text is None:
            raise ExpressionError(
                'matches() takes the pattern in quotes, e.g. matches(code, "^[0-9]{5}$")',
                token.column,
            )
        try:
            return Matches(arguments[0][1], compile_bounded(text))
        except PatternError as error:
            raise ExpressionError(f"matches(): {error}", token.column) from None


def _text_literal(node: Node) -> str | None:
    return node.value if isinstance(node, Literal) and isinstance(node.value, str) else None


@lru_cache(maxsize=1024)
def parse_expression(text: str) -> Expression:
    """Parse a branch condition; :class:`ExpressionError` (with its column) if malformed."""
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ExpressionError(
            f"the expression is longer than {MAX_EXPRESSION_LENGTH} characters",
            MAX_EXPRESSION_LENGTH + 1,
        )
    parser = _Parser(_tokens(text))
    root = parser.parse()
    return Expression(text, frozenset(parser.calendars), frozenset(parser.names), root)


# -- evaluation -------------------------------------------------------------------------------

_ORDER: Mapping[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# str() of an int this long would raise (Python's digit limit), and its text is too long to
# match anyway.
_MATCH_INT_BITS = 4000


def evaluate(
    expression: Expression, variables: Mapping[str, Any], is_open: Callable[[str], bool]
) -> bool:
    """Whether the condition holds for ``variables`` (the dialog's: slots, ``caller_id``,
    webhook answers ...). ``is_open(calendar)`` answers ``open("calendar")``; it is asked only
    when the condition gets that far. Never raises (unless ``is_open`` does)."""
    return _truth(_value(expression.root, variables, is_open))


def _value(node: Node, variables: Mapping[str, Any], is_open: Callable[[str], bool]) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Variable):
        return lookup(variables, node.name)
    if isinstance(node, Not):
        return not _truth(_value(node.operand, variables, is_open))
    if isinstance(node, Logic):
        truths = (_truth(_value(o, variables, is_open)) for o in node.operands)
        return all(truths) if node.operator == "and" else any(truths)
    if isinstance(node, Compare):
        return _compare(node, variables, is_open)
    if isinstance(node, Length):
        return _length(_value(node.operand, variables, is_open))
    if isinstance(node, IsOpen):
        return bool(is_open(node.calendar))
    return _matches(node.pattern, _value(node.operand, variables, is_open))


def _is_null(node: Node) -> bool:
    return isinstance(node, Literal) and node.value is None


def _compare(node: Compare, variables: Mapping[str, Any], is_open: Callable[[str], bool]) -> bool:
    if node.operator in ("==", "!=") and (_is_null(node.left) or _is_null(node.right)):
        other = node.right if _is_null(node.left) else node.left
        missing = _value(other, variables, is_open) is None
        return missing if node.operator == "==" else not missing
    left = _value(node.left, variables, is_open)
    right = _value(node.right, variables, is_open)
    if left is None or right is None:
        return False
    if node.operator in ("in", "not in"):
        return _contains(right, left) is (node.operator == "in")
    pair = _comparable(left, right)
    if pair is None:
        return False
    a, b = pair
    if node.operator == "==":
        return bool(a == b)
    if node.operator == "!=":
        return bool(a != b)
    # Booleans are equal or not; they have no order.
    return not isinstance(a, bool) and _ORDER[node.operator](a, b)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _number_from_text(text: str) -> int | float | None:
    text = text.strip()
    if len(text) > MAX_NUMBER_LENGTH or not _NUMBER.fullmatch(text):
        return None
    return float(text) if "." in text else int(text)


def _comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    """``a`` and ``b`` as two values of one kind (text, number, boolean); None if they are
    not comparable."""
    if isinstance(a, bool) or isinstance(b, bool):
        return (a, b) if isinstance(a, bool) and isinstance(b, bool) else None
    if (isinstance(a, str) and isinstance(b, str)) or (_is_number(a) and _is_number(b)):
        return a, b
    if _is_number(a) and isinstance(b, str):
        number = _number_from_text(b)
        return None if number is None else (a, number)
    if isinstance(a, str) and _is_number(b):
        number = _number_from_text(a)
        return None if number is None else (number, b)
    return None


def _equal(a: Any, b: Any) -> bool:
    pair = None if a is None or b is None else _comparable(a, b)
    return pair is not None and bool(pair[0] == pair[1])


def _contains(container: Any, item: Any) -> bool | None:
    """Whether ``item`` is in ``container``; None when the question makes no sense."""
    if isinstance(container, str | Mapping):
        return item in container if isinstance(item, str) else None
    if isinstance(container, list | tuple):
        return any(_equal(item, element) for element in container)
    return None


def _length(value: Any) -> int | None:
    return len(value) if isinstance(value, str | Mapping | list | tuple) else None


def _matches(pattern: re.Pattern[str], value: Any) -> bool:
    if _is_number(value) and not (isinstance(value, int) and value.bit_length() > _MATCH_INT_BITS):
        value = str(value)
    return isinstance(value, str) and search_bounded(pattern, value)


def _truth(value: Any) -> bool:
    """A value standing alone as a condition."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, str):
        return value.strip().lower() not in FALSE_TEXTS
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, Mapping | list | tuple):
        return len(value) > 0
    return True
