"""WAV files: mono 16-bit PCM, the format of Asterisk's prompts and of our recordings."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..media.g711 import PcmArray

WAV_SAMPLE_WIDTH = 2


def write_wav(path: str | Path | BinaryIO, pcm: PcmArray, rate: int) -> None:
    """Mono 16-bit PCM WAV, to a path or an open binary file."""
    array = np.asarray(pcm)
    if array.dtype != np.int16 or array.ndim != 1:
        raise ValueError(f"expected mono int16 PCM, got {array.dtype} with shape {array.shape}")
    with wave.open(path if not isinstance(path, str | Path) else str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(WAV_SAMPLE_WIDTH)
        out.setframerate(rate)
        out.writeframes(array.astype("<i2").tobytes())


def wav_bytes(pcm: PcmArray, rate: int) -> bytes:
    """The WAV file ``write_wav`` would write, as bytes."""
    buffer = io.BytesIO()
    write_wav(buffer, pcm, rate)
    return buffer.getvalue()


def read_wav(path: str | Path) -> tuple[PcmArray, int]:
    """16-bit PCM WAV as mono int16 (channels averaged) and its sample rate."""
    try:
        with wave.open(str(path), "rb") as source:
            width = source.getsampwidth()
            channels = source.getnchannels()
            rate = source.getframerate()
            raw = source.readframes(source.getnframes())
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a readable PCM WAV file: {exc}") from None
    if width != WAV_SAMPLE_WIDTH:
        raise ValueError(f"{path}: {width * 8}-bit WAV, only 16-bit PCM is supported")
    samples = np.frombuffer(raw, dtype="<i2")
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels].reshape(-1, channels)
        mono: PcmArray = samples.astype(np.int32).mean(axis=1).round().astype(np.int16)
        return mono, rate
    return samples.astype(np.int16), rate
