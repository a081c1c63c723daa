"""Caller audio: RTP payloads in, fixed-size PCM frames at the speech rate out.

The caller's audio only arrives while the caller's phone sends packets, so the assembler also
makes silence on request: the call feeds it wall-clock gaps and the VAD keeps counting time.
"""

from __future__ import annotations

import numpy as np

from .codecs import Codec, Resampler

SPEECH_RATE = 16000


class FrameAssembler:
    """Decode, resample to ``SPEECH_RATE`` and cut into frames of ``frame_ms``."""

    def __init__(self, codec: Codec, frame_ms: int = 20, out_rate: int = SPEECH_RATE) -> None:
        self.codec = codec
        self.frame_samples = out_rate * frame_ms // 1000
        self._resampler = Resampler(codec.sample_rate, out_rate)
        self._pending = np.zeros(0, dtype=np.int16)

    def push_payload(self, payload: bytes) -> list[np.ndarray]:
        return self._cut(self._resampler.process(self.codec.decode(payload)))

    def silence(self, seconds: float) -> list[np.ndarray]:
        """Whole frames of silence covering ``seconds`` (for gaps with no packets)."""
        count = int(seconds * 1000) // (1000 * self.frame_samples // SPEECH_RATE)
        return [np.zeros(self.frame_samples, dtype=np.int16) for _ in range(count)]

    def _cut(self, pcm: np.ndarray) -> list[np.ndarray]:
        if self._pending.size:
            pcm = np.concatenate([self._pending, pcm])
        whole = pcm.size // self.frame_samples * self.frame_samples
        self._pending = pcm[whole:]
        return [pcm[i : i + self.frame_samples] for i in range(0, whole, self.frame_samples)]
