"""Piper TTS, streamed sentence by sentence."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from ...config import TtsConfig
from ...errors import ModelError
from ..discovery import resolve_piper_voice
from ..workers import Worker, worker_status
from .base import TtsEngine, split_sentences, synthesize_ahead
from .cache import CachedTts as CachedTts  # re-exported: its old home

__all__ = ["CachedTts", "PiperTts"]

log = logging.getLogger(__name__)

# Pause appended between sentences; Piper's own output stops almost at the last phoneme.
_SENTENCE_PAUSE_S = 0.2


class PiperTts(TtsEngine):
    name = "piper"

    def __init__(self, config: TtsConfig) -> None:
        self._config = config
        self._voice: Any = None
        self._rate = 0
        self._executor: Worker | None = None
        self.voice = config.voice or "bundled"
        self._fingerprint = ""
        # Sentences actually run through the model; tests use it to see cancellation work.
        self.sentences_synthesized = 0

    @property
    def sample_rate(self) -> int:
        if not self._rate:
            raise RuntimeError("PiperTts.load() must be awaited before sample_rate is known")
        return self._rate

    @property
    def cache_fingerprint(self) -> str:
        """Exactly which voice and settings produce this engine's audio (for ``CachedTts``);
        empty until ``load``."""
        return self._fingerprint

    async def load(self) -> None:
        if self._voice is not None:
            return
        path = resolve_piper_voice(self._config.voice)
        # One thread: concurrent calls' sentences interleave instead of fighting for 2 cores.
        self._executor = Worker(1, "piper")
        loop = asyncio.get_running_loop()
        try:
            self._voice = await loop.run_in_executor(self._executor, _load_voice, str(path))
            self._fingerprint = await loop.run_in_executor(self._executor, _fingerprint, path)
        except Exception as exc:
            await self.close()
            raise ModelError(f"cannot load Piper voice {path}: {exc}") from exc
        self._rate = int(self._voice.config.sample_rate)
        self.voice = path.stem
        log.info("piper voice %s loaded (%d Hz)", path, self._rate)

    def status(self) -> dict[str, Any]:
        return worker_status(self._executor, self._voice is not None)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        self._voice = None
        self._fingerprint = ""
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        if self._voice is None or self._executor is None:
            raise RuntimeError("PiperTts is not loaded (or already closed)")
        # Barge-in or early close: sentences not yet started are never run; the one in the
        # worker thread finishes (Piper cannot be interrupted) and is dropped.
        chunks = synthesize_ahead(split_sentences(text), self._synthesize, self._executor)
        async with aclosing(chunks):
            async for audio in chunks:
                yield audio

    def _synthesize(self, sentence: str, last: bool) -> np.ndarray:
        # Runs in the worker thread.
        started = time.perf_counter()
        parts = [chunk.audio_int16_array for chunk in self._voice.synthesize(sentence)]
        if not last:
            parts.append(np.zeros(int(_SENTENCE_PAUSE_S * self._rate), dtype=np.int16))
        self.sentences_synthesized += 1
        audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
        log.debug("piper: %d ms for %r", (time.perf_counter() - started) * 1000, sentence)
        return audio


def _load_voice(path: str) -> Any:
    from piper import PiperVoice  # heavy import (onnxruntime), only when used

    voice = PiperVoice.load(path)
    # The first synthesis pays for espeak and onnxruntime set-up; not the first caller's.
    for _chunk in voice.synthesize("Hello."):
        pass
    return voice


def _fingerprint(path: Path) -> str:
    """The model file's identity, a hash of its JSON config, the piper version and our own
    synthesis settings: if any of them changes, cached audio no longer matches."""
    stat = path.stat()
    config = Path(f"{path}.json")  # where PiperVoice.load looks for it
    try:
        piper_version = metadata.version("piper-tts")
    except metadata.PackageNotFoundError:
        piper_version = "unknown"
    return json.dumps(
        {
            "model": str(path.resolve()),
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "config_sha256": hashlib.sha256(config.read_bytes()).hexdigest(),
            "piper": piper_version,
            "synthesis": "default",
            "sentence_pause_s": _SENTENCE_PAUSE_S,
        },
        sort_keys=True,
    )
