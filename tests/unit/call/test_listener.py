"""call.listener: a streaming recognizer hears a turn once, across the caller's pauses."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from tests.support.audio import ALLISON
from tests.support.doubles import RecordingDetector, StreamingListAsr
from voicebot.call import turns
from voicebot.call.listener import Listener
from voicebot.capture.wav import read_wav
from voicebot.config import VadConfig
from voicebot.media.codecs import ULAW, resample
from voicebot.media.rtp import RtpPacket

FRAME = 160  # 20 ms of G.711


class QueueEndpoint:
    """The listener's side of an RtpEndpoint: packets as the test hands them over."""

    def __init__(self) -> None:
        self.packets: asyncio.Queue[RtpPacket] = asyncio.Queue()

    async def receive(self, timeout: float | None = None) -> RtpPacket | None:  # noqa: ASYNC109
        try:
            packet = await asyncio.wait_for(self.packets.get(), timeout)
        except TimeoutError:
            return None
        self.packets.task_done()
        return packet

    def note_undecodable(self, exc: ValueError) -> None:
        raise AssertionError(exc)


async def test_a_pause_peeks_and_the_rest_of_the_turn_is_fed_once() -> None:
    pcm, rate = read_wav(str(ALLISON / "hours.wav"))
    word = resample(pcm, rate, 8000)
    caller = np.concatenate([word, np.zeros(2400, np.int16), word, np.zeros(4000, np.int16)])
    asr = StreamingListAsr(["hours hours"])
    endpoint = QueueEndpoint()
    inputs: list[turns.TurnInput] = []
    tasks: list[asyncio.Task[Any]] = []

    def spawn(coro: Any, name: str) -> asyncio.Task[Any]:
        tasks.append(asyncio.create_task(coro, name=name))
        return tasks[-1]

    listener = Listener(
        call_id="t", endpoint=endpoint, codec=ULAW, vad=VadConfig(), asr=asr,  # type: ignore[arg-type]
        turn_detector=None, deliver=inputs.append, spawn=spawn,
    )  # fmt: skip
    receiving = asyncio.create_task(listener.run())
    try:
        for n, start in enumerate(range(0, caller.size - FRAME + 1, FRAME)):
            payload = ULAW.encode(caller[start : start + FRAME])
            await endpoint.packets.put(RtpPacket(0, n, n * FRAME, 1, payload))
            await endpoint.packets.join()  # the listener has taken it
            await asyncio.sleep(0)
            paused = [i for i in inputs if isinstance(i, turns.VoicePaused)]
            if len(paused) == 1 and not any(isinstance(i, turns.Transcribed) for i in inputs):
                await listener.decode(1, paused[0].audio)  # the core's speculative decode
        await asyncio.sleep(0.05)
        paused = [i for i in inputs if isinstance(i, turns.VoicePaused)]
        heard = [i for i in inputs if isinstance(i, turns.Transcribed)]
        assert len(paused) == 2, inputs
        # The speculative decode came from the stream itself: no second recognizer.
        assert [h.text for h in heard] == ["hours hours"]
        # Every sample of the turn reached the recognizer once: nothing re-fed after the pause.
        fed = sum(asr.audio_seconds)
        turn = listener.turn_audio().size / 16000
        assert abs(fed - turn) < 0.1, (fed, turn)
        listener.close_turn()
        await asyncio.sleep(0)
        assert asr.answers == []  # the stream ended with the turn
    finally:
        receiving.cancel()
        for task in tasks:
            task.cancel()
        await asyncio.gather(receiving, *tasks, return_exceptions=True)


async def test_a_judgement_cuts_around_the_voice_end_at_the_models_rate() -> None:
    detector = RecordingDetector()
    inputs: list[turns.TurnInput] = []
    listener = Listener(
        call_id="t", endpoint=QueueEndpoint(), codec=ULAW, vad=VadConfig(),  # type: ignore[arg-type]
        asr=StreamingListAsr([]), turn_detector=detector, deliver=inputs.append,
        spawn=asyncio.create_task,
    )  # fmt: skip
    # One second of turn at the recognizer's 16 kHz, the last 0.15 s silence after the voice.
    await listener.judge(3, np.zeros(16000, np.int16), trailing_s=0.15)
    assert detector.asked == [13280, 13600, 13920]  # the voice end, and 20 ms either side
    (judged,) = inputs
    assert isinstance(judged, turns.TurnJudged) and judged.turn_audio == 3
    assert judged.complete == pytest.approx(1.36)
