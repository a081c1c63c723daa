"""speech.tts.recorded: any PCM WAV becomes the speaker's 16 kHz mono, once."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from voicebot.errors import MediaError
from voicebot.speech.tts.recorded import SAMPLE_RATE, RecordedPrompts, read_prompt


def write_wav(path: Path, samples: np.ndarray, rate: int, width: int, channels: int) -> Path:
    """``samples`` (floats in [-1, 1), one column per channel) as a PCM WAV file."""
    scaled = np.round(samples * (2 ** (8 * width - 1) - 1)).astype(np.int64)
    if width == 1:
        raw = (scaled + 128).astype(np.uint8).tobytes()
    elif width == 3:
        raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in scaled.reshape(-1))
    else:
        raw = scaled.astype({2: "<i2", 4: "<i4"}[width]).tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(raw)
    return path


@pytest.mark.parametrize("width", [1, 2, 3, 4])
@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (44100, 2), (16000, 2)])
def test_any_pcm_wav_becomes_16_khz_mono_at_its_level(
    tmp_path: Path, width: int, rate: int, channels: int
) -> None:
    seconds = 0.5
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    # Stereo: the same tone on the left, silence on the right: the mix is half as loud.
    samples = np.stack([tone] + [np.zeros_like(tone)] * (channels - 1), axis=1)
    pcm = read_prompt(write_wav(tmp_path / "p.wav", samples, rate, width, channels))
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert abs(len(pcm) - seconds * SAMPLE_RATE) <= 2
    expected_peak = 0.5 / channels * 32768
    assert abs(np.abs(pcm[200:-200]).max() - expected_peak) < 0.03 * expected_peak


def test_a_file_that_went_missing_is_a_media_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match=r"gone\.wav"):
        read_prompt(tmp_path / "gone.wav")


async def test_prompts_are_read_once_and_shared(tmp_path: Path) -> None:
    file = write_wav(tmp_path / "p.wav", np.zeros((800, 1)), 8000, 2, 1)
    prompts = RecordedPrompts()
    await prompts.load([str(file)])
    file.unlink()  # converted at start-up: the call does not read the disk again
    assert len(await prompts.audio(str(file))) == SAMPLE_RATE // 10
