"""A sentence embedder for tests of the call plumbing: meaning from keywords, no model loaded.

Each group of keywords is one axis; a text's vector has 1 on the axes of the groups whose
words it holds, and a little on a last axis every text shares (so that a text with no
keyword is a vector too, equally far from every group and close to the ``NON_ANSWERS``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from voicebot.errors import ModelError
from voicebot.speech.embed import Embedder

SHARED = 0.3
_WORDS = re.compile(r"[\w']+")


class KeywordEmbedder(Embedder):
    """``groups``: the keywords of each axis. ``missing``: ``load`` fails as an embedder whose
    package is not installed does; ``broken``: ``encode`` fails after ``load``."""

    name = "keywords"

    def __init__(
        self, groups: Sequence[Sequence[str]], *, missing: bool = False, broken: bool = False
    ) -> None:
        self.groups = [frozenset(word.lower() for word in group) for group in groups]
        self.missing = missing
        self.broken = broken
        self.loaded = False
        self.encoded: list[list[str]] = []  # every batch asked for

    async def load(self) -> None:
        if self.missing:
            raise ModelError("sentence embeddings: the Python package is not installed")
        self.loaded = True

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if not self.loaded:
            raise RuntimeError("not loaded")
        if self.broken:
            raise RuntimeError("embedder exploded")
        self.encoded.append(list(texts))
        vectors = np.zeros((len(texts), len(self.groups) + 1), dtype=np.float32)
        for row, text in enumerate(texts):
            words = set(_WORDS.findall(text.lower()))
            for axis, group in enumerate(self.groups):
                vectors[row, axis] = 1.0 if words & group else 0.0
            vectors[row, -1] = SHARED
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
