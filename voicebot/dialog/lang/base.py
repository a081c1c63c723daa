"""What a language gives the dialog, and the neutral fallback for languages without a module.

A :class:`Language` holds everything about a caller's words that differs from one language
to another: reading digits, numbers and yes/no from a transcript, speaking digits, the
filler words a menu match ignores, the words after which an answer cannot be over, the
free-text "no verb yet" heuristic and the words that keep a number going. Code that knows the
script's language asks its ``Language`` instead of testing the language code.

Languages without a module get :data:`NEUTRAL`: it reads numerals ("4217", "4, 2, 1, 7",
"2,500") and knows no words, so a script in such a language has its digits and numbers
understood when the recognizer writes them as numerals, yes/no only by keys (1/2), menu
phrases compared without filler words, and no end-of-turn word hints. Borrowing English
words instead would misread other languages' words ("an", "in", "was" are German too).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

# Any script's letters and digits: phrases may be in Korean, Russian, German…
WORD = re.compile(r"[\w']+")
# A numeral as recognizers write it: "4217", "2,500", "2.5", "4,2,1,7".
NUMERAL = r"\d+(?:[.,]\d+)*"
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+$")


@dataclass(frozen=True, eq=False, repr=False)
class Language:
    """One language's words for the dialog. Compared by identity: one object per language."""

    code: str  # "en", "ru"; "und" for the neutral fallback
    # Every digit said, in order ("4217"), or None.
    parse_digits: Callable[[str], str | None]
    # The first whole number said, or None.
    parse_number: Callable[[str], int | None]
    # True for a yes, False for a no, None for neither.
    parse_yes_no: Callable[[str], bool | None]
    # The text a synthesizer reads digit by digit ("4217" → "4 2 1 7").
    speak_digits: Callable[[str], str]
    # Lower-case words without punctuation, spelling variants made one ("yeah" → "yes").
    normalize: Callable[[str], list[str]]
    # Words a menu match ignores on both sides ("um", "please", "I would like").
    filler_words: frozenset[str]
    # The transcript stops on a word that needs more after it ("I would like", "соедините с").
    ends_open: Callable[[str], bool]
    # Free text holds no verb yet ("my parcel"): the answer cannot be whole.
    lacks_verb: Callable[[str], bool]
    # A number ending on one of these words is on its way ("one hundred and").
    number_continuing: frozenset[str]
    # What a yes/no state lets the recognizer expect.
    yes_no_phrases: tuple[str, ...] = field(default=())
    # Sentences a one-word menu phrase is also compared by meaning inside ("{phrase}, please"):
    # a word alone embeds far from the sentences callers say (dialog/meaning.py).
    meaning_carriers: tuple[str, ...] = field(default=())

    def __repr__(self) -> str:
        return f"Language({self.code!r})"


@dataclass(frozen=True)
class NumberChunk:
    """Number tokens ``start:end`` read as ``digits`` (a literal keeps its leading zeros)."""

    start: int
    end: int
    digits: str
    whole: bool = True  # False for a decimal numeral such as "2.5"


def scan_chunks(
    tokens: Sequence[str], chunk_at: Callable[[Sequence[str], int], NumberChunk | None]
) -> list[NumberChunk]:
    """The numbers in ``tokens``, left to right, each read by the language's ``chunk_at``."""
    chunks: list[NumberChunk] = []
    i = 0
    while i < len(tokens):
        chunk = chunk_at(tokens, i)
        if chunk is None:
            i += 1
        else:
            chunks.append(chunk)
            i = chunk.end
    return chunks


# Yes/no phrases as word tuples with what they mean (None: said, but no answer), longest first.
AnswerTable = list[tuple[tuple[str, ...], bool | None]]


def answer_table(yes: Sequence[str], no: Sequence[str], neither: Sequence[str]) -> AnswerTable:
    """The table ``last_answer`` reads, longest phrase first, so that "no problem" wins over
    "no" and "да нет" over "да"."""
    phrases: AnswerTable = [
        *((tuple(p.split()), True) for p in yes),
        *((tuple(p.split()), False) for p in no),
        *((tuple(p.split()), None) for p in neither),
    ]
    return sorted(phrases, key=lambda item: -len(item[0]))


