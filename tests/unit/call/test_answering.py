"""An outbound call's answer: the verdict's correction by the callee's words, and the watch
that feeds the detector 20 ms frames."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.call.amd import AmdDecision, AmdSettings, SpeakNow, Verdict
from voicebot.call.answering import LATE_MACHINE_S, Answering, AnswerWatch, late_machine

PERSON = AmdDecision(Verdict.HUMAN, 1.8, ("greeting 0.44 s then 0.40 s of silence",))
UNKNOWN = AmdDecision(Verdict.UNKNOWN, 3.0, ("no voice for 3.0 s",))
MACHINE = AmdDecision(Verdict.MACHINE, 2.9, ("voice for 2.50 s without a pause",))


@pytest.mark.parametrize(
    ("decision", "text", "since", "corrected"),
    [
        (PERSON, "You've reached the Smiths, please leave a message after the tone.", 4.0, True),
        (UNKNOWN, "Please leave your message after the tone.", 6.0, True),
        (PERSON, "Yes, speaking, who is this?", 4.0, False),  # a person's answer stands
        (PERSON, "leave a message", LATE_MACHINE_S + 1, False),  # too late: a person talking
        (MACHINE, "leave a message", 4.0, False),  # a machine already
        (None, "leave a message", 1.0, False),  # no verdict yet: the detector's own words
    ],
)  # fmt: skip
def test_late_machine(
    decision: AmdDecision | None, text: str, since: float, corrected: bool
) -> None:
    result = late_machine(decision, text, since)
    assert (result is not None) is corrected
    if result is not None:
        assert result.verdict is Verdict.MACHINE
        assert decision is not None and result.reasons[:-1] == decision.reasons


def test_a_corrected_machine_gets_its_message_once_its_beep_is_over() -> None:
    events: list[object] = []
    answering = Answering(AmdSettings(), 8000, events.append)
    assert answering.decided(PERSON) and not answering.decided(MACHINE)  # the first one holds
    assert not answering.may_leave_message()  # a person: no message
    assert answering.heard("Please leave a message after the tone", 5.0) is not None
    events.clear()
    beep = (3000 * np.sin(2 * np.pi * 1000 * np.arange(160) / 8000)).astype(np.int16)
    for _ in range(25):  # 0.5 s of beep, then quiet
        answering.watch.frame(beep, True)
    for _ in range(10):
        answering.watch.frame(np.zeros(160, np.int16), False)
    assert any(isinstance(e, SpeakNow) for e in events), events
    assert answering.may_leave_message() and not answering.may_leave_message()


def test_the_watch_joins_10_ms_frames_into_20_ms_ones() -> None:
    seen: list[object] = []
    watch = AnswerWatch(AmdSettings(), 16000, seen.append)
    for _ in range(200):  # 2 s of 10 ms silence
        watch.frame(np.zeros(160, np.int16), False)
    assert watch.detector.now_s == pytest.approx(2.0)


def test_a_machine_corrected_after_its_beep_gets_its_message_after_a_silence() -> None:
    events: list[object] = []
    answering = Answering(AmdSettings(), 8000, events.append)
    answering.decided(PERSON)
    assert answering.heard("Please leave a message after the tone", 11.5) is not None
    events.clear()
    for _ in range(100):  # 2 s of a machine recording quietly
        answering.watch.frame(np.zeros(160, np.int16), False)
    (speak,) = [e for e in events if isinstance(e, SpeakNow)]
    assert speak.at_s == pytest.approx(AmdSettings().greeting_end_silence_s, abs=0.05)
