"""What the dialog expects the caller to say now, and whether a transcript completes it.

An IVR knows the shape of the answer it asked for: one of a menu's phrases, a yes or a no,
N digits. A transcript that completes it ends the caller's turn at once; one that is a start
("four two" of three digits) waits for more; anything else goes to the turn model or the
silence rule. Pure: the turn-taking core asks, nothing here touches audio or time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .match import best_match
from .numbers import parse_digits, parse_yes_no


class AnswerKind(enum.StrEnum):
    MENU = "menu"
    YES_NO = "yes_no"
    DIGITS = "digits"
    NUMBER = "number"
    TEXT = "text"


class Completion(enum.Enum):
    COMPLETE = "complete"  # the answer is whole: take the turn now
    PARTIAL = "partial"  # a correct start (too few digits): wait for the rest
    UNKNOWN = "unknown"  # cannot tell from the words: the turn model or the silence decides


@dataclass(frozen=True)
class Expectation:
    kind: AnswerKind
    intents: tuple[tuple[str, tuple[str, ...]], ...] = ()  # menu: (intent, phrases)
    min_length: int = 1  # digits
    max_length: int | None = None  # digits; None: '#' or silence ends the entry

    def completion(self, text: str) -> Completion:
        if not text.strip():
            return Completion.UNKNOWN
        if self.kind is AnswerKind.MENU:
            matched = best_match(text, self.intents) is not None
            return Completion.COMPLETE if matched else Completion.UNKNOWN
        if self.kind is AnswerKind.YES_NO:
            return Completion.UNKNOWN if parse_yes_no(text) is None else Completion.COMPLETE
        if self.kind is AnswerKind.DIGITS:
            digits = parse_digits(text)
            if digits is None or not digits.isdigit():
                return Completion.UNKNOWN
            if self.max_length is not None and len(digits) >= self.max_length:
                return Completion.COMPLETE
            return Completion.PARTIAL
        # Numbers ("one hundred … and twenty") and free text can always go on.
        return Completion.UNKNOWN
