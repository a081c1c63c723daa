"""media.levels: where voice starts and ends, on real recordings and on made-up frames."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.audio import ALLISON
from voicebot.capture.wav import read_wav
from voicebot.media.levels import VOICED_RMS, is_voiced, rms, speech_end_s, speech_onset_s


def test_silence_and_quiet_noise_are_not_voice() -> None:
    assert not is_voiced(np.zeros(160, dtype=np.int16))
    rng = np.random.default_rng(1)
    assert not is_voiced((rng.standard_normal(160) * VOICED_RMS * 0.5).astype(np.int16))
    assert is_voiced(np.full(160, int(VOICED_RMS * 2), dtype=np.int16))
    assert rms(np.array([], dtype=np.int16)) == 0.0


def test_onset_and_end_are_the_first_and_last_voiced_frames() -> None:
    rate = 8000
    pcm = np.zeros(rate, dtype=np.int16)
    pcm[1600:4000] = 3000  # voice from 0.2 s to 0.5 s
    assert speech_onset_s(pcm, rate) == pytest.approx(0.2)
    assert speech_end_s(pcm, rate) == pytest.approx(0.5)


def test_a_recording_ends_before_its_trailing_silence() -> None:
    pcm, rate = read_wav(str(ALLISON / "hours.wav"))
    end = speech_end_s(pcm, rate)
    # Allison's files carry silence after the word: the voice ends well before the file.
    assert 0.1 < end < len(pcm) / rate - 0.05
    assert speech_onset_s(pcm, rate) < end


def test_no_voice_at_all() -> None:
    pcm = np.zeros(800, dtype=np.int16)
    assert speech_onset_s(pcm, 8000) == 0.0
    assert speech_end_s(pcm, 8000) == pytest.approx(0.1)
