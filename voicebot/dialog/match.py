"""Matching what the caller said against the phrases of a state's intents.

Tolerant of case, punctuation, filler words and small recognition errors ("caliphone number"
still matches "telephone number"), because a caller should not have to repeat themselves for
an ASR slip.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

FILLER_WORDS = frozenset(
    "uh um er ah eh hmm mm please ok okay so well like i i'd i'm want would to the a an "
    "my me just can you could".split()
)
# Any script's letters and digits: phrases may be in Korean, Russian, German…
_WORD = re.compile(r"[\w']+")
# Word-level similarity at or above this counts as the same word (one or two letters off).
WORD_SIMILARITY = 0.8


# What recognizers write for a spoken "yes"/"no" more often than the word itself.
SAME_WORD = {"yeah": "yes", "yep": "yes", "yup": "yes", "yah": "yes", "nope": "no", "nah": "no"}


def normalize(text: str) -> list[str]:
    """Lower-case words without punctuation, colloquial yes/no spelled as "yes"/"no"."""
    return [SAME_WORD.get(word, word) for word in _WORD.findall(text.lower())]


def _content_words(words: Sequence[str]) -> list[str]:
    kept = [w for w in words if w not in FILLER_WORDS]
    return kept or list(words)


def _similar(a: str, b: str) -> float:
    return 1.0 if a == b else SequenceMatcher(None, a, b).ratio()


def phrase_score(phrase: str, utterance: str) -> float:
    """1.0 when the phrase's words occur in order in the utterance; less for near misses."""
    wanted = _content_words(normalize(phrase))
    heard = _content_words(normalize(utterance))
    if not wanted or not heard:
        return 0.0
    best = 0.0
    for start in range(len(heard) - len(wanted) + 1):
        window = heard[start : start + len(wanted)]
        score = sum(_similar(w, h) for w, h in zip(wanted, window, strict=True)) / len(wanted)
        best = max(best, score)
    if len(heard) < len(wanted):
        best = max(best, SequenceMatcher(None, " ".join(wanted), " ".join(heard)).ratio() * 0.9)
    return best


@dataclass(frozen=True)
class Match:
    intent: str
    phrase: str
    score: float


def best_match(
    utterance: str, intents: Sequence[tuple[str, Sequence[str]]], threshold: float = WORD_SIMILARITY
) -> Match | None:
    """The intent whose phrase fits the utterance best, if any fits well enough.

    Longer phrases win ties, so "check my account" beats "account" when both match.
    """
    best: Match | None = None
    for intent, phrases in intents:
        for phrase in phrases:
            score = phrase_score(phrase, utterance)
            if score < threshold:
                continue
            candidate = Match(intent=intent, phrase=phrase, score=score)
            if best is None or (score, len(phrase)) > (best.score, len(best.phrase)):
                best = candidate
    return best
