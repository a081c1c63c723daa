"""The Smart Turn front end on recorded speech: the 8 s window, and what the log-mel
features of a real telephone recording look like.

(Synthetic-signal checks of the same front end, the mel scale and the filterbank are in
test_smart_turn.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.audio import ALLISON
from voicebot.capture.wav import read_wav
from voicebot.media.codecs import resample
from voicebot.speech.turn.features import (
    FEATURE_SHAPE,
    HOP,
    N_BINS,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    fit_window,
    mel_filterbank,
    turn_features,
)


def recording(name: str) -> np.ndarray:
    """An Asterisk prompt (8 kHz telephone audio) at the model's 16 kHz, as calls reach it."""
    pcm, rate = read_wav(ALLISON / f"{name}.wav")
    return resample(pcm, rate, SAMPLE_RATE)


def longer_than_the_window() -> np.ndarray:
    words = [recording(name) for name in ("hello-world", "hours", "goodbye")]
    joined = np.concatenate(words * 4)
    assert joined.size > WINDOW_SAMPLES
    return joined


def band_frequencies() -> np.ndarray:
    """The centre (apex) frequency of each mel band, in Hz."""
    return mel_filterbank().argmax(axis=0) * (SAMPLE_RATE / 2) / (N_BINS - 1)


def test_a_short_recording_is_scaled_and_placed_at_the_end_of_the_window() -> None:
    pcm = recording("hello-world")
    window = fit_window(pcm)
    assert window.dtype == np.float32 and window.shape == (WINDOW_SAMPLES,)
    np.testing.assert_array_equal(window[-pcm.size :], pcm.astype(np.float32) / 32768)
    assert not window[: WINDOW_SAMPLES - pcm.size].any()


def test_a_long_recording_keeps_its_last_8_seconds() -> None:
    pcm = longer_than_the_window()
    np.testing.assert_array_equal(fit_window(pcm), pcm[-WINDOW_SAMPLES:].astype(np.float32) / 32768)


@pytest.mark.parametrize(
    "pcm", [np.zeros(1600, np.float64), np.zeros((2, 1600), np.int16), np.zeros(1600, np.uint8)]
)
def test_the_window_takes_mono_int16_only(pcm: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected mono int16 samples"):
        fit_window(pcm)


@pytest.mark.parametrize("name", ["hello-world", "hours", "goodbye"])
def test_features_of_a_recording(name: str) -> None:
    features = turn_features(recording(name))
    assert features.shape == FEATURE_SHAPE == (80, 800)
    assert features.dtype == np.float32 and np.isfinite(features).all()
    # 8 decades below the loudest bin at most, scaled by 1/4.
    assert features.max() - features.min() <= 2.0 + 1e-6
    assert features.min() >= -1.5  # never below the log floor


def test_the_words_stand_out_from_the_padding_before_them() -> None:
    pcm = recording("hello-world")
    features = turn_features(pcm)
    spoken_frames = pcm.size // HOP
    padding, words = features[:, : -spoken_frames - 5], features[:, -spoken_frames:]
    assert words.mean() > padding.mean() + 0.5


def test_telephone_audio_has_its_energy_in_the_telephone_band() -> None:
    """Calls reach the model as 8 kHz audio: speech in 300-3400 Hz, nothing above 4 kHz (those
    bands sit at the clamp, 8 decades below the loudest)."""
    pcm = recording("hello-world")
    features = turn_features(pcm)
    words = features[:, -(pcm.size // HOP) :]
    centres = band_frequencies()
    above = words[centres > 4200]
    assert above.max() <= features.min() + 0.05
    assert words[(centres > 300) & (centres < 3400)].mean() > above.mean() + 0.5


def test_a_dc_offset_does_not_change_the_features() -> None:
    # The window is normalised to zero mean: a recording with a DC offset (a cheap line
    # interface) gives the same features. A full window, so no padding shifts with it.
    pcm = longer_than_the_window()
    offset = np.clip(pcm.astype(np.int32) + 500, -32768, 32767).astype(np.int16)
    assert np.abs(turn_features(offset) - turn_features(pcm)).max() < 1e-3


def test_the_same_audio_gives_the_same_features() -> None:
    pcm = recording("hours")
    np.testing.assert_array_equal(turn_features(pcm), turn_features(pcm.copy()))
