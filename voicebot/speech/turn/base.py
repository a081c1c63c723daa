"""The end-of-turn detector interface."""

from __future__ import annotations

import abc
from typing import Any

import numpy as np


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
    async def probability_complete(self, pcm: np.ndarray) -> float:
        """P(the caller has finished the turn), 0..1, given the whole turn so far.

        ``pcm`` is mono int16 at ``sample_rate``. Only meaningful on audio that contains speech:
        the caller decides that (the VAD), a detector does not.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Free the model and the executor."""
