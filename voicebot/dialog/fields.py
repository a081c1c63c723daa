"""Typed values read out of a located YAML document, each problem kept with its ``file:line``.

A reader reports a problem and goes on with a default (``guard``), so that one pass over a file
finds all of its problems, not just the first.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from ..errors import ScriptError
from .yamlpos import KeyPath, LocatedDocument

T = TypeVar("T")

# No timeout or pause in a call needs more; a longer one is a typo (3600 for 3600 ms).
MAX_DURATION_S = 3600.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")


class ScriptErrors(ScriptError):
    """Several problems in one script; ``str()`` lists them one per line, in file order.

    ``file``, ``line``, ``key_path`` and ``problem`` are those of the first one.
    """

    def __init__(self, errors: Iterable[ScriptError]) -> None:
        self.errors = tuple(errors)
        first = self.errors[0]
        super().__init__(first.problem, file=first.file, line=first.line, key_path=first.key_path)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def parse_duration(value: Any) -> float:
    """``5s``, ``1500ms``, ``0.5m`` or a bare number of seconds → seconds."""
    if isinstance(value, bool):
        raise ValueError(f"bad duration {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"bad duration {value!r} (use e.g. 5s or 1500ms)")
        number, unit = float(match.group(1)), match.group(2) or "s"
        seconds = number / 1000 if unit == "ms" else number * 60 if unit == "m" else number
    if not math.isfinite(seconds) or seconds <= 0:  # .inf, .nan and 0 alike
        raise ValueError(f"bad duration {value!r}: must be a positive number of seconds")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"bad duration {value!r}: at most {MAX_DURATION_S:g} s (one hour)")
    return seconds


class FieldReader:
    """Reads typed values of ``doc``; ``errors`` holds every problem reported or guarded."""

    def __init__(self, doc: LocatedDocument) -> None:
        self.doc = doc
        self.errors: list[ScriptError] = []

    def fail(self, path: KeyPath, problem: str) -> ScriptError:
        return self.doc.error(path, problem)

    def report(self, path: KeyPath, problem: str) -> None:
        self.errors.append(self.fail(path, problem))

    def guard(self, parse: Callable[[], T], default: T) -> T:
        """Run one parse step; on error record it and go on with ``default``."""
        try:
            return parse()
        except ScriptError as exc:
            self.errors.append(exc)
            return default

    def mapping(self, value: Any, path: KeyPath, allowed: set[str]) -> dict[str, Any]:
        """``value`` as a mapping without its unknown keys (each one reported)."""
        if not isinstance(value, dict):
            raise self.fail(path, f"expected a mapping, got {type(value).__name__}")
        known = {}
        for key, item in value.items():
            if key in allowed:
                known[key] = item
            else:
                self.report(
                    (*path, key),
                    f"unknown key '{key}' (expected one of {', '.join(sorted(allowed))})",
                )
        return known

    def text(self, value: Any, path: KeyPath) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, "expected non-empty text")
        lone = next((c for c in value if "\ud800" <= c <= "\udfff"), None)
        if lone is not None:
            # YAML's "\ud800" escape: no voice, file or log line could take it.
            raise self.fail(path, f"a lone surrogate {lone!r} is not a character")
        return value.strip()

    def phrases(self, value: Any, path: KeyPath) -> tuple[str, ...]:
        items = value if isinstance(value, list) else [value]
        if not items:
            raise self.fail(path, "expected at least one text")
        where = (lambda i: (*path, str(i))) if isinstance(value, list) else (lambda i: path)
        return tuple(self.text(item, where(i)) for i, item in enumerate(items))

    def boolean(self, value: Any, path: KeyPath) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, f"expected true or false, got {value!r}")
        return value

    def whole(self, value: Any, path: KeyPath, minimum: int | None) -> int:
        if (
            isinstance(value, bool)
            or not isinstance(value, int)
            or (minimum is not None and value < minimum)
        ):
            bound = "" if minimum is None else f" ≥ {minimum}"
            raise self.fail(path, f"expected a whole number{bound}, got {value!r}")
        return value

    def duration(self, value: Any, path: KeyPath) -> float:
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise self.fail(path, str(exc)) from None
