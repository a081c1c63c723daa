"""The sentence-embedding interface."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np


class Embedder(abc.ABC):
    """A loaded sentence-embedding model, the same for every language it knows."""

    name: str

    @abc.abstractmethod
    async def load(self) -> None:
        """Load the model without blocking the event loop. Raises ``ModelError``."""

    @abc.abstractmethod
    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """The vectors of ``texts``, one L2-normalised float32 row each (``(0, dim)`` for
        none). Blocking, a few milliseconds a sentence: run it off the event loop."""
