"""A caller's turn as parts: the voiced stretches between their pauses. Pure bookkeeping.

The turn core (``call/turns.py``) decides, at each pause, what the recognizer hears: the whole
turn so far while it is short, only the new part once it is long (the work per turn stays
about the length of its audio). Here are the transcripts that came back, and the words the
turn is decided on: the latest transcript of the whole turn, then the parts decoded on their
own after it.

Both kinds are needed. Whisper tiny.en hears short words far better in their sentence: on
their own, a lone "five" came back "5 5", "an extension" as "next". But over a whole turn it
can lose what follows a pause ("I would like." for "I would like … an extension") or mishear
it ("I would like my mountains"), which the last part decoded on its own gets right: so a
whole-turn transcript that completes no answer is checked against the words before the
pause with the last part's own (``tail_text``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# Whisper writes something for a cough or a breath: "." or, at a tiny score, "You". Measured
# on tests/fixtures/turns: noise scored 0.009-0.09 with no letters but for that one "You";
# the lowest real word 0.05. Text without letters or digits, or scored below this, is no word.
MIN_WORD_CONFIDENCE = 0.02
# Whisper also writes whole sentences for a cough at times. Voice with less pitched audio
# than this (vowels; a cough, a breath or a hiss has none) is a sound, whatever the words.
MIN_PITCHED_S = 0.06
# How a recognizer ends a part the caller merely paused after ("I would like.", "What are
# you?"): a guess at the end of a sentence that the next part shows was none.
_PAUSE_PUNCTUATION = ".?!…"


def has_words(text: str, confidence: float | None) -> bool:
    if not any(c.isalnum() for c in text):
        return False
    return confidence is None or confidence >= MIN_WORD_CONFIDENCE


@dataclass
class Part:
    number: int  # the audio number of the pause that ended it (its Decode's and results')
    pitched_s: float  # pitched voice in it
    alone: str | None = None  # its words, decoded on its own ("" when it has none)
    upto: str | None = None  # the words of the turn up to and with it, decoded together
    alone_asked: bool = False  # its own decode was asked for


class TurnParts:
    """The parts of one turn, in order, and what the recognizer said about them."""

    def __init__(self) -> None:
        self.parts: list[Part] = []

    def add(self, number: int, pitched_s: float) -> int:
        """A new part, ended by pause ``number``; its index."""
        self.parts.append(Part(number, pitched_s))
        return len(self.parts) - 1

    def transcribed(
        self,
        index: int,
        number: int,
        text: str,
        confidence: float | None,
        *,
        cumulative: bool = False,
    ) -> bool:
        """Keep the recognizer's text for part ``index`` (decoded from pause ``number``);
        False if that is not one of this turn's parts. ``cumulative``: the text of the whole
        turn up to that part, else of the part alone. Text with no word, or from voice with
        too little pitch for speech, counts as no words: a cough is not a word."""
        if not 0 <= index < len(self.parts) or self.parts[index].number != number:
            return False
        covered = self.parts[: index + 1] if cumulative else [self.parts[index]]
        words = has_words(text, confidence) and sum(p.pitched_s for p in covered) >= MIN_PITCHED_S
        if cumulative:
            self.parts[index].upto = text.strip() if words else ""
        else:
            self.parts[index].alone = text.strip() if words else ""
        return True

    def text(self) -> str | None:
        """The words of the turn ("" when it has none), None while a transcript they need is
        still to come."""
        return _words(self.parts)

    def tail_text(self, index: int) -> str | None:
        """The words before part ``index``, with its own: None unless both are in (and
        there is a part before it)."""
        alone = self.parts[index].alone if 0 < index < len(self.parts) else None
        before = _words(self.parts[:index]) if alone is not None else None
        return None if alone is None or before is None else _joined([before, alone])


def _words(parts: Sequence[Part]) -> str | None:
    """The latest whole-turn transcript, then the parts after it on their own."""
    start = next((i for i in range(len(parts) - 1, -1, -1) if parts[i].upto is not None), -1)
    texts = [parts[start].upto] if start >= 0 else []
    texts += [part.alone for part in parts[start + 1 :]]
    if any(text is None for text in texts):
        return None
    return _joined([text for text in texts if text is not None])


def _joined(texts: list[str]) -> str:
    """Texts in order, without the full stop (or question mark) a recognizer ended one with
    that the caller only paused after."""
    words = [text for text in texts if text]
    return " ".join([*(w.rstrip(_PAUSE_PUNCTUATION) for w in words[:-1]), *words[-1:]])
