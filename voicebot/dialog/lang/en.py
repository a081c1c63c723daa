"""English: digits, numbers and yes/no as the recognizer writes them, filler words, and the
words that say an answer is not over yet.

Whisper writes the same answer many ways: "4217", "4, 2, 1, 7", "four two one seven",
"Forty-two.", "for two one seven", "twenty one oh five", "double five", "twenty-one hundred".
These pure functions turn such text into values; every other word is ignored.

Recognition homophones of digits are read as digits only where the caller is clearly saying
numbers:

- "oh"/"o" (0), "won" (1) and "ate" (8) when next to a number word or numeral;
- "for"/"fore" (4) and "to"/"too" (2) when between two numbers, right after "double"/"triple",
  or in a run of at least three number tokens ("for two one seven" → 4217, but
  "a table for two" → 2).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .base import (
    NUMERAL,
    Language,
    NumberChunk,
    answer_table,
    last_answer,
    scan_chunks,
    spell_out,
    split_numeral,
    split_words,
)

UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
HUNDRED = "hundred"
SCALES = {"thousand": 1_000, "million": 1_000_000}
REPEATS = {"double": 2, "triple": 3}

# Homophones read as a digit when next to a number.
ADJACENT_HOMOPHONES = {"oh": "zero", "o": "zero", "won": "one", "ate": "eight"}
# Homophones that are also common words: only inside a clear run of numbers.
RUN_HOMOPHONES = {"for": "four", "fore": "four", "to": "two", "too": "two"}
# A homophone of the second kind needs a run of at least this many number tokens.
MIN_HOMOPHONE_RUN = 3
# Hesitations are dropped before anything else, so "four um two" is a run.
HESITATIONS = frozenset("uh um uhm er erm ah eh hmm mm mhm".split())

_TOKEN = re.compile(rf"{NUMERAL}|[a-z]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case words and numerals; hyphens split words ("forty-two" → forty, two)."""
    tokens: list[str] = []
    for token in _TOKEN.findall(text.lower()):
        if token[0].isdigit():
            tokens.extend(split_numeral(token))
        elif token not in HESITATIONS:
            tokens.append(token)
    return tokens


def _is_numeral(token: str) -> bool:
    return token[:1].isdigit()


def _is_number_word(token: str) -> bool:
    return (
        _is_numeral(token)
        or token in UNITS
        or token in TEENS
        or token in TENS
        or token == HUNDRED
        or token in SCALES
        or token in REPEATS
    )


def _run_length(tokens: Sequence[str], index: int) -> int:
    """Number tokens in the run through ``index``, counting ``index`` itself."""
    length = 1
    i = index - 1
    while i >= 0 and _is_number_word(tokens[i]):
        length, i = length + 1, i - 1
    i = index + 1
    while i < len(tokens) and _is_number_word(tokens[i]):
        length, i = length + 1, i + 1
    return length


def _resolve_homophones(tokens: list[str]) -> list[str]:
    """Replace digit homophones by their digit word where the context is numeric."""
    resolved = list(tokens)
    changed = True
    while changed:
        changed = False
        for i, token in enumerate(resolved):
            left = resolved[i - 1] if i > 0 else ""
            right = resolved[i + 1] if i + 1 < len(resolved) else ""
            left_num = bool(left) and _is_number_word(left)
            right_num = bool(right) and _is_number_word(right)
            if token in ADJACENT_HOMOPHONES and (left_num or right_num):
                resolved[i] = ADJACENT_HOMOPHONES[token]
                changed = True
            elif token in RUN_HOMOPHONES and (
                (left_num and right_num)
                or left in REPEATS
                or ((left_num or right_num) and _run_length(resolved, i) >= MIN_HOMOPHONE_RUN)
            ):
                resolved[i] = RUN_HOMOPHONES[token]
                changed = True
    # "a hundred", "a thousand", "a million": "a" is one.
    for i, token in enumerate(resolved[:-1]):
        if token == "a" and (resolved[i + 1] == HUNDRED or resolved[i + 1] in SCALES):
            resolved[i] = "one"
    return resolved


def _at(tokens: Sequence[str], i: int) -> str:
    return tokens[i] if i < len(tokens) else ""