def last_answer(
    words: Sequence[str],
    answers: AnswerTable,
    negation: Callable[[Sequence[str], int], int | None],
) -> bool | None:
    """The last clear yes or no in ``words`` (callers correct themselves: "no, wait, yes").
    Where no phrase of ``answers`` starts, ``negation(words, i)`` may read a negation there
    ("not correct", «не верно»): it returns the index of the negation's last word, or None."""
    answer: bool | None = None
    i = 0
    while i < len(words):
        for phrase, value in answers:
            if tuple(words[i : i + len(phrase)]) == phrase:
                if value is not None:
                    answer = value
                i += len(phrase)
                break
        else:
            negated = negation(words, i)
            if negated is not None:
                answer, i = False, negated
            i += 1
    return answer


def split_words(
    text: str, same_word: Mapping[str, str], fold: Mapping[int, str] | None = None
) -> list[str]:
    """Lower-case words of ``text`` (letters of any script, digits, apostrophes), each
    spelled as ``same_word`` says; ``fold`` first maps characters (Russian "ё" → "е")."""
    lowered = text.lower()
    if fold:
        lowered = lowered.translate(fold)
    return [same_word.get(word, word) for word in WORD.findall(lowered)]


def split_numeral(numeral: str) -> list[str]:
    """A numeral: "2,500" → ["2500"]; "4,2,1,7" → ["4", "2", "1", "7"]; else unchanged."""
    if _THOUSANDS.match(numeral):
        return [numeral.replace(",", "")]
    return numeral.split(",")


def ascii_digits(text: str) -> str:
    """The decimal digits of ``text`` as ASCII ("٤٢" → "42"), everything else dropped."""
    return "".join(str(unicodedata.decimal(char)) for char in text if char.isdecimal())


def spell_out(value: str, digit: Callable[[str], str], symbols: Mapping[str, str]) -> str:
    """``value`` for reading one character at a time: digits through ``digit``, letters upper
    case, ``symbols`` spoken; any other character separates groups, read with a short pause
    ("555-0100" → "5 5 5, 0 1 0 0")."""
    groups: list[list[str]] = [[]]
    for char in value:
        if char.isdigit():
            groups[-1].append(digit(char))
        elif char.isalpha():
            groups[-1].append(char.upper())
        elif char in symbols:
            groups[-1].append(symbols[char])
        elif groups[-1]:
            groups.append([])
    return ", ".join(" ".join(group) for group in groups if group)


# -- the neutral fallback -------------------------------------------------------------------

_NEUTRAL_TOKEN = re.compile(rf"{NUMERAL}|[^\W\d_]+")


def _neutral_digits(text: str) -> str | None:
    return ascii_digits(text) or None


def _neutral_number(text: str) -> int | None:
    """The first numeral, with the numerals right after it read as its further digits
    ("4 2" → 42, as a caller saying digits); None when it is not whole ("2.5")."""
    run: list[str] = []
    for token in _NEUTRAL_TOKEN.findall(text):
        if not token[0].isdigit():
            if run:
                break
            continue
        run += split_numeral(token)
    if not run or not all(part.isdecimal() for part in run):
        return None
    return int(ascii_digits("".join(run)))


def _neutral_normalize(text: str) -> list[str]:
    return split_words(text, {})


def _never(text: str) -> bool:
    return False


def _no_answer(text: str) -> bool | None:
    return None


def _neutral_speak_digits(value: str) -> str:
    # Numerals and symbols as they are: the synthesizer reads them in its own language.
    return spell_out(value, lambda char: char, {"+": "+", "*": "*", "#": "#"})


NEUTRAL = Language(
    code="und",
    parse_digits=_neutral_digits,
    parse_number=_neutral_number,
    parse_yes_no=_no_answer,
    speak_digits=_neutral_speak_digits,
    normalize=_neutral_normalize,
    filler_words=frozenset(),
    ends_open=_never,
    lacks_verb=_never,
    number_continuing=frozenset(),
)
