"""Regular expressions that cannot run away, for ``matches()`` in branch conditions.

Python's ``re`` backtracks: ``(a+)+$`` takes exponential time on "aaaa…!", and ``\\d*\\d*\\d*x``
minutes on a thousand digits. :func:`compile_bounded` refuses, when the script is loaded, the
patterns that can do that: longer than 200 characters, backreferences, lookarounds, verbose
mode, a repeated group that itself holds a repetition or an alternation (``(a+)+``,
``(a|aa)*``, ``(\\w+\\s?)*``), and repetitions whose ways of splitting a long value multiply
past :data:`PATTERN_WORK_LIMIT` (anchoring with ``^`` divides the work by the value's
length). :func:`search_bounded` then searches at most :data:`MATCH_TEXT_LIMIT` characters, so
the worst case of any accepted pattern takes about a tenth of a second.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

MAX_PATTERN_LENGTH = 200
# Values longer than this are not searched: they do not match.
MATCH_TEXT_LIMIT = 1000
# Backtracking work a pattern may imply on a MATCH_TEXT_LIMIT-character value: the ways its
# repetitions can split the text, times the places a search starts from, times the items the
# pattern reads on each try. It allows one open-ended repetition in a pattern of some twenty
# items ('\+?\d+'), or two when the pattern is anchored ('^\+?\d+\s?\d+$'). Measured worst
# cases at the limit took 0.05-0.15 s, where '\d*\d*x' took a second and '\d*\d*\d*x' minutes.
PATTERN_WORK_LIMIT = 25 * (MATCH_TEXT_LIMIT + 1) ** 2

_BRACES = re.compile(r"\{([0-9]*)(?:(,)([0-9]*))?\}")
_GROUP_FLAGS = re.compile(r"\(\?([a-zA-Z]*)(?:-[a-zA-Z]*)?([):])")
_QUANTIFIERS: dict[str, tuple[int, int | None]] = {"*": (0, None), "+": (1, None), "?": (0, 1)}


class PatternError(ValueError):
    """A pattern is malformed or could take too long; ``str()`` says which."""


def compile_bounded(pattern: str) -> re.Pattern[str]:
    """The compiled pattern; :class:`PatternError` if it is malformed or could run away."""
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise PatternError(f"the pattern is longer than {MAX_PATTERN_LENGTH} characters")
    try:
        with warnings.catch_warnings():
            # "Possible nested set" and the like: the pattern still means what Python says.
            warnings.simplefilter("ignore")
            compiled = re.compile(pattern)
    except (re.error, OverflowError) as error:
        raise PatternError(f"bad pattern: {error}") from None
    if pattern_work(pattern, multiline=bool(compiled.flags & re.MULTILINE)) > PATTERN_WORK_LIMIT:
        raise PatternError(
            "the pattern has too many repetitions ('*', '+', '?', '{m,n}') to search a value "
            f"of {MATCH_TEXT_LIMIT} characters quickly; use fewer, or anchor it with '^'"
        )
    return compiled


def search_bounded(pattern: re.Pattern[str], text: str) -> bool:
    """Whether ``pattern`` is found in ``text``; False for a text over MATCH_TEXT_LIMIT."""
    return len(text) <= MATCH_TEXT_LIMIT and pattern.search(text) is not None


@dataclass
class _Group:
    """What the scan knows of one group (or of the whole pattern)."""

    start: int
    work: int = 0  # summed over the finished alternatives
    branch: int = 1  # the current alternative's: the product of its repetitions' choices
    anchored: bool = False  # the current alternative starts with ^ or \A
    fresh: bool = True  # nothing read yet in the current alternative
    repeats: bool = False  # holds a quantifier with a choice of counts
    alternates: bool = False  # holds '|'

    def end_branch(self, starts: int) -> None:
        self.work += self.branch * (1 if self.anchored else starts)
        self.branch, self.anchored, self.fresh = 1, False, True


def pattern_work(pattern: str, *, multiline: bool = False) -> int:
    """The worst backtracking work of a compiled ``pattern`` on a MATCH_TEXT_LIMIT-character
    value; :class:`PatternError` for what can take exponential time or is not allowed.

    Reads a pattern that compiled, so its brackets, groups and escapes are well formed.
    """
    stack = [_Group(start=0)]
    starts = MATCH_TEXT_LIMIT + 1  # where re.search tries an unanchored alternative
    items = 0
    i = 0
    while i < len(pattern):
        group, char, start, work = stack[-1], pattern[i], i, 1
        if char == "\\":
            if pattern[i + 1] in "123456789":
                raise _refused("backreferences", pattern[i : i + 2])
            group.anchored |= pattern[i + 1] == "A" and group.fresh and len(stack) == 1
            i += 2
        elif char == "[":
            i = _skip_class(pattern, i)
        elif char == "(":
            if pattern.startswith("(?#", i):
                i = pattern.index(")", i) + 1
                continue
            if pattern.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
                raise _refused("lookarounds", pattern[i : i + 3 + (pattern[i + 2] == "<")])
            if pattern.startswith(("(?P=", "(?("), i):
                raise _refused("backreferences", pattern[i : i + 4])
            flags = _GROUP_FLAGS.match(pattern, i)
            if flags is not None and "x" in flags[1]:
                raise PatternError("verbose mode ('(?x)') is not allowed")
            if flags is not None:
                i = flags.end()
                if flags[2] == ")":
                    continue  # flags for the whole pattern, not a group
            elif pattern.startswith("(?P<", i):
                i = pattern.index(">", i) + 1
            else:
                i += 3 if pattern.startswith("(?>", i) else 1
            stack.append(_Group(start=start))
            continue
        elif char == ")":
            inner = stack.pop()
            inner.end_branch(starts=1)
            group, work, i = stack[-1], inner.work, i + 1
            quantifier = _quantifier(pattern, i)
            if quantifier is not None and (quantifier[1] or 2) > 1:
                if inner.repeats or inner.alternates:
                    what = "nests repetition" if inner.repeats else "repeats an alternation"
                    raise PatternError(
                        f"the pattern {what} ('{pattern[inner.start : quantifier[2]]}'), "
                        "which can take exponential time"
                    )
            group.repeats |= inner.repeats
            group.alternates |= inner.alternates
        elif char == "|":
            group.alternates = True
            group.end_branch(starts if len(stack) == 1 else 1)
            i += 1
            continue
        else:
            group.anchored |= char == "^" and group.fresh and len(stack) == 1 and not multiline
            i += 1
        group.fresh = False
        items += 1
        quantifier = _quantifier(pattern, i)
        if quantifier is not None:
            least, most, i = quantifier
            work *= _choices(least, most)
            group.repeats |= most != least
        group.branch *= work
    stack[0].end_branch(starts)
    return stack[0].work * max(items, 1)


def _quantifier(pattern: str, i: int) -> tuple[int, int | None, int] | None:
    """``(least, most or None for unbounded, index after it)`` of a quantifier at ``i``."""
    char = pattern[i : i + 1]
    braces = _BRACES.match(pattern, i)
    least: int
    most: int | None
    if char in _QUANTIFIERS and char:
        (least, most), end = _QUANTIFIERS[char], i + 1
    elif braces is not None and (braces[1] or braces[2]):  # else "{" is a literal
        least = int(braces[1] or 0)
        most = least if not braces[2] else int(braces[3]) if braces[3] else None
        end = braces.end()
    else:
        return None
    return least, most, end + (pattern[end : end + 1] in ("?", "+"))  # lazy, possessive


def _choices(least: int, most: int | None) -> int:
    """How many counts a quantifier can try on a value of MATCH_TEXT_LIMIT characters."""
    top = MATCH_TEXT_LIMIT if most is None else min(most, MATCH_TEXT_LIMIT)
    return max(top - least, 0) + 1


def _skip_class(pattern: str, i: int) -> int:
    """The index after the character class opening at ``i``."""
    j = i + 1 + (pattern[i + 1] == "^")
    j += pattern[j] == "]"
    while pattern[j] != "]":
        j += 2 if pattern[j] == "\\" else 1
    return j + 1


def _refused(what: str, snippet: str) -> PatternError:
    return PatternError(f"{what} ('{snippet}') are not allowed")
