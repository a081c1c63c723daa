"""Small, deterministic speech engines for tests of the call plumbing (no models loaded).

They implement the real interfaces; tests that need real recognition or synthesis use the
real engines (marked slow) instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import numpy as np

from voicebot.speech.asr.base import AsrEngine, Recognizer, Transcript
from voicebot.speech.tts.base import TtsEngine, split_sentences
from voicebot.speech.turn.base import TurnDetector

TONE_HZ = 440.0


class ToneTts(TtsEngine):
    """Speaks every text as a tone of ``seconds_per_char`` per character, in two chunks."""

    name = "tone"

    def __init__(self, seconds_per_char: float = 0.01, rate: int = 16000) -> None:
        self.rate = rate
        self.seconds_per_char = seconds_per_char
        self.spoken: list[str] = []

    @property
    def sample_rate(self) -> int:
        return self.rate

    async def load(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        self.spoken.append(text)
        samples = int(len(text) * self.seconds_per_char * self.rate)
        t = np.arange(samples) / self.rate
        tone = (np.sin(2 * np.pi * TONE_HZ * t) * 8000).astype(np.int16)
        half = samples // 2
        yield tone[:half]
        yield tone[half:]


class _ListRecognizer(Recognizer):
    def __init__(self, engine: ListAsr) -> None:
        self.engine = engine

    async def feed(self, pcm: np.ndarray) -> Transcript | None:
        self.engine.audio_seconds.append(len(pcm) / 16000)
        return None

    async def finish(self) -> Transcript:
        text = self.engine.answers.pop(0) if self.engine.answers else ""
        return Transcript(text=text, is_final=True)


class ListAsr(AsrEngine):
    """Returns the given texts, one per utterance, then empty transcripts."""

    name = "list"
    sample_rate = 16000

    def __init__(self, answers: Sequence[str]) -> None:
        self.answers = list(answers)
        self.audio_seconds: list[float] = []

    async def load(self) -> None:
        return None

    def recognizer(
        self, phrases: Sequence[str] | None = None, *, grammar: bool = False
    ) -> Recognizer:
        return _ListRecognizer(self)

    async def close(self) -> None:
        return None


class BrokenTts(ToneTts):
    """Fails on the first text, like a voice model that cannot be run."""

    async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        raise RuntimeError("voice model exploded")
        yield np.zeros(0, dtype=np.int16)  # pragma: no cover - makes this an async generator


class StreamingListAsr(ListAsr):
    """Like ListAsr, but fed while the caller speaks, as a streaming engine (Vosk) is."""

    name = "streaming-list"
    streaming = True

    def __init__(self, answers: Sequence[str]) -> None:
        super().__init__(answers)
        self.feeds = 0

    def recognizer(
        self, phrases: Sequence[str] | None = None, *, grammar: bool = False
    ) -> Recognizer:
        engine = self

        class _Streaming(_ListRecognizer):
            peeked = False

            async def feed(self, pcm: np.ndarray) -> Transcript | None:
                engine.feeds += 1
                return await super().feed(pcm)

            async def peek(self) -> Transcript | None:
                # The turn's answer so far; it is used up when the turn's stream ends.
                self.peeked = True
                return Transcript(engine.answers[0] if engine.answers else "", is_final=False)

            def close(self) -> None:
                if self.peeked and engine.answers:
                    engine.answers.pop(0)

        return _Streaming(self)


class RecordingDetector(TurnDetector):
    """Scores a turn by its length, and keeps what it was asked."""

    name = "recording"

    def __init__(self) -> None:
        self.asked: list[int] = []

    async def load(self) -> None:
        pass

    async def probabilities_complete(self, turns: Sequence[np.ndarray]) -> list[float]:
        self.asked += [pcm.size for pcm in turns]
        return [pcm.size / 10_000 for pcm in turns]

    async def close(self) -> None:
        pass


class CountingTts(TtsEngine):
    """A fake engine with a fingerprintable voice that counts how often it is asked."""

    name = "fake"

    def __init__(self, fingerprint: str = "model-a:1234:5678") -> None:
        self.calls = 0
        self.voice = "fake-voice"
        self.cache_fingerprint = fingerprint

    @property
    def sample_rate(self) -> int:
        return 16000

    async def load(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        self.calls += 1
        for n, sentence in enumerate(split_sentences(text)):
            await asyncio.sleep(0)
            # Distinct, text-dependent samples so a mix-up would show.
            yield (np.arange(len(sentence) * 100, dtype=np.int16) + n * 7 + len(text)).astype(
                np.int16
            )
