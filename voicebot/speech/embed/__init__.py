"""Sentence embeddings: texts as vectors whose cosine says how close their meanings are.

What intents by meaning compare (``dialog/meaning.py`` decides, ``call/meaning.py`` asks). An
``Embedder`` loads off the event loop and encodes blocking; its caller runs ``encode`` off the
loop. Without the model installed there is no embedder (``ModelError`` at load), and menus
match by their phrases alone.
"""

from __future__ import annotations

from .base import Embedder
from .use import UseEmbedder

__all__ = ["Embedder", "UseEmbedder"]
