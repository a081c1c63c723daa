"""When audio counts as voice: the one definition the call probe, the benches and the peer use.

Voice-to-voice latency is measured between voiced 20 ms frames (the caller's last, the bot's
first), never from the end of a file, which carries silence after the last word.
"""

from __future__ import annotations

import numpy as np

# A 20 ms frame louder than this (RMS, int16 scale) is someone talking; line noise and the
# comfort noise of a quiet phone stay well below it.
VOICED_RMS = 300.0
FRAMES_PER_SECOND = 50


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0


def is_voiced(frame: np.ndarray) -> bool:
    return rms(frame) > VOICED_RMS


def speech_onset_s(pcm: np.ndarray, rate: int) -> float:
    """Offset of the first voiced 20 ms frame of a recording (0 when none is)."""
    frame = rate // FRAMES_PER_SECOND
    for start in range(0, pcm.size - frame + 1, frame):
        if is_voiced(pcm[start : start + frame]):
            return start / rate
    return 0.0


def speech_end_s(pcm: np.ndarray, rate: int) -> float:
    """Offset of the end of the last voiced 20 ms frame of a recording (its end when none is)."""
    frame = rate // FRAMES_PER_SECOND
    for end in range(pcm.size - pcm.size % frame, 0, -frame):
        if is_voiced(pcm[end - frame : end]):
            return end / rate
    return pcm.size / rate


def check_frame(frame: np.ndarray, samples: int, frame_ms: int, rate: int) -> None:
    """ValueError unless ``frame`` is one frame of ``samples`` int16 samples (``frame_ms`` at
    ``rate``): what the voice detector and the answering-machine detector take, one at a time."""
    if frame.ndim != 1 or frame.shape[0] != samples:
        raise ValueError(
            f"expected a frame of {samples} samples ({frame_ms} ms at {rate} Hz), "
            f"got shape {frame.shape}"
        )
    if frame.dtype != np.int16:
        raise ValueError(f"expected int16 samples, got {frame.dtype}")
