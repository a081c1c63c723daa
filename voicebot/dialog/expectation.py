"""What the dialog expects the caller to say now, and whether a transcript completes it.

An IVR knows the shape of the answer it asked for: one of a menu's phrases, a yes or a no,
N digits. A transcript that completes it ends the caller's turn at once; one that is a start
("four two" of three digits) waits for more; anything else goes to the turn model or the
silence rule. Pure: the turn-taking core asks, nothing here touches audio or time.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .match import best_match, normalize
from .numbers import parse_digits, parse_number, parse_yes_no


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
        if self.kind is AnswerKind.NUMBER:
            return _number_completion(text)
        # Free text can always go on: the turn model judges it.
        return Completion.UNKNOWN


# A number ending like this is most likely on its way ("one hundred … and twenty").
_CONTINUING = frozenset({"and", "hundred", "thousand", "million"})


def _number_completion(text: str) -> Completion:
    """A number is complete unless it sounds like the start of a longer one: "forty" may
    become "forty two", "one hundred" "one hundred and twenty"."""
    number = parse_number(text)
    if number is None:
        return Completion.UNKNOWN
    last = normalize(text)[-1:]
    tens = 20 <= number < 100 and number % 10 == 0
    hundreds = number >= 100 and number % 100 == 0
    if (last and last[0] in _CONTINUING) or tens or hundreds:
        return Completion.PARTIAL
    return Completion.COMPLETE


# English words that almost never end a finished answer: after "I would like", "speak to",
# "my", "and" the caller is on their way to the rest, whatever the intonation says. (Smart
# Turn put "I would like" of "I would like … my balance" at 0.96 complete.)
OPEN_ENDINGS = frozenset(
    "a an the my your our his her their its this these those "
    "to of for in on at with from about by into than as "
    "and or but because if when while "
    "is are was were am be been being have has had do does did can could would will "
    "should shall may might must "
    "like want need wanna speak talk check get um uh er erm".split()
)


def ends_open(text: str) -> bool:
    """True when an English transcript stops on a word that needs more after it."""
    words = normalize(text)
    return bool(words) and words[-1] in OPEN_ENDINGS


# What makes English words a clause, so that a sentence may be over: a finite form of be /
# have / do or a modal, a subject pronoun with a word after it ("I lost", "it broke"), a
# past form ("arrived", "charged") or a polite imperative ("please try").
_FINITE = frozenset(
    "is are was were am isn't aren't wasn't weren't i'm you're we're they're he's she's it's "
    "that's there's do does did don't doesn't didn't have has had haven't hasn't hadn't "
    "i've you've we've they've can can't cannot could couldn't will won't would wouldn't "
    "i'll you'll we'll they'll i'd you'd we'd they'd should shouldn't shall may might must".split()
)
_SUBJECTS = frozenset(
    "i you we they he she it someone somebody nobody everyone everybody something nothing "
    "everything".split()
)


def lacks_verb(text: str, language: str) -> bool:
    """True when English words hold no verb yet: "my parcel", "the person at extension" (the
    first halves of answers with a pause in them, which Smart Turn scored up to 0.66
    complete); False for "my parcel did not arrive", "I lost my card", "please try again".
    Only English is known: other languages give False."""
    if language.split("-")[0].lower() != "en":
        return False
    words = normalize(text)
    for i, word in enumerate(words):
        if word in _FINITE or (len(word) > 3 and word.endswith("ed")):
            return False
        if i + 1 < len(words) and (word in _SUBJECTS or word == "please"):
            return False
    return bool(words)
