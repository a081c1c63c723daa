"""Caller audio: RTP payloads in, fixed-size PCM frames at the speech rate out.

The caller's audio only arrives while the caller's phone sends packets, so the assembler also
makes silence on request: the call feeds it wall-clock gaps and the VAD keeps counting time.
A few packets lost in the middle of a stream are concealed with silence of their length (from
the RTP timestamps), so speech keeps its timing and the end-of-turn wait stays honest.
"""

from __future__ import annotations

import numpy as np

from .codecs import Codec, Resampler
from .rtp import TIMESTAMP_MODULUS, RtpPacket

SPEECH_RATE = 16000
# Longer gaps are not loss: the phone paused, or the stream restarted.
MAX_CONCEALED_MS = 100


class FrameAssembler:
    """Decode, resample to ``out_rate`` and cut into frames of ``frame_ms``. The call's
    listener keeps the codec's own rate (no resampler in front of its VAD)."""

    def __init__(self, codec: Codec, frame_ms: int = 20, out_rate: int = SPEECH_RATE) -> None:
        self.codec = codec
        self.frame_samples = out_rate * frame_ms // 1000
        self.frame_ms = frame_ms
        self._resampler = Resampler(codec.sample_rate, out_rate)
        self._pending = np.zeros(0, dtype=np.int16)
        self._max_concealed = codec.sample_rate * MAX_CONCEALED_MS // 1000
        self._expected: tuple[int, int] | None = None  # (ssrc, timestamp of the next packet)
        self._resampler_fed = False
        self.concealed_samples = 0  # at the codec's rate

    def push_packet(self, packet: RtpPacket) -> list[np.ndarray]:
        """The packet's audio as whole frames (the remainder waits for the next packet), with
        silence first where packets just before this one were lost."""
        pcm = self.codec.decode(packet.payload)
        gap = 0
        if self._expected is not None and self._expected[0] == packet.ssrc:
            gap = (packet.timestamp - self._expected[1]) % TIMESTAMP_MODULUS
        self._expected = (packet.ssrc, (packet.timestamp + len(pcm)) % TIMESTAMP_MODULUS)
        if 0 < gap <= self._max_concealed:
            self.concealed_samples += gap
            pcm = np.concatenate([np.zeros(gap, dtype=np.int16), pcm])
        self._resampler_fed = True
        return self._cut(self._resampler.process(pcm))

    def silence(self, seconds: float) -> list[np.ndarray]:
        """Whole frames of silence covering ``seconds`` (for gaps with no packets), after the
        audio still inside the resampler. The next packet's gap is not concealed again."""
        self._expected = None
        frames: list[np.ndarray] = []
        if self._resampler_fed:
            # soxr holds back 10-115 ms of what it was given (measured at 8 -> 16 kHz, HQ):
            # without this the end of the caller's last word would only come out after the
            # silence, when their phone sends again.
            self._resampler_fed = False
            frames = self._cut(self._resampler.process(np.zeros(0, np.int16), last=True))
            if self._pending.size:
                frames.append(np.pad(self._pending, (0, self.frame_samples - self._pending.size)))
                self._pending = np.zeros(0, dtype=np.int16)
        count = int(seconds * 1000) // self.frame_ms
        return [*frames, *(np.zeros(self.frame_samples, dtype=np.int16) for _ in range(count))]

    def _cut(self, pcm: np.ndarray) -> list[np.ndarray]:
        if self._pending.size:
            pcm = np.concatenate([self._pending, pcm])
        whole = pcm.size // self.frame_samples * self.frame_samples
        self._pending = pcm[whole:]
        return [pcm[i : i + self.frame_samples] for i in range(0, whole, self.frame_samples)]
