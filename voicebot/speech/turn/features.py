"""The Smart Turn front end: 8 s of 16 kHz audio -> an (80, 800) Whisper-style log-mel spectrogram.

Pure numpy. The steps, and every constant, must match what the model was trained on:

1. int16 -> float (/ 32768); keep the last 8 s, or zero-pad at the front up to 8 s;
2. normalise the waveform to zero mean and unit variance (eps 1e-7);
3. STFT: 400-sample periodic Hann window, hop 160, centred (200 samples of reflect padding
   each side), power spectrum |rfft|^2 -> 801 frames x 201 bins;
4. an 80-band Slaney mel filterbank over 0-8000 Hz, each triangle normalised to unit area;
5. log10 (floor 1e-10), drop the last frame (801 -> 800), clamp to 8 decades below the
   maximum, then (x + 4) / 4.
"""

from __future__ import annotations

from functools import cache

import numpy as np

SAMPLE_RATE = 16000
WINDOW_S = 8
WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE  # 128000
N_FFT = 400
HOP = 160
N_MELS = 80
N_FRAMES = WINDOW_SAMPLES // HOP  # 800
N_BINS = N_FFT // 2 + 1  # 201
FEATURE_SHAPE = (N_MELS, N_FRAMES)

_NORM_EPS = 1e-7
_LOG_FLOOR = 1e-10
_DYNAMIC_RANGE = 8.0  # decades kept below the loudest mel bin

# Slaney's mel scale: linear below 1 kHz (200/3 Hz per mel), logarithmic above, 27 mels per
# factor 6.4 in frequency.
_LINEAR_HZ_PER_MEL = 200.0 / 3.0
_BREAK_HZ = 1000.0
_BREAK_MEL = _BREAK_HZ / _LINEAR_HZ_PER_MEL  # 15
_LOG_STEP = np.log(6.4) / 27.0


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney mel value of each frequency."""
    f = np.asarray(hz, dtype=np.float64)
    linear = f / _LINEAR_HZ_PER_MEL
    with np.errstate(divide="ignore"):
        logarithmic = _BREAK_MEL + np.log(np.maximum(f, _BREAK_HZ) / _BREAK_HZ) / _LOG_STEP
    return np.where(f < _BREAK_HZ, linear, logarithmic)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of ``hz_to_mel``."""
    m = np.asarray(mel, dtype=np.float64)
    linear = m * _LINEAR_HZ_PER_MEL
    logarithmic = _BREAK_HZ * np.exp(_LOG_STEP * (np.maximum(m, _BREAK_MEL) - _BREAK_MEL))
    return np.where(m < _BREAK_MEL, linear, logarithmic)


@cache
def mel_filterbank() -> np.ndarray:
    """(N_BINS, N_MELS) float64 weights, computed once; read-only because it is shared."""
    # N_MELS triangles need N_MELS + 2 edges, evenly spaced in mel from 0 Hz to Nyquist.
    edges_mel = np.linspace(hz_to_mel(0.0), hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2)
    edges = mel_to_hz(edges_mel)
    bins = np.linspace(0.0, SAMPLE_RATE / 2, N_BINS)
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins[:, None] - lower) / (centre - lower)
    falling = (upper - bins[:, None]) / (upper - centre)
    weights = np.clip(np.minimum(rising, falling), 0.0, None)
    # Unit area in Hz: a triangle of height h and base (upper - lower) has area h * base / 2.
    weights *= 2.0 / (upper - lower)
    weights.flags.writeable = False
    return weights


@cache
def _hann() -> np.ndarray:
    # Periodic (not symmetric) Hann: the window of an N-point DFT.
    n = np.arange(N_FFT)
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT)
    window.flags.writeable = False
    return window


def fit_window(pcm: np.ndarray) -> np.ndarray:
    """Mono int16 -> float32 of exactly WINDOW_SAMPLES: the last 8 s, or front zero-padded."""
    if pcm.ndim != 1 or pcm.dtype != np.int16:
        raise ValueError(f"expected mono int16 samples, got {pcm.dtype} with shape {pcm.shape}")
    tail = pcm[-WINDOW_SAMPLES:]
    out = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
    if len(tail):
        out[WINDOW_SAMPLES - len(tail) :] = tail.astype(np.float32) / 32768.0
    return out


def turn_features(pcm: np.ndarray) -> np.ndarray:
    """The model input for one turn: mono int16 at 16 kHz -> (80, 800) float32 log-mel."""
    x = fit_window(pcm)
    x = (x - x.mean()) / np.sqrt(x.var() + np.float32(_NORM_EPS))
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]  # (801, 400)
    spectrum = np.fft.rfft(frames * _hann(), axis=-1)
    power = spectrum.real**2 + spectrum.imag**2  # (801, 201)
    mel = power @ mel_filterbank()  # (801, 80)
    log_mel = np.log10(np.maximum(mel, _LOG_FLOOR))[:-1].T  # (80, 800)
    log_mel = np.maximum(log_mel, log_mel.max() - _DYNAMIC_RANGE)
    return ((log_mel + 4.0) / 4.0).astype(np.float32)
