"""What the dialog expects the caller to say now, and whether a transcript completes it.

An IVR knows the shape of the answer it asked for: one of a menu's phrases, a yes or a no,
N digits. A transcript that completes it ends the caller's turn at once; one that is a start
("four two" of three digits) waits for more; anything else goes to the turn model or the
silence rule. Pure: the turn-taking core asks, nothing here touches audio or time.

What the words mean (digits, yes/no, filler words, words that keep a number going) is the
script's language's: an expectation carries its :class:`~voicebot.dialog.lang.Language`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .lang import ENGLISH, Language, language_for
from .match import best_match


class AnswerKind(enum.StrEnum):
    MENU = "menu"
    YES_NO = "yes_no"
    DIGITS = "digits"
    NUMBER = "number"
    TEXT = "text"


class Completion(enum.Enum):
    COMPLETE = "complete"  # the answer is whole: take the turn now
    PARTIAL = "partial"  # a correct start (too few digits, "one hundred"): wait for the rest
    UNKNOWN = "unknown"  # cannot tell from the words: the turn model or the silence decides


@dataclass(frozen=True)
class Expectation:
    kind: AnswerKind
    intents: tuple[tuple[str, tuple[str, ...]], ...] = ()  # menu: (intent, phrases)
    min_length: int = 1  # digits
    max_length: int | None = None  # digits; None: '#' or silence ends the entry
    language: Language = ENGLISH  # the script's: its words for digits, yes/no, fillers

    def completion(self, text: str) -> Completion:
        if not text.strip():
            return Completion.UNKNOWN
        language = self.language
        if self.kind is AnswerKind.MENU:
            matched = best_match(text, self.intents, language=language) is not None
            return Completion.COMPLETE if matched else Completion.UNKNOWN
        if self.kind is AnswerKind.YES_NO:
            answer = language.parse_yes_no(text)
            return Completion.UNKNOWN if answer is None else Completion.COMPLETE
        if self.kind is AnswerKind.DIGITS:
            digits = language.parse_digits(text)
            if digits is None or not digits.isdigit():
                return Completion.UNKNOWN
            if self.max_length is not None and len(digits) >= self.max_length:
                return Completion.COMPLETE
            return Completion.PARTIAL
        if self.kind is AnswerKind.NUMBER:
            return _number_completion(text, language)
        # Free text can always go on: the turn model judges it.
        return Completion.UNKNOWN


def _number_completion(text: str, language: Language) -> Completion:
    """A number is complete unless it sounds like the start of a longer one: "forty" may
    become "forty two", "one hundred" "one hundred and twenty", "сорок" "сорок два"."""
    number = language.parse_number(text)
    if number is None:
        return Completion.UNKNOWN
    last = language.normalize(text)[-1:]
    tens = 20 <= number < 100 and number % 10 == 0
    hundreds = number >= 100 and number % 100 == 0
    if (last and last[0] in language.number_continuing) or tens or hundreds:
        return Completion.PARTIAL
    return Completion.COMPLETE


def ends_open(text: str, language: str = "en") -> bool:
    """True when a transcript in ``language`` (a code) stops on a word that needs more after
    it ("I would like", "соедините с"); always False for a language without a module."""
    return language_for(language).ends_open(text)


def lacks_verb(text: str, language: str) -> bool:
    """True when free text in ``language`` (a code) holds no verb yet ("my parcel", "моя
    посылка"); always False for a language without a module."""
    return language_for(language).lacks_verb(text)
