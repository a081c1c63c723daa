"""The first seconds of an outbound call: who answered (``call.amd`` decides), fed from the
listener's frames and handed to the session as inputs of its queue.

Until the verdict the listener only measures: the callee's "hello" is no turn of the
dialog, and a machine's greeting never reaches the recognizer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .amd import AmdDecision, AmdSettings, AnsweringMachineDetector, SpeakNow

AMD_FRAME_MS = 20

AmdEvent = AmdDecision | SpeakNow


class AnswerWatch:
    """Re-chunks the listener's frames (vad.frame_ms) into the detector's 20 ms ones and
    passes its events on, in order."""

    def __init__(
        self, settings: AmdSettings, rate: int, deliver: Callable[[AmdEvent], None]
    ) -> None:
        self.detector = AnsweringMachineDetector(settings, rate=rate)
        self._deliver = deliver
        self._frame_samples = rate * AMD_FRAME_MS // 1000
        self._pending = np.zeros(0, dtype=np.int16)
        self._pending_voiced = False

    def frame(self, pcm: np.ndarray, voiced: bool) -> None:
        # A 20 ms frame made of shorter ones is voiced when any part of it was.
        self._pending = np.concatenate([self._pending, pcm])
        self._pending_voiced = self._pending_voiced or voiced
        while self._pending.size >= self._frame_samples:
            chunk = self._pending[: self._frame_samples]
            self._pending = self._pending[self._frame_samples :]
            for event in self.detector.frame(chunk, self._pending_voiced):
                self._deliver(event)
            self._pending_voiced = voiced and self._pending.size > 0


def ignore(pcm: np.ndarray, voiced: bool) -> None:
    """What the listener does with a frame while the bot leaves its message on a machine:
    nothing (a machine's sounds must not stop or answer the message)."""
