"""The end-of-turn detector interface."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

import numpy as np

# A verdict is the mean over the turn cut at its voice end and this far either side. Smart
# Turn's score for one recording moves a lot with where the cut falls (a 20 ms VAD frame):
# "I lost my card yesterday" scored 0.12, 0.29 and 0.81 cut 20 ms apart; through Asterisk the
# same whole sentence gave 0.63 on one call and 0.30 on the next. Three cuts cost three runs.
END_JITTER_S = 0.02


class TurnDetector(abc.ABC):
    """A loaded end-of-turn model. Blocking work runs in an executor the detector owns."""

    name: str
    sample_rate: int = 16000

    def status(self) -> dict[str, Any]:
        """For /health and /metrics: model loaded, worker threads up, jobs they hold."""
        return {"loaded": True, "workers_alive": True, "queued": 0}

    @abc.abstractmethod
    async def load(self) -> None:
        """Load the model without blocking the event loop. Raises ``ModelError``."""

    @abc.abstractmethod
    async def probabilities_complete(self, turns: Sequence[np.ndarray]) -> list[float]:
        """P(the caller has finished the turn), 0..1, for each of ``turns`` (one batch).

        Each is mono int16 at ``sample_rate``, the whole turn so far. Only meaningful on audio
        that contains speech: the caller decides that (the VAD), a detector does not.
        """

    async def probability_complete(self, pcm: np.ndarray) -> float:
        """P(complete) for one turn that ends where ``pcm`` does."""
        (probability,) = await self.probabilities_complete([pcm])
        return probability

    async def probability_complete_at(self, pcm: np.ndarray, voice_end: int) -> float:
        """P(complete) for the turn whose last voiced sample is ``voice_end`` (``pcm`` may
        go on with silence), averaged over cuts ``END_JITTER_S`` before and after it."""
        if pcm.ndim != 1 or pcm.size == 0:
            raise ValueError(f"expected mono samples, got shape {pcm.shape}")
        step = round(END_JITTER_S * self.sample_rate)
        voice_end = min(max(voice_end, 1), pcm.size)
        cuts = sorted({min(max(voice_end + k * step, 1), pcm.size) for k in (-1, 0, 1)})
        probabilities = await self.probabilities_complete([pcm[:cut] for cut in cuts])
        return float(np.mean(probabilities))

    @abc.abstractmethod
    async def close(self) -> None:
        """Free the model and the executor."""
