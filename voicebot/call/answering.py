"""The first seconds of an outbound call: who answered (``call.amd`` decides), fed from the
listener's frames and handed to the session as inputs of its queue.

Until the verdict the listener only measures: the callee's "hello" is no turn of the
dialog, and a machine's greeting never reaches the recognizer. A machine taken for a person
(a greeting that opens with a short sentence and a pause, "Hi! ... You've reached Anna")
shows itself in its first words ("leave a message"): the verdict is corrected then, and the
message waits for the beep like any machine's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from .amd import (
    AmdDecision,
    AmdSettings,
    AnsweringMachineDetector,
    SpeakNow,
    Verdict,
    voicemail_phrase,
)

AMD_FRAME_MS = 20
# A voicemail phrase heard this long after the answer still corrects a person's verdict (a
# machine's greeting is over by then; later, it is a person talking about voicemail).
LATE_MACHINE_S = 20.0

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


def late_machine(decision: AmdDecision | None, text: str, since_answer_s: float
                 ) -> AmdDecision | None:  # fmt: skip
    """The verdict corrected to a machine when a callee taken for a person (or unknown) says
    a voicemail phrase early in the call; None when it stands."""
    if decision is None or decision.verdict is Verdict.MACHINE or since_answer_s > LATE_MACHINE_S:
        return None
    phrase = voicemail_phrase(text)
    if phrase is None:
        return None
    reason = f"then said {phrase!r} at {since_answer_s:.2f} s: a machine after all"
    return replace(decision, verdict=Verdict.MACHINE, reasons=(*decision.reasons, reason))


class Answering:
    """What the session knows of an outbound call's answer: the verdict, whether the
    machine's message began, and the watch that listens until it may."""

    def __init__(
        self, settings: AmdSettings, rate: int, deliver: Callable[[AmdEvent], None]
    ) -> None:
        self.settings = settings
        self.rate = rate
        self._deliver = deliver
        self.watch = AnswerWatch(settings, rate, deliver)
        self.decision: AmdDecision | None = None
        self.message_begun = False

    def decided(self, event: AmdDecision) -> bool:
        """Take the detector's verdict; False for a repeated one."""
        if self.decision is not None:
            return False
        self.decision = event
        return True

    def may_leave_message(self) -> bool:
        """At a speak-now: whether the message begins now (a machine, not begun yet)."""
        if self.decision is None or self.decision.verdict is not Verdict.MACHINE:
            return False
        if self.message_begun:
            return False
        self.message_begun = True
        return True

    def heard(self, text: str, since_answer_s: float) -> AmdDecision | None:
        """The callee's words: a corrected verdict if they show a machine. A fresh watch then
        waits for its beep (or the end of its greeting) to say when to speak."""
        corrected = late_machine(self.decision, text, since_answer_s)
        if corrected is None:
            return None
        self.decision = corrected
        self.watch = AnswerWatch(self.settings, self.rate, self._deliver)
        self.watch.detector.words(text, 0.0)  # its own verdict: a machine, from now on
        return corrected
