from __future__ import annotations

import numpy as np
import pytest

from voicebot.errors import MediaError
from voicebot.media.codecs import CODECS, Resampler, get_codec, resample


def tone(rate: int, seconds: float, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


@pytest.mark.parametrize(
    ("name", "payload_type", "rate", "samples", "size"),
    [("ulaw", 0, 8000, 160, 160), ("alaw", 8, 8000, 160, 160), ("slin16", 118, 16000, 320, 640)],
)
def test_codec_table(name: str, payload_type: int, rate: int, samples: int, size: int) -> None:
    codec = get_codec(name)
    assert (codec.name, codec.payload_type, codec.sample_rate) == (name, payload_type, rate)
    assert codec.samples_per_frame() == samples
    assert codec.bytes_per_frame() == size
    assert codec.samples_per_frame(10) == samples // 2
    frame = tone(rate, 0.02)
    payload = codec.encode(frame)
    assert len(payload) == size
    assert codec.decode(payload).shape == (samples,)


def test_unknown_codec_names_known_ones() -> None:
    with pytest.raises(MediaError, match=r"unknown codec 'opus' \(known: alaw, slin16, ulaw\)"):
        get_codec("opus")
    assert set(CODECS) == {"ulaw", "alaw", "slin16"}


def test_resample_identity_is_fast_path() -> None:
    pcm = tone(8000, 0.1)
    assert resample(pcm, 8000, 8000) is pcm
    assert Resampler(16000, 16000).process(pcm) is pcm


def test_resample_one_shot_length_and_dtype() -> None:
    out = resample(tone(8000, 1.0), 8000, 16000)
    assert out.dtype == np.int16
    assert abs(len(out) - 16000) <= 2


def test_streaming_matches_length_and_energy() -> None:
    pcm = tone(16000, 1.0)
    resampler = Resampler(16000, 8000)
    chunks = [resampler.process(pcm[i : i + 320]) for i in range(0, len(pcm) - 320, 320)]
    chunks.append(resampler.process(pcm[len(pcm) - 320 :], last=True))
    out = np.concatenate(chunks)
    assert out.dtype == np.int16
    assert abs(len(out) - 8000) <= 2
    # A 440 Hz tone survives at the same level (no gaps or clicks at chunk boundaries).
    middle = out[800:-800].astype(np.float64)
    rms = np.sqrt(np.mean(middle**2))
    assert 8000 / np.sqrt(2) * 0.95 < rms < 8000 / np.sqrt(2) * 1.05
    assert np.max(np.abs(np.diff(middle))) < 8000 * 2 * np.pi * 440 / 8000 * 1.2
    # After last=True the resampler accepts a new stream.
    assert resampler.process(pcm[:320]).dtype == np.int16


def test_resampler_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        Resampler(0, 8000)
    with pytest.raises(ValueError, match="int16"):
        Resampler(8000, 16000).process(np.zeros(10, dtype=np.float32))


def test_replies_use_a_payload_type_asterisk_accepts_back() -> None:
    from voicebot.media.codecs import ALAW, SLIN8, SLIN16, ULAW, reply_codec

    assert reply_codec(ULAW) is ULAW and reply_codec(ALAW) is ALAW
    # Asterisk drops received dynamic payload types (slin16 = 118): answer in L16 8 kHz (PT 11).
    assert reply_codec(SLIN16) is SLIN8
    assert (SLIN8.payload_type, SLIN8.sample_rate, SLIN8.bytes_per_frame()) == (11, 8000, 320)
    pcm = np.array([1, -2, 0x1234], dtype=np.int16)
    assert SLIN8.encode(pcm) == b"\x00\x01\xff\xfe\x12\x34"  # big-endian, like slin16
