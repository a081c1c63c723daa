"""Piper TTS, streamed sentence by sentence, and an LRU cache for fixed prompts."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from ...config import TtsConfig
from ...errors import ModelError
from ...models import resolve_piper_voice
from .base import TtsEngine, split_sentences

log = logging.getLogger(__name__)

# Sentences synthesized ahead of the one being played. One is enough to hide synthesis
# (Piper runs ~15x real time here) and bounds the work wasted on barge-in.
_LOOKAHEAD = 1
# Pause appended between sentences; Piper's own output stops almost at the last phoneme.
_SENTENCE_PAUSE_S = 0.2


class PiperTts(TtsEngine):
    name = "piper"

    def __init__(self, config: TtsConfig) -> None:
        self._config = config
        self._voice: Any = None
        self._rate = 0
        self._executor: ThreadPoolExecutor | None = None
        self.voice = config.voice or "bundled"
        # Sentences actually run through the model; tests use it to see cancellation work.
        self.sentences_synthesized = 0

    @property
    def sample_rate(self) -> int:
        if not self._rate:
            raise RuntimeError("PiperTts.load() must be awaited before sample_rate is known")
        return self._rate

    async def load(self) -> None:
        if self._voice is not None:
            return
        path = resolve_piper_voice(self._config.voice)
        # One thread: concurrent calls' sentences interleave instead of fighting for 2 cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")
        loop = asyncio.get_running_loop()
        try:
            self._voice = await loop.run_in_executor(self._executor, _load_voice, str(path))
        except Exception as exc:
            await self.close()
            raise ModelError(f"cannot load Piper voice {path}: {exc}") from exc
        self._rate = int(self._voice.config.sample_rate)
        self.voice = path.stem
        log.info("piper voice %s loaded (%d Hz)", path, self._rate)

    async def close(self) -> None:
        executor, self._executor = self._executor, None
        self._voice = None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        if self._voice is None or self._executor is None:
            raise RuntimeError("PiperTts is not loaded (or already closed)")
        sentences = split_sentences(text)
        loop = asyncio.get_running_loop()
        executor = self._executor
        pending: list[asyncio.Future[np.ndarray]] = []
        next_index = 0

        def submit_ahead() -> None:
            nonlocal next_index
            while next_index < len(sentences) and len(pending) <= _LOOKAHEAD:
                last = next_index == len(sentences) - 1
                pending.append(
                    loop.run_in_executor(executor, self._synthesize, sentences[next_index], last)
                )
                next_index += 1

        try:
            submit_ahead()
            while pending:
                audio = await pending[0]
                pending.pop(0)
                submit_ahead()  # start sentence n+1 before handing sentence n out
                if len(audio):
                    yield audio
        finally:
            # Barge-in or early close: sentences not yet started are never run; the one in
            # the worker thread finishes (Piper cannot be interrupted) and is dropped.
            for future in pending:
                future.cancel()

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


class CachedTts(TtsEngine):
    """In-memory LRU of whole synthesized texts in front of another engine.

    Meant for fixed prompts that every call plays: a hit costs no synthesis at all. A stream
    that is cancelled before its end is not stored, so the cache never holds cut-off audio.
    """

    def __init__(self, inner: TtsEngine, max_entries: int = 256) -> None:
        self._inner = inner
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, str, str], tuple[np.ndarray, ...]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @property
    def name(self) -> str:  # type: ignore[override]
        return self._inner.name

    @property
    def voice(self) -> str:  # type: ignore[override]
        return self._inner.voice

    @property
    def sample_rate(self) -> int:
        return self._inner.sample_rate

    async def load(self) -> None:
        await self._inner.load()

    async def close(self) -> None:
        self._entries.clear()
        await self._inner.close()

    def __len__(self) -> int:
        return len(self._entries)

    async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        key = (self._inner.name, self._inner.voice, text)
        cached = self._entries.get(key)
        if cached is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            for chunk in cached:
                yield chunk
            return
        self.misses += 1
        chunks: list[np.ndarray] = []
        async for chunk in self._inner.stream(text):
            chunk.setflags(write=False)  # shared by every later caller: must not be edited
            chunks.append(chunk)
            yield chunk
        self._store(key, tuple(chunks))

    async def warm(self, texts: Iterable[str]) -> None:
        """Synthesize fixed prompts now (at startup) so the first caller hears them at once."""
        for text in texts:
            if (self._inner.name, self._inner.voice, text) not in self._entries:
                async for _chunk in self.stream(text):
                    pass

    def _store(self, key: tuple[str, str, str], chunks: tuple[np.ndarray, ...]) -> None:
        if self._max <= 0:
            return
        self._entries[key] = chunks
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
