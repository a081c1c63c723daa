"""Prompt cache in front of a TTS engine: an in-memory LRU plus, for fixed prompts, a disk cache.

Which texts reach the disk
    Only *fixed* texts: those passed to ``warm()`` or ``mark_fixed()`` (the scripts' prompts that
    need no templating). Everything else the dialog renders — texts that may carry a caller's
    name, number or booking — is cached in memory only and never written to disk, and the disk
    is not even consulted for it.

Disk layout
    One file per (engine, voice fingerprint, sample rate, text), named ``<sha256 of key>.pcm``:
    a magic line, a little-endian u32 header length, a JSON header (key, text, rate, chunk
    lengths, crc32 of the audio) and then the raw int16 PCM at the engine's rate. A file whose
    magic, key, rate, length or checksum does not match is ignored, and the prompt is
    synthesized again and the file rewritten. Writes go to a temporary file and are renamed
    into place (``os.replace``), so a reader never sees half a file, even from another process.
    All file I/O runs on one worker thread, never on the event loop.

Memory bound
    The LRU holds at most ``max_entries`` texts and ``memory_max_bytes`` of audio. A templated
    text is kept in memory only when its audio is short (``MAX_TEMPLATED_AUDIO_S``, e.g. "You
    said 4 2 1"): a long rendered answer (a webhook's text) is streamed and forgotten, so one
    call's runaway prompt never fills memory or evicts every call's fixed prompts.

Size bound
    After each write the directory is trimmed to ``disk_max_bytes`` by deleting the files with
    the oldest mtime; a disk hit refreshes its file's mtime, so this is least-recently-used.

The voice must be identified exactly, or another voice's audio could be played: the disk layer
is used only when the inner engine implements ``Fingerprinted`` (``PiperTts`` does: model path,
size, mtime, a hash of its JSON config, the piper version and the synthesis settings).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import struct
import tempfile
import time
import zlib
from collections import OrderedDict
from collections.abc import AsyncGenerator, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ...logtext import caller_text
from .base import TtsEngine

log = logging.getLogger(__name__)

DEFAULT_DISK_MAX_BYTES = 200 * 1024 * 1024
DEFAULT_MEMORY_MAX_BYTES = 64 * 1024 * 1024
MAX_TEMPLATED_AUDIO_S = 10.0
# Bump when the file layout or anything else that changes the audio without changing the
# engine's fingerprint is altered; old files then simply stop matching and age out.
_FORMAT = 1
_MAGIC = b"VOICEBOT-TTS-CACHE\n"
_SUFFIX = ".pcm"
_TMP_PREFIX = ".tmp-"
# A temporary file older than this was left by a writer that died; eviction removes it.
_STALE_TMP_S = 600.0

_Chunks = tuple[np.ndarray, ...]
# A prompt head is cut where its audio falls below this RMS (10 ms blocks), plus a short gap.
_HEAD_SILENCE_RMS = 100.0
_HEAD_GAP_S = 0.06


def _trim_trailing_silence(audio: np.ndarray, rate: int) -> np.ndarray:
    block = rate // 100
    count = audio.size // block
    if count == 0:
        return audio.copy()
    squares = audio[: count * block].astype(np.float64).reshape(count, block) ** 2
    loud = np.nonzero(np.sqrt(squares.mean(axis=1)) > _HEAD_SILENCE_RMS)[0]
    if loud.size == 0:
        return audio.copy()
    end = min(audio.size, (loud[-1] + 1) * block + int(_HEAD_GAP_S * rate))
    return audio[:end].copy()


@runtime_checkable
class Fingerprinted(Protocol):
    """An engine that can name its exact voice and synthesis settings (empty: not known yet)."""

    @property
    def cache_fingerprint(self) -> str: ...


class CachedTts(TtsEngine):
    """In-memory LRU of whole synthesized texts, backed by a disk cache for fixed prompts.

    ``stream(text)`` serves, in order: the memory LRU; the disk (fixed texts only; loads the
    file, fills memory, never calls the inner engine); else the inner engine, handing each chunk
    on as soon as it arrives. Audio is stored only when the inner stream ran to its end, so a
    barge-in (cancelled or closed stream) never leaves cut-off audio in either cache.

    ``cache_dir=None`` (or ``""``) disables the disk layer.
    """

    def __init__(
        self,
        inner: TtsEngine,
        max_entries: int = 256,
        cache_dir: str | os.PathLike[str] | None = None,
        disk_max_bytes: int = DEFAULT_DISK_MAX_BYTES,
        memory_max_bytes: int = DEFAULT_MEMORY_MAX_BYTES,
    ) -> None:
        self._inner = inner
        self._max = max_entries
        self._memory_max = memory_max_bytes
        self._memory_bytes = 0
        self._dir = Path(cache_dir) if cache_dir else None
        self._disk_max = disk_max_bytes
        self._entries: OrderedDict[str, _Chunks] = OrderedDict()
        self._fixed: set[str] = set()
        # Fixed words templated prompts start with, synthesized alone, trailing silence cut.
        self._heads: dict[str, _Chunks] = {}
        self._io: ThreadPoolExecutor | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self.memory_hits = 0
        self.disk_hits = 0
        self.misses = 0

    # -- TtsEngine ------------------------------------------------------------------------

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

    def status(self) -> dict[str, Any]:
        return self._inner.status()

    async def close(self) -> None:
        await self.flush()
        io, self._io = self._io, None
        if io is not None:
            io.shutdown(wait=True)
        self._entries.clear()
        self._memory_bytes = 0
        await self._inner.close()

    async def stream(self, text: str) -> AsyncGenerator[np.ndarray, None]:
        key = self._key(text)
        cached = self._entries.get(key)
        if cached is not None:
            self.memory_hits += 1
            self._entries.move_to_end(key)
            for chunk in cached:
                yield chunk
            return
        if self._disk_enabled(text):
            cached = await self._read_disk(key)
            if cached is not None:
                self.disk_hits += 1
                self._store_memory(key, cached, fixed=True)
                for chunk in cached:
                    yield chunk
                return
        self.misses += 1
        head = self._head_of(text)
        if head is not None:
            # aclosing: a barge-in that closes this stream must stop the synthesis too.
            async with contextlib.aclosing(self._after_head(head, text)) as spliced:
                async for chunk in spliced:
                    yield chunk
            return
        chunks: list[np.ndarray] = []
        async for chunk in self._inner.stream(text):
            chunk.setflags(write=False)  # shared by every later caller: must not be edited
            chunks.append(chunk)
            yield chunk
        # Only reached when the inner stream ended by itself: the audio is the whole text.
        complete = tuple(chunks)
        self._store_memory(key, complete, fixed=text in self._fixed)
        if self._disk_enabled(text):
            # In the background: the caller's prompt is over and must not wait for the disk.
            task = asyncio.create_task(self._write_quietly(key, text, complete))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    # -- cache control --------------------------------------------------------------------

    @property
    def hits(self) -> int:
        """Memory and disk hits together: streams that did not call the inner engine."""
        return self.memory_hits + self.disk_hits

    def __len__(self) -> int:
        return len(self._entries)

    def mark_fixed(self, texts: Iterable[str]) -> None:
        """Allow these texts on disk (they are script constants, never personal data)."""
        self._fixed.update(texts)

    async def warm(self, texts: Iterable[str]) -> None:
        """Mark ``texts`` fixed and get each into memory now (at startup) — from disk when it
        was synthesized by an earlier run, else by synthesizing it — so the first caller hears
        it at once. Returns once the disk copies are written."""
        texts = list(texts)
        self.mark_fixed(texts)
        for text in texts:
            if self._key(text) not in self._entries:
                async for _chunk in self.stream(text):
                    pass
                await self.flush()  # one prompt at a time: keeps disk use and LRU order simple

    async def warm_heads(self, heads: Iterable[str]) -> None:
        """Synthesize the fixed words templated prompts start with ("You said"): a text that
        starts with one plays it from memory at once while its rest is synthesized."""
        for head in heads:
            if head in self._heads:
                continue
            self.mark_fixed([head])
            chunks = [chunk async for chunk in self.stream(head)]
            await self.flush()
            audio = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
            trimmed = _trim_trailing_silence(audio, self.sample_rate)
            trimmed.setflags(write=False)
            self._heads[head] = (trimmed,)

    def _head_of(self, text: str) -> str | None:
        """The longest warmed head ``text`` starts with, followed by more words."""
        found = [h for h in self._heads if text.startswith(h + " ") and text[len(h) :].strip()]
        return max(found, key=len) if found else None

    async def _after_head(self, head: str, text: str) -> AsyncGenerator[np.ndarray, None]:
        """The head from memory, then the rest of ``text`` synthesized meanwhile. The spliced
        result is not kept: its head already plays at once, and its rest holds callers' data."""
        chunks: asyncio.Queue[np.ndarray | None] = asyncio.Queue()

        async def synthesize_rest() -> None:
            try:
                async for chunk in self._inner.stream(text[len(head) :].strip()):
                    chunks.put_nowait(chunk)
            finally:
                chunks.put_nowait(None)

        rest = asyncio.create_task(synthesize_rest(), name="tts-after-head")
        try:
            for chunk in self._heads[head]:
                yield chunk
            while (piece := await chunks.get()) is not None:
                yield piece
            await rest  # its error, if it failed, is the caller's
        finally:
            if not rest.done():
                rest.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await rest

    async def flush(self) -> None:
        """Wait for disk writes still in progress."""
        while self._writes:
            await asyncio.gather(*self._writes, return_exceptions=True)

    # -- internals ------------------------------------------------------------------------

    def _fingerprint(self) -> str | None:
        inner = self._inner
        return (inner.cache_fingerprint or None) if isinstance(inner, Fingerprinted) else None

    def _key(self, text: str) -> str:
        fingerprint = self._fingerprint()
        return json.dumps(
            {
                "format": _FORMAT,
                "engine": self._inner.name,
                "voice": self._inner.voice if fingerprint is None else fingerprint,
                "rate": self._inner.sample_rate,
                "text": text,
            },
            sort_keys=True,
            ensure_ascii=False,
        )

    def _disk_enabled(self, text: str) -> bool:
        return self._dir is not None and text in self._fixed and self._fingerprint() is not None

    @property
    def memory_bytes(self) -> int:
        """Audio held by the memory LRU."""
        return self._memory_bytes

    def _store_memory(self, key: str, chunks: _Chunks, *, fixed: bool) -> None:
        size = sum(chunk.nbytes for chunk in chunks)
        samples = size // np.dtype(np.int16).itemsize
        too_long = not fixed and samples > MAX_TEMPLATED_AUDIO_S * self._inner.sample_rate
        if self._max <= 0 or too_long or size > self._memory_max:
            return
        if key in self._entries:
            self._memory_bytes -= sum(chunk.nbytes for chunk in self._entries.pop(key))
        self._entries[key] = chunks
        self._memory_bytes += size
        while len(self._entries) > self._max or self._memory_bytes > self._memory_max:
            _key, evicted = self._entries.popitem(last=False)
            self._memory_bytes -= sum(chunk.nbytes for chunk in evicted)

    def _executor(self) -> ThreadPoolExecutor:
        # One thread: writes and evictions of this process never race each other.
        if self._io is None:
            self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts-cache")
        return self._io

    async def _read_disk(self, key: str) -> _Chunks | None:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor(), self._read, key)
        except Exception as exc:  # the disk is an optimisation: synthesize instead
            log.warning("tts cache: cannot read: %s", exc)
            return None

    async def _write_quietly(self, key: str, text: str, chunks: _Chunks) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(self._executor(), self._write, key, text, chunks)
        except Exception as exc:  # a full or read-only disk must never break a call
            log.warning("tts cache: cannot write %s: %s", caller_text(text, log), exc)

    def _path(self, key: str) -> Path:
        assert self._dir is not None
        return self._dir / (hashlib.sha256(key.encode()).hexdigest() + _SUFFIX)

    # The methods below run on the cache's worker thread.

    def _read(self, key: str) -> _Chunks | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("tts cache: cannot read %s: %s", path, exc)
            return None
        chunks = self._decode(data, key)
        if chunks is None:
            log.warning("tts cache: ignoring corrupt or foreign file %s", path)
            return None
        with contextlib.suppress(OSError):
            _touch(path)  # recently used: evicted last
        return chunks

    def _decode(self, data: bytes, key: str) -> _Chunks | None:
        if not data.startswith(_MAGIC) or len(data) < len(_MAGIC) + 4:
            return None
        start = len(_MAGIC) + 4
        (header_len,) = struct.unpack("<I", data[len(_MAGIC) : start])
        try:
            header = json.loads(data[start : start + header_len].decode())
            lengths = [int(n) for n in header["chunks"]]
            ok = (
                header["key"] == key
                and header["rate"] == self._inner.sample_rate
                and header["crc32"] == zlib.crc32(data[start + header_len :])
            )
        except (ValueError, KeyError, TypeError):
            return None
        pcm = data[start + header_len :]
        if not ok or min(lengths, default=0) < 0 or sum(lengths) * 2 != len(pcm):
            return None
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.int16)
        audio.setflags(write=False)
        bounds = np.cumsum(lengths)[:-1]
        return tuple(np.split(audio, bounds)) if lengths else ()

    def _write(self, key: str, text: str, chunks: _Chunks) -> None:
        assert self._dir is not None
        pcm = b"".join(np.asarray(c, dtype="<i2").tobytes() for c in chunks)
        header = json.dumps(
            {
                "key": key,
                "text": text,
                "rate": self._inner.sample_rate,
                "chunks": [len(c) for c in chunks],
                "crc32": zlib.crc32(pcm),
            },
            ensure_ascii=False,
        ).encode()
        data = _MAGIC + struct.pack("<I", len(header)) + header + pcm
        if len(data) > self._disk_max:
            return
        self._dir.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_SUFFIX, dir=self._dir)
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        _touch(path)
        self._evict()

    def _evict(self) -> None:
        assert self._dir is not None
        now = time.time()
        files: list[tuple[int, int, Path]] = []
        for entry in os.scandir(self._dir):
            if not entry.is_file(follow_symlinks=False) or not entry.name.endswith(_SUFFIX):
                continue
            try:
                stat = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # removed by another process meanwhile
                continue
            if entry.name.startswith(_TMP_PREFIX):
                if now - stat.st_mtime > _STALE_TMP_S:
                    with contextlib.suppress(FileNotFoundError):
                        os.unlink(entry.path)
                continue
            files.append((stat.st_mtime_ns, stat.st_size, Path(entry.path)))
        total = sum(size for _mtime, size, _path in files)
        for _mtime, size, path in sorted(files):
            if total <= self._disk_max:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size


def _touch(path: Path) -> None:
    # An explicit time: the file system's own timestamps can be coarser than successive uses.
    now = time.time_ns()
    os.utime(path, ns=(now, now))
