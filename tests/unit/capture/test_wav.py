"""WAV files: mono 16-bit PCM written and read back, other layouts averaged or refused."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio import ALLISON
from voicebot.capture.wav import read_wav, wav_bytes, write_wav


def test_wav_round_trip_and_stereo(tmp_path: Path) -> None:
    pcm = (np.arange(1000) - 500).astype(np.int16)
    write_wav(tmp_path / "m.wav", pcm, 16000)
    back, rate = read_wav(tmp_path / "m.wav")
    assert rate == 16000 and back.dtype == np.int16 and np.array_equal(back, pcm)

    with wave.open(str(tmp_path / "s.wav"), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(np.array([100, 300, -10, -30], dtype="<i2").tobytes())
    stereo, _ = read_wav(tmp_path / "s.wav")
    assert stereo.tolist() == [200, -20]

    with wave.open(str(tmp_path / "u8.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(8000)
        out.writeframes(bytes(10))
    with pytest.raises(ValueError, match="8-bit WAV, only 16-bit"):
        read_wav(tmp_path / "u8.wav")
    (tmp_path / "junk.wav").write_bytes(b"not a wav at all")
    with pytest.raises(ValueError, match=r"junk\.wav"):
        read_wav(tmp_path / "junk.wav")


def test_wav_bytes_is_the_file_write_wav_writes(tmp_path: Path) -> None:
    pcm = np.array([0, 1, -1, 32767, -32768], dtype=np.int16)
    write_wav(tmp_path / "a.wav", pcm, 8000)
    data = wav_bytes(pcm, 8000)
    assert data == (tmp_path / "a.wav").read_bytes()
    with wave.open(io.BytesIO(data), "rb") as source:
        assert (source.getnchannels(), source.getsampwidth(), source.getframerate()) == (1, 2, 8000)
        assert source.readframes(5) == pcm.astype("<i2").tobytes()


def test_write_to_an_open_file_and_to_a_str_path(tmp_path: Path) -> None:
    pcm = np.arange(-50, 50, dtype=np.int16)
    buffer = io.BytesIO()
    write_wav(buffer, pcm, 16000)
    write_wav(str(tmp_path / "s.wav"), pcm, 16000)
    assert buffer.getvalue() == (tmp_path / "s.wav").read_bytes()
    back, rate = read_wav(str(tmp_path / "s.wav"))
    assert rate == 16000 and back.tolist() == pcm.tolist()


@pytest.mark.parametrize(
    "pcm",
    [
        np.zeros(10, dtype=np.float32),
        np.zeros((10, 2), dtype=np.int16),
        np.zeros(10, dtype=np.int32),
    ],
)
def test_write_refuses_anything_but_mono_int16(tmp_path: Path, pcm: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected mono int16 PCM"):
        write_wav(tmp_path / "x.wav", pcm, 8000)
    assert not (tmp_path / "x.wav").exists()


def test_an_odd_sample_of_a_stereo_file_is_dropped(tmp_path: Path) -> None:
    with wave.open(str(tmp_path / "s.wav"), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(np.array([1, 3, 5, 7], dtype="<i2").tobytes())
    # A file cut in the middle of a frame: the half frame is not audio.
    (tmp_path / "cut.wav").write_bytes((tmp_path / "s.wav").read_bytes()[:-2])
    pcm, _ = read_wav(tmp_path / "cut.wav")
    assert pcm.tolist() == [2]


def test_allison_prompt_reads_as_8k_mono() -> None:
    pcm, rate = read_wav(ALLISON / "hello-world.wav")
    assert rate == 8000 and pcm.dtype == np.int16 and pcm.ndim == 1
    assert np.max(np.abs(pcm.astype(np.int32))) > 1000  # speech, not silence
