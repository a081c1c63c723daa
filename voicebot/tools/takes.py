"""Seeded takes of a recorded caller turn: the same words, played inaudibly differently.

A turn that comes out right on one playing and wrong on another that sounds the same is handled
by luck. So the endpointing bench (``scripts/bench-endpointing.py``) and the tests play each
labelled turn of ``tests/fixtures/turns/`` as several takes, and a turn counts as handled only
when every take of it is. ``take(pcm, 0)`` is the file as it is (what earlier benches played);
``take(pcm, n)`` for n >= 1 changes, from a numpy RNG seeded with n and nothing else:

- where the 20 ms packets cut the speech: a lead of 0-19 ms (whole samples) before the file;
- the level: a gain of -0.5 to +0.5 dB over the whole turn (what it says about levels
  *inside* the turn, such as a background's dB under the caller, is unchanged);
- the line's own noise: 300-3400 Hz band-limited Gaussian noise at NOISE_FLOOR_DBFS RMS
  under the whole take, lead included (a quiet phone line; a recording built from clips has
  exact digital silence, which no caller's line ever sends);
- the rounding: TPDF dither (two uniform draws of ±0.5 LSB) before rounding to int16.

Every time a turn's label gives (``speech_start_s``, ``voice_end_s``, ``pauses_s``, the
background's times) is ``lead_s`` later in the take; the take is longer by ``lead_s``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

RATE = 8000
MAX_LEAD_S = 0.019
MAX_GAIN_DB = 0.5
# A quiet line (telephone idle-channel noise is specified at about -65 dBm0 or better): well
# under any voice and under SPEECH_RMS of the turn set (-44 dBFS), but above the finest step
# of G.711 μ-law, so it survives the codec.
NOISE_FLOOR_DBFS = -66.0
NOISE_BAND_HZ = (300.0, 3400.0)


@dataclass(frozen=True, eq=False)
class Take:
    """One playing of a turn: ``pcm`` (8 kHz mono int16) and how much later than in the file
    everything in it happens."""

    seed: int
    pcm: NDArray[np.int16]
    lead_s: float


def take(pcm: NDArray[np.int16], seed: int) -> Take:
    """Take ``seed`` of the turn ``pcm`` (8 kHz mono int16): the file itself for seed 0, else
    the file with the seeded lead, gain, line noise and dither described in the module
    docstring. The same (pcm, seed) always gives the same take."""
    samples = np.asarray(pcm)
    if samples.dtype != np.int16 or samples.ndim != 1 or samples.size == 0:
        raise ValueError("take() needs non-empty 1-D int16 PCM at 8 kHz")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"take() needs a seed that is a whole number >= 0, not {seed!r}")
    if seed == 0:
        return Take(0, samples.copy(), 0.0)
    rng = np.random.default_rng([0x7A4E, seed])
    lead = int(rng.integers(0, round(MAX_LEAD_S * RATE) + 1))
    gain = 10 ** (rng.uniform(-MAX_GAIN_DB, MAX_GAIN_DB) / 20)
    signal = np.concatenate([np.zeros(lead), samples.astype(np.float64) * gain])
    floor = band_limited_noise(rng, signal.size, *NOISE_BAND_HZ)
    floor *= 32768 * 10 ** (NOISE_FLOOR_DBFS / 20) / max(rms(floor), 1e-12)
    dither = rng.uniform(-0.5, 0.5, signal.size) + rng.uniform(-0.5, 0.5, signal.size)
    out = np.clip(np.round(signal + floor + dither), -32768, 32767).astype(np.int16)
    return Take(seed, out, lead / RATE)


def band_limited_noise(
    rng: np.random.Generator, size: int, low_hz: float, high_hz: float
) -> NDArray[np.float64]:
    """Gaussian noise with the FFT bins outside ``low_hz..high_hz`` zeroed (8 kHz)."""
    if size == 0:
        return np.zeros(0)
    spectrum = np.fft.rfft(rng.standard_normal(size))
    freqs = np.fft.rfftfreq(size, 1 / RATE)
    spectrum[(freqs < low_hz) | (freqs > high_hz)] = 0
    return np.fft.irfft(spectrum, n=size)


def rms(samples: NDArray[np.floating] | NDArray[np.integer]) -> float:
    values = np.asarray(samples, dtype=np.float64)
    return float(np.sqrt(np.mean(values**2))) if values.size else 0.0
