"""Recorded prompts (``say: [{audio: FILE}]``, ``{sound: NAME}``): WAV files read once, turned
into the speaker's 16 kHz mono, and kept in memory for every call.

Any PCM WAV plays: 8 to 32-bit samples, any rate, mono or stereo (the channels are averaged).
The script parser has already checked each file (``dialog.parser.wav_problem``); a file that
became unreadable since fails here with a ``MediaError`` naming it.
"""

from __future__ import annotations

import asyncio
import logging
import wave
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ...errors import MediaError
from ...media.codecs import resample

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000


def read_prompt(path: str | Path) -> NDArray[np.int16]:
    """The WAV file at ``path`` as 16 kHz mono int16."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(wav.getnframes())
    except (OSError, EOFError, wave.Error) as exc:
        raise MediaError(f"cannot read the recorded prompt {path}: {exc}") from exc
    if channels not in (1, 2) or width not in (1, 2, 3, 4) or rate <= 0:
        raise MediaError(
            f"the recorded prompt {path} is {channels}-channel {width * 8}-bit at {rate} Hz "
            "(mono or stereo PCM, 8 to 32-bit)"
        )
    samples = _as_float(raw, width).reshape(-1, channels).mean(axis=1)
    pcm = np.clip(np.round(samples * 32768.0), -32768, 32767).astype(np.int16)
    return resample(pcm, rate, SAMPLE_RATE)


def _as_float(raw: bytes, width: int) -> NDArray[np.float64]:
    """PCM bytes of ``width`` bytes a sample as floats in [-1, 1)."""
    if width == 1:  # WAV's 8-bit PCM is unsigned
        return (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 3:  # little-endian 24-bit: widen each sample to 32 bits
        bytes3 = np.frombuffer(raw[: len(raw) - len(raw) % 3], np.uint8).reshape(-1, 3)
        widened = np.zeros((len(bytes3), 4), np.uint8)
        widened[:, 1:] = bytes3
        return widened.view("<i4").reshape(-1).astype(np.float64) / 2**31
    dtype = {2: "<i2", 4: "<i4"}[width]
    return np.frombuffer(raw, dtype).astype(np.float64) / 2 ** (8 * width - 1)


class RecordedPrompts:
    """Recorded prompts by file path, converted once (off the event loop) and shared."""

    sample_rate = SAMPLE_RATE

    def __init__(self) -> None:
        self._audio: dict[str, NDArray[np.int16]] = {}

    async def load(self, paths: Iterable[str]) -> None:
        """Read and convert every file of ``paths`` not loaded yet (``MediaError`` if one
        cannot be read)."""
        for path in sorted(set(paths) - set(self._audio)):
            self._audio[path] = await asyncio.to_thread(read_prompt, path)
            log.info("recorded prompt %s loaded (%.1f s)", path,
                     len(self._audio[path]) / SAMPLE_RATE)  # fmt: skip

    async def audio(self, path: str) -> NDArray[np.int16]:
        """The prompt at ``path`` (loaded now if no script announced it)."""
        if path not in self._audio:
            await self.load([path])
        return self._audio[path]
