"""Matching what the caller said against the phrases of a state's intents.

Tolerant of case, punctuation, filler words and small recognition errors ("caliphone number"
still matches "telephone number"), because a caller should not have to repeat themselves for
an ASR slip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

from .lang import ENGLISH, Language

# Word-level similarity at or above this counts as the same word (one or two letters off).
WORD_SIMILARITY = 0.8
# Words this short are the same only when spelt the same: one letter more is another word
# ("not" is no "no", "by" no "bye": "can I come by on Sunday" hung up as a goodbye).
SHORT_WORD = 3


def normalize(text: str, language: Language = ENGLISH) -> list[str]:
    """Lower-case words without punctuation, spelled as the language makes them one (English
    "yeah" as "yes", Russian "ё" as "е")."""
    return language.normalize(text)


def _content_words(words: Sequence[str], language: Language) -> list[str]:
    kept = [w for w in words if w not in language.filler_words]
    return kept or list(words)


def _similar(a: str, b: str) -> float:
    if a == b:
        return 1.0
    if min(len(a), len(b)) <= SHORT_WORD:
        return 0.0
    return SequenceMatcher(None, a, b).ratio()


def phrase_score(phrase: str, utterance: str, language: Language = ENGLISH) -> float:
    """1.0 when the phrase's words occur in order in the utterance; less for near misses.
    Filler words and spelling variants are the ``language``'s."""
    wanted = _content_words(language.normalize(phrase), language)
    heard = _content_words(language.normalize(utterance), language)
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
    utterance: str,
    intents: Sequence[tuple[str, Sequence[str]]],
    threshold: float = WORD_SIMILARITY,
    *,
    language: Language = ENGLISH,
) -> Match | None:
    """The intent whose phrase fits the utterance best, if any fits well enough.

    Longer phrases win ties, so "check my account" beats "account" when both match. The
    ``language`` gives the filler words both sides are read without (English by default).
    """
    best: Match | None = None
    for intent, phrases in intents:
        for phrase in phrases:
            score = phrase_score(phrase, utterance, language)
            if score < threshold:
                continue
            candidate = Match(intent=intent, phrase=phrase, score=score)
            if best is None or (score, len(phrase)) > (best.score, len(best.phrase)):
                best = candidate
    return best