def _below_hundred(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """1-99 (or zero) in words: "seven", "seventeen", "seventy", "seventy seven"."""
    token = _at(tokens, i)
    if token in UNITS:
        return UNITS[token], i + 1
    if token in TEENS:
        return TEENS[token], i + 1
    if token in TENS:
        unit = _at(tokens, i + 1)
        if unit in UNITS and UNITS[unit] > 0:
            return TENS[token] + UNITS[unit], i + 2
        return TENS[token], i + 1
    if _is_numeral(token) and token.isdigit():
        # A numeral in a worded number only before a multiplier: "5 hundred", "2 million".
        after = _at(tokens, i + 1)
        if after == HUNDRED or after in SCALES:
            return int(token), i + 1
    return None


def _group(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """Below a thousand: "twenty one", "three hundred and five", "twenty one hundred"."""
    head = _below_hundred(tokens, i)
    if head is None:
        return None
    value, j = head
    if _at(tokens, j) != HUNDRED:
        return value, j
    value, j = value * 100, j + 1
    start = j + 1 if _at(tokens, j) == "and" else j
    tail = _below_hundred(tokens, start)
    if tail is not None and not _is_numeral(_at(tokens, start)):
        value, j = value + tail[0], tail[1]
    return value, j


def _cardinal(tokens: Sequence[str], i: int) -> tuple[int, int] | None:
    """A cardinal number in words up to the millions, greedily from ``i``."""
    first = _group(tokens, i)
    if first is None:
        return None
    group, j = first
    total, last_scale = 0, None
    while _at(tokens, j) in SCALES:
        scale = SCALES[_at(tokens, j)]
        if last_scale is not None and scale >= last_scale:
            break
        total, last_scale, j = total + group * scale, scale, j + 1
        start = j + 1 if _at(tokens, j) == "and" else j
        following = _group(tokens, start)
        if following is None:
            return total, j
        group, j = following
    return total + group, j


def _chunk_at(tokens: Sequence[str], i: int) -> NumberChunk | None:
    token = tokens[i]
    if token in REPEATS:
        digit = _at(tokens, i + 1)
        if digit in UNITS:
            return NumberChunk(i, i + 2, str(UNITS[digit]) * REPEATS[token])
        if _is_numeral(digit) and len(digit) == 1:
            return NumberChunk(i, i + 2, digit * REPEATS[token])
        return None
    if _is_numeral(token):
        after = _at(tokens, i + 1)
        if token.isdigit() and not (after == HUNDRED or after in SCALES):
            return NumberChunk(i, i + 1, token)
        if not token.isdigit():
            return NumberChunk(i, i + 1, token.replace(".", ""), whole=False)
    cardinal = _cardinal(tokens, i)
    if cardinal is None:
        return None
    value, end = cardinal
    return NumberChunk(i, end, str(value))


def _chunks(text: str) -> list[NumberChunk]:
    return scan_chunks(_resolve_homophones(tokenize(text)), _chunk_at)


def parse_digits(text: str) -> str | None:
    """Every digit the caller said, in order, as a string; None when there is none.

    "four two one seven", "4, 2, 1, 7" and "for two one seven" → "4217"; "forty two" → "42";
    "twenty one oh five" → "2105"; "double five" → "55"; "one hundred" → "100". Numbers said
    as numbers count with their digits ("twenty-one hundred" → "2100"). All other words
    ("um", "it's", "my number is", "please") are ignored.
    """
    digits = "".join(chunk.digits for chunk in _chunks(text))
    return digits or None


# Whisper writes "one hundred and twenty" as "100 and 20": a round number, "and", and a
# smaller one are one number, as the words were.
_ROUND_AND = re.compile(r"(?<![\d,.])(\d*[1-9](?:0{2,}|,000))[,.]?\s+and\s+(\d+)(?![\d,])")


def _join_round_and(match: re.Match[str]) -> str:
    big, small = int(match.group(1).replace(",", "")), int(match.group(2))
    zeros = len(str(big)) - len(str(big).rstrip("0"))
    return str(big + small) if small < 10**zeros else match.group(0)


def parse_number(text: str) -> int | None:
    """The first whole number in the text, in words or digits, up to the millions.

    "forty two" → 42, "one hundred and five" → 105, "2,500" → 2500, "three thousand two
    hundred" → 3200. Number tokens said one after the other read as digits ("four two" → 42,
    "nineteen eighty four" → 1984). None when there is no number, or when the first one is
    not whole ("2.5").
    """
    chunks = _chunks(_ROUND_AND.sub(_join_round_and, text))
    if not chunks:
        return None
    run = [chunks[0]]
    for chunk in chunks[1:]:
        if chunk.start != run[-1].end:
            break
        run.append(chunk)
    if not all(chunk.whole for chunk in run):
        return None
    return int("".join(chunk.digits for chunk in run))


_YES_PHRASES = (
    "yes",
    "yeah",
    "yea",
    "yep",
    "yup",
    "ya",
    "uh huh",
    "sure",
    "correct",
    "right",
    "true",
    "exactly",
    "affirmative",
    "absolutely",
    "definitely",
    "certainly",
    "indeed",
    "of course",
    "okay",
    "ok",
    "no problem",
    "that is it",
)
_NO_PHRASES = (
    "no",
    "nope",
    "nah",
    "wrong",
    "incorrect",
    "negative",
    "false",
    "no way",
    "not at all",
    "not really",
    "not quite",
    "do not think so",
)
# Said, but no answer: "I'm not sure", "I don't know".
_NEUTRAL_PHRASES = ("not sure", "no idea", "do not know", "no clue")
# "not" before one of these is a no: "not right", "that's not correct", "not it".
_NEGATABLE = frozenset({"correct", "right", "true", "it", "that", "exactly", "really"})
# A bare "not" after one of these is a no too: "it is not", "it's not."
_NEGATED_VERBS = frozenset({"is", "was", "does", "do", "am", "are"})
_CONTRACTIONS = {
    "isn't": "is not",
    "wasn't": "was not",
    "don't": "do not",
    "doesn't": "does not",
    "aren't": "are not",
    "it's": "it is",
    "that's": "that is",
    "i'm": "i am",
}


_ANSWERS = answer_table(_YES_PHRASES, _NO_PHRASES, _NEUTRAL_PHRASES)


def _answer_words(text: str) -> list[str]:
    words: list[str] = []
    for word in re.findall(r"[a-z]+(?:'[a-z]+)?", text.lower().replace("-", " ")):
        words.extend(_CONTRACTIONS.get(word, word).split())
    return words


def parse_yes_no(text: str) -> bool | None:
    """True for yes, False for no, None when the caller said neither.

    Yes: yes, yeah, yep, sure, correct, right, that's right, affirmative, of course, okay …
    No: no, nope, wrong, incorrect, not right, that's not correct, negative, it isn't …
    When the text holds both, the **last** clear answer counts, because callers correct
    themselves ("no, wait, yes" → True; "yes… no, that's wrong" → False). Multi-word phrases
    are matched as a whole: "no problem" is a yes; "not sure" and "I don't know" are no answer.
    """
    return last_answer(_answer_words(text), _ANSWERS, _negation)


def _negation(words: Sequence[str], i: int) -> int | None:
    """Where a "not" says no: "not correct" (ends at "correct"), "it is not" (ends at
    "not"); else None."""
    if words[i] != "not":
        return None
    if _at(words, i + 1) in _NEGATABLE:
        return i + 1
    if i > 0 and words[i - 1] in _NEGATED_VERBS:
        return i
    return None


_SPOKEN_SYMBOLS = {"+": "plus", "*": "star", "#": "pound"}


def speak_digits(value: str) -> str:
    """Text for the synthesizer to read digit by digit: "4217" → "4 2 1 7".

    Letters are read one by one too ("ab12" → "A B 1 2"); ``+``, ``*`` and ``#`` are spoken
    ("plus", "star", "pound"); any other character (space, ``-``, ``.``, ``/``, brackets)
    separates groups, read with a short pause: "555-0100" → "5 5 5, 0 1 0 0".
    """
    return spell_out(value, lambda char: char, _SPOKEN_SYMBOLS)


# -- menu matching --------------------------------------------------------------------------

FILLER_WORDS = frozenset(
    "uh um er ah eh hmm mm please ok okay so well like i i'd i'm want would to the a an "
    "my me just can you could".split()
)
# What recognizers write for a spoken "yes"/"no" more often than the word itself.
SAME_WORD = {"yeah": "yes", "yep": "yes", "yup": "yes", "yah": "yes", "nope": "no", "nah": "no"}


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation, colloquial yes/no spelled as "yes"/"no"."""
    return split_words(text, SAME_WORD)


# -- the end of an answer -------------------------------------------------------------------

# A number ending like this is most likely on its way ("one hundred … and twenty").
NUMBER_CONTINUING = frozenset({"and", "hundred", "thousand", "million"})

# Words that almost never end a finished answer: after "I would like", "speak to", "my",
# "and" the caller is on their way to the rest, whatever the intonation says. (Smart Turn put
# "I would like" of "I would like … my balance" at 0.96 complete.)
OPEN_ENDINGS = frozenset(
    "a an the my your our his her their its this these those "
    "to of for in on at with from about by into than as "
    "and or but because if when while "
    "is are was were am be been being have has had do does did can could would will "
    "should shall may might must "
    "like want need wanna speak talk check get um uh er erm".split()
)


def ends_open(text: str) -> bool:
    """True when the transcript stops on a word that needs more after it."""
    words = normalize(text)
    return bool(words) and words[-1] in OPEN_ENDINGS


# What makes words a clause, so that a sentence may be over: a finite form of be / have / do
# or a modal, a subject pronoun with a word after it ("I lost", "it broke"), a past form
# ("arrived", "charged") or a polite imperative ("please try").
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


def lacks_verb(text: str) -> bool:
    """True when the words hold no verb yet: "my parcel", "the person at extension" (the
    first halves of answers with a pause in them, which Smart Turn scored up to 0.66
    complete); False for "my parcel did not arrive", "I lost my card", "please try again"."""
    words = normalize(text)
    for i, word in enumerate(words):
        if word in _FINITE or (len(word) > 3 and word.endswith("ed")):
            return False
        if i + 1 < len(words) and (word in _SUBJECTS or word == "please"):
            return False
    return bool(words)


ENGLISH = Language(
    code="en",
    parse_digits=parse_digits,
    parse_number=parse_number,
    parse_yes_no=parse_yes_no,
    speak_digits=speak_digits,
    normalize=normalize,
    filler_words=FILLER_WORDS,
    ends_open=ends_open,
    lacks_verb=lacks_verb,
    number_continuing=NUMBER_CONTINUING,
    yes_no_phrases=("yes", "no"),
    meaning_carriers=("I would like {phrase}", "{phrase}, please", "what about {phrase}"),
)
