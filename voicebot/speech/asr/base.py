"""The speech-recognition engine interface.

Shaped for a streaming engine (partial results while the caller speaks) so that Vosk fits
without changes; a batch engine like Whisper simply buffers in ``feed`` and works in
``finish``. One ``AsrEngine`` (the loaded model) serves many ``Recognizer``s (one per call).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Transcript:
    text: str
    is_final: bool
    # Engine-specific 0..1 score, None when the engine gives none.
    confidence: float | None = None
    # Wall-clock seconds the engine spent, for latency logs.
    processing_s: float = 0.0


class Recognizer(abc.ABC):
    """Recognition state for one utterance at a time; reusable after ``finish``."""

    @abc.abstractmethod
    async def feed(self, pcm: np.ndarray) -> Transcript | None:
        """Add mono int16 audio at the engine's sample rate; maybe return a partial result."""

    @abc.abstractmethod
    async def finish(self) -> Transcript:
        """The final result for the audio fed since the last ``finish``; resets for reuse."""

    async def peek(self) -> Transcript | None:
        """What the audio fed so far says, without ending the utterance (the caller may go
        on): a streaming engine's speculative result. None from engines that can only decode
        a whole utterance."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most recognizers hold nothing
        """Release per-recognizer resources."""


class AsrEngine(abc.ABC):
    """A loaded recognition model. Blocking work runs in an executor the engine owns."""

    name: str
    sample_rate: int = 16000
    # True: feed audio while the caller speaks (partials, little work left at the end);
    # False: hand over the whole utterance when it has ended.
    streaming: bool = False
    # The most audio one decode may be given, in seconds (None: no limit); the caller cuts
    # longer audio into pieces.
    max_audio_s: float | None = None

    def status(self) -> dict[str, Any]:
        """For /health and /metrics: model loaded, worker threads up, jobs they hold."""
        return {"loaded": True, "workers_alive": True, "queued": 0}

    @abc.abstractmethod
    async def load(self) -> None:
        """Load the model without blocking the event loop. Raises ``ModelError``."""

    @abc.abstractmethod
    def recognizer(
        self, phrases: Sequence[str] | None = None, *, grammar: bool = False
    ) -> Recognizer:
        """A recognizer for one call. ``phrases`` are the answers the dialog expects now,
        which an engine may use as a hint; ``grammar`` (the script's ``grammar: true``) asks
        to restrict recognition to them where the engine can."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Free the model and the executor."""


def check_pcm(pcm: np.ndarray) -> None:
    """Reject audio in the wrong internal format early, with a readable message."""
    if pcm.ndim != 1 or pcm.dtype != np.int16:
        raise ValueError(f"expected mono int16 samples, got {pcm.dtype} with shape {pcm.shape}")
