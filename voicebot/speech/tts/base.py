"""The text-to-speech engine interface and the sentence splitter engines share.

Engines stream: the dialog starts playing the first sentence while later ones are still being
synthesized, which is what keeps the robot's reply latency at "one sentence", not "one reply".
"""

from __future__ import annotations

import abc
import asyncio
import re
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import Executor
from typing import Any

import numpy as np

# Sentences synthesized ahead of the one being played. One is enough to hide synthesis (Piper
# runs ~15x, RHVoice ~45x real time here) and bounds the work wasted on barge-in.
LOOKAHEAD = 1


async def synthesize_ahead(
    sentences: Sequence[str],
    synthesize: Callable[[str, bool], np.ndarray | None],
    executor: Executor,
) -> AsyncGenerator[np.ndarray, None]:
    """Each sentence's audio in order, ``synthesize(sentence, last)`` run in ``executor``, the
    next sentence started before the current one is handed out. Closing or cancelling the
    iteration (barge-in) cancels the sentences not started; the one running finishes unless
    the engine can stop it (its ``synthesize`` returns None or empty then)."""
    loop = asyncio.get_running_loop()
    pending: list[asyncio.Future[np.ndarray | None]] = []
    next_index = 0

    def submit_ahead() -> None:
        nonlocal next_index
        while next_index < len(sentences) and len(pending) <= LOOKAHEAD:
            last = next_index == len(sentences) - 1
            pending.append(loop.run_in_executor(executor, synthesize, sentences[next_index], last))
            next_index += 1

    try:
        submit_ahead()
        while pending:
            audio = await pending[0]
            pending.pop(0)
            submit_ahead()  # start sentence n+1 before handing sentence n out
            if audio is not None and len(audio):
                yield audio
    finally:
        for future in pending:
            future.cancel()


class TtsEngine(abc.ABC):
    name: str
    # Identifies the voice within the engine; part of cache keys so two voices never mix.
    voice: str = ""

    def status(self) -> dict[str, Any]:
        """For /health and /metrics: model loaded, worker threads up, jobs they hold."""
        return {"loaded": True, "workers_alive": True, "queued": 0}

    @property
    @abc.abstractmethod
    def sample_rate(self) -> int:
        """Rate of the chunks ``stream`` yields (known after ``load``)."""

    @abc.abstractmethod
    async def load(self) -> None:
        """Load the voice without blocking the event loop. Raises ``ModelError``."""

    @abc.abstractmethod
    def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        """Yield mono int16 chunks at ``sample_rate``. Closing or cancelling the iteration
        stops synthesis (barge-in); use ``contextlib.aclosing`` when breaking out early."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Free the voice and any worker threads."""

    async def synthesize(self, text: str) -> np.ndarray:
        """The whole text as one array (for caching and tests)."""
        chunks = [chunk async for chunk in self.stream(text)]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


# Words whose trailing period does not end a sentence. Lower case, without the period.
# Ordinary words that often end a sentence ("no", "sun") are deliberately left out.
_ABBREVIATIONS = frozenset(
    "dr mr mrs ms prof sr jr st mt ft nr vs etc eg ie approx dept inc ltd co corp "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue wed thu fri "
    "e.g i.e a.m p.m u.s".split()
)
# Sentence-ending punctuation (runs like "?!" or "..." count once), optionally followed by
# closing quotes/brackets, then whitespace or the end of the text. "3.5" has no whitespace
# after its period, so it never matches.
_END = re.compile(r"[.!?;]+[\"')\]]*(?=\s|$)")
# A sentence longer than this is synthesized in pieces cut at a comma or a space: one
# synthesis job (the engine's thread is shared by every call) then stays short, and Piper's
# memory stays near what ordinary sentences take (measured here: 60 such sentences in a row
# left the process at 335 MB in pieces of 80 characters, 431 MB in 120, 560 MB in 200, and
# took 11 s against 17 s). 120 keeps every sentence of the shipped scripts whole.
MAX_SENTENCE_CHARS = 120
_PIECE_BREAKS = (", ", ": ", " - ", " ")


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Split on . ! ? ; keeping abbreviations ("Dr.", "e.g.") and numbers ("3.5") intact; a
    sentence over ``max_chars`` is cut into pieces at commas or spaces."""
    sentences: list[str] = []
    start = 0
    for match in _END.finditer(text):
        if match.group().startswith(".") and _is_abbreviation(text[start : match.start()]):
            continue
        sentences.append(text[start : match.end()])
        start = match.end()
    sentences.append(text[start:])
    return [piece for s in _clean(sentences) for piece in _pieces(s, max_chars)]


def _pieces(sentence: str, max_chars: int) -> list[str]:
    pieces: list[str] = []
    while len(sentence) > max_chars:
        window = sentence[: max_chars + 1]
        cut = next(
            (window.rfind(b) + len(b.rstrip()) for b in _PIECE_BREAKS if window.rfind(b) > 0),
            max_chars,
        )
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    pieces.append(sentence)
    return [p for p in pieces if _speakable(p)]


def _is_abbreviation(before: str) -> bool:
    words = before.split()
    if not words:
        return False
    word = words[-1].lower().lstrip("(\"'")
    # A single letter is an initial ("J. Smith"), never a sentence by itself.
    return word in _ABBREVIATIONS or (len(word) == 1 and word.isalpha())


def _clean(sentences: Iterable[str]) -> list[str]:
    return [s for s in (" ".join(part.split()) for part in sentences) if _speakable(s)]


def _speakable(sentence: str) -> bool:
    # "..." or a stray ";" alone would make the synthesizer emit a click of silence.
    return any(c.isalnum() for c in sentence)
