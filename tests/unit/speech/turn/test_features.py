"""The Smart Turn front end on recorded speech: the 8 s window, and what the log-mel
features of a real telephone recording look like.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.audio import ALLISON, speechlike
from voicebot.capture.wav import read_wav
from voicebot.media.codecs import resample
from voicebot.speech.turn.features import (
    FEATURE_SHAPE,
    HOP,
    N_BINS,
    N_MELS,
    SAMPLE_RATE,
    WINDOW_SAMPLES,
    fit_window,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
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


# --- synthetic signals, the mel scale, the filterbank ----------------------------------------


def test_features_shape_and_dtype() -> None:
    features = turn_features(speechlike(3.0))
    assert features.shape == (80, 800)
    assert features.dtype == np.float32
    assert np.isfinite(features).all()
    # The clamp keeps 8 decades below the peak, scaled by 1/4: a span of at most 2.
    assert features.max() - features.min() <= 2.0 + 1e-6


def test_short_clip_is_zero_padded_at_the_front() -> None:
    clip = speechlike(1.5)
    front = np.concatenate([np.zeros(WINDOW_SAMPLES - len(clip), np.int16), clip])
    back = np.concatenate([clip, np.zeros(WINDOW_SAMPLES - len(clip), np.int16)])
    np.testing.assert_array_equal(turn_features(clip), turn_features(front))
    assert not np.allclose(turn_features(clip), turn_features(back))


def test_long_clip_keeps_the_last_8_seconds() -> None:
    clip = speechlike(11.0)
    np.testing.assert_array_equal(turn_features(clip), turn_features(clip[-WINDOW_SAMPLES:]))
    assert not np.allclose(turn_features(clip), turn_features(clip[:WINDOW_SAMPLES]))


def test_silence_and_empty_input() -> None:
    # All bins at the log floor: (log10(1e-10) + 4) / 4.
    np.testing.assert_array_equal(turn_features(np.zeros(0, np.int16)), np.full((80, 800), -1.5))
    np.testing.assert_array_equal(
        turn_features(np.zeros(16000, np.int16)), np.full((80, 800), -1.5)
    )


def test_loudness_does_not_matter() -> None:
    # The waveform is normalised first, so the same clip 18 dB louder gives the same features.
    quiet = speechlike(2.0) // 8
    loud = (quiet * 8).astype(np.int16)
    assert np.abs(turn_features(loud) - turn_features(quiet)).max() < 1e-3


def test_a_tone_lights_the_mel_band_at_its_frequency() -> None:
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    tone = (8000 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.int16)
    features = turn_features(tone)
    peaks = mel_filterbank().argmax(axis=0)  # FFT bin of each band's apex
    band = int(features[:, -100:].mean(axis=1).argmax())
    assert abs(peaks[band] * (SAMPLE_RATE / 2) / (N_BINS - 1) - 1000.0) <= 80.0


def test_rejects_wrong_sample_format() -> None:
    with pytest.raises(ValueError, match="mono int16"):
        turn_features(np.zeros(1600, np.float32))
    with pytest.raises(ValueError, match="mono int16"):
        turn_features(np.zeros((1600, 2), np.int16))


def test_slaney_mel_scale() -> None:
    assert float(hz_to_mel(1000.0)) == pytest.approx(15.0)
    assert float(hz_to_mel(500.0)) == pytest.approx(7.5)
    assert float(hz_to_mel(6400.0)) == pytest.approx(15.0 + 27.0)
    hz = np.array([0.0, 100.0, 999.0, 1000.0, 3000.0, 8000.0])
    np.testing.assert_allclose(mel_to_hz(hz_to_mel(hz)), hz, atol=1e-9)


def test_mel_filterbank() -> None:
    weights = mel_filterbank()
    assert weights is mel_filterbank()  # computed once
    assert not weights.flags.writeable
    assert weights.shape == (N_BINS, N_MELS)
    assert (weights >= 0).all()
    assert (weights.sum(axis=0) > 0).all()  # no empty band
    apexes = weights.argmax(axis=0)
    assert (np.diff(apexes) >= 0).all()  # bands ascend in frequency
    assert weights[-1].sum() == 0.0  # the Nyquist bin is the last edge, outside every band
    # Area-normalised: each triangle integrates to 1 over Hz. Sampled by 40 Hz FFT bins that
    # is only approximate (a 2-3 bin wide triangle around 1.5 kHz is off by up to 8 %); the
    # wide bands above 2 kHz are sampled well.
    hz_per_bin = (SAMPLE_RATE / 2) / (N_BINS - 1)
    areas = weights.sum(axis=0) * hz_per_bin
    np.testing.assert_allclose(areas, 1.0, rtol=0.1)
    np.testing.assert_allclose(areas[apexes * hz_per_bin > 2000], 1.0, rtol=0.03)
