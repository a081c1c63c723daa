"""call.speaker: each prompt synthesized, resampled and paced out, then reported played;
queued prompts wait their turn; a stop silences the prompt and everything behind it.

The pacer runs on a virtual clock (its sleeps advance it), so prompts play out at once."""

from __future__ import annotations

import asyncio
import wave
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.doubles import ToneTts
from voicebot.call import turns
from voicebot.call.speaker import MAX_PROMPT_CHARS, SYNTHESIS_AHEAD_S, Speaker, bounded
from voicebot.dialog.model import RecordedPrompt
from voicebot.media.codecs import ULAW
from voicebot.media.pacer import Pacer
from voicebot.media.rtp import RtpPacket
from voicebot.speech.tts.base import split_sentences
from voicebot.speech.tts.recorded import RecordedPrompts


class VirtualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@dataclass
class Stage:
    """A speaker wired as a session wires it, with what it sent and said recorded."""

    speaker: Speaker
    pacer: Pacer
    tts: ToneTts
    sent: list[RtpPacket] = field(default_factory=list)
    inputs: list[turns.TurnInput] = field(default_factory=list)
    first_audio: list[str] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def done(self) -> list[int]:
        """The prompts reported played out, in order."""
        return [i.prompt for i in self.inputs if isinstance(i, turns.PlaybackDone)]

    async def settle(self) -> None:
        """Until every prompt task has ended (played out, or stopped)."""
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(1000):
        if predicate():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


@pytest.fixture
async def stage() -> AsyncIterator[Stage]:
    clock = VirtualClock()
    tts = ToneTts(seconds_per_char=0.01, rate=16000)
    sent: list[RtpPacket] = []
    pacer = Pacer(sent.append, ULAW, ULAW.payload_type, clock, sleep=clock.sleep)
    tasks: list[asyncio.Task[None]] = []

    def spawn(coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        tasks.append(asyncio.create_task(coro, name=name))
        return tasks[-1]

    inputs: list[turns.TurnInput] = []
    first_audio: list[str] = []
    speaker = Speaker(
        call_id="t",
        tts=tts,
        recordings=RecordedPrompts(),
        pacer=pacer,
        codec=ULAW,
        deliver=inputs.append,
        spawn=spawn,
        on_first_audio=first_audio.append,
    )
    pacer.start()
    try:
        yield Stage(speaker, pacer, tts, sent, inputs, first_audio, tasks)
    finally:
        speaker.stop()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pacer.aclose()


async def test_a_prompt_is_played_text_by_text_then_reported_done(stage: Stage) -> None:
    stage.speaker.say(1, ["Hello.", "Goodbye."], queued=False)
    assert stage.speaker.speaking
    await stage.settle()
    assert stage.done() == [1]
    assert stage.first_audio == ["Hello.", "Goodbye."]
    assert stage.tts.spoken == ["Hello.", "Goodbye."]
    # 14 characters of 10 ms each, at 8 kHz G.711: 7 full 20 ms frames in one talkspurt.
    assert [len(p.payload) for p in stage.sent] == [160] * 7
    assert {p.payload_type for p in stage.sent} == {ULAW.payload_type}
    assert [p.marker for p in stage.sent] == [True] + [False] * 6
    assert not stage.speaker.speaking and not stage.pacer.is_playing


async def test_a_queued_prompt_waits_for_the_one_playing(stage: Stage) -> None:
    stage.speaker.say(1, ["One moment."], queued=False)
    stage.speaker.say(2, ["Done."], queued=True)
    await stage.settle()
    assert stage.done() == [1, 2]
    assert stage.first_audio == ["One moment.", "Done."]


async def test_a_new_prompt_starts_unpaused(stage: Stage) -> None:
    stage.speaker.say(1, ["Hello."], queued=False)
    stage.speaker.pause()
    stage.speaker.say(2, ["Goodbye."], queued=False)  # e.g. after a key: a new state's prompt
    assert not stage.pacer.paused
    await stage.settle()
    assert stage.done() == [2]


async def test_a_prompt_not_queued_replaces_the_one_playing(stage: Stage) -> None:
    stage.speaker.say(1, ["Say balance or operator."], queued=False)
    stage.speaker.say(2, ["Your code?"], queued=False)
    await stage.settle()
    assert stage.done() == [2]
    assert stage.first_audio == ["Your code?"]


async def test_stop_drops_the_audio_waiting_to_go_out(stage: Stage) -> None:
    stage.speaker.say(1, ["Hello."], queued=False)
    stage.speaker.pause()  # holds the frames back, as a caller's voice onset does
    assert stage.pacer.paused
    await until(lambda: stage.pacer.queued_frames == 3)
    assert stage.speaker.stop() == 3
    await stage.settle()
    assert stage.sent == [] and stage.done() == []
    assert not stage.speaker.speaking and not stage.pacer.paused


async def test_pause_and_resume_hold_the_prompt_and_go_on_from_there(stage: Stage) -> None:
    stage.speaker.say(1, ["Hello."], queued=False)
    stage.speaker.pause()
    await until(lambda: stage.pacer.queued_frames == 3)
    assert stage.sent == [] and stage.done() == []
    stage.speaker.resume()
    assert not stage.pacer.paused
    await stage.settle()
    assert len(stage.sent) == 3 and stage.done() == [1]


async def test_stop_during_a_prompt_stops_the_one_queued_behind_it_too(stage: Stage) -> None:
    stage.speaker.say(1, ["One moment."], queued=False)
    stage.speaker.pause()
    await until(lambda: bool(stage.first_audio))
    stage.speaker.say(2, ["Done."], queued=True)
    await asyncio.sleep(0)  # the queued prompt is waiting for the first
    stage.speaker.stop()
    await stage.settle()
    assert stage.done() == [] and stage.first_audio == ["One moment."]
    assert all(task.cancelled() for task in stage.tasks)


class GatedTts(ToneTts):
    """Synthesizes a prompt's first text at once and each later one when ``gate`` opens."""

    def __init__(self) -> None:
        super().__init__(seconds_per_char=0.01, rate=16000)
        self.gate = asyncio.Event()

    async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        if self.spoken:
            await self.gate.wait()
        async for chunk in super().stream(text):
            yield chunk


async def test_stop_right_after_queueing_stops_the_prompt_playing_too(stage: Stage) -> None:
    """A barge-in handled in the same step as the prompt queued behind the one playing (two
    inputs read from the session's queue at once): neither may go on."""
    tts = GatedTts()
    stage.speaker.tts = tts
    stage.speaker.say(1, ["One moment.", "Please hold."], queued=False)
    await until(lambda: stage.first_audio == ["One moment."])
    stage.speaker.say(2, ["Done."], queued=True)
    stage.speaker.stop()
    sent_at_stop = len(stage.sent)
    tts.gate.set()  # the rest of the first prompt would be ready now
    await stage.settle()
    assert stage.first_audio == ["One moment."]
    assert len(stage.sent) - sent_at_stop <= 1  # at most the frame going out at the stop
    assert stage.done() == []


async def test_stop_with_nothing_playing_drops_nothing(stage: Stage) -> None:
    assert not stage.speaker.speaking
    assert stage.speaker.stop() == 0


@pytest.mark.parametrize(
    ("texts", "limit", "spoken"),
    [
        (["Hello.", "Goodbye."], 100, ("Hello.", "Goodbye.")),  # within: untouched
        (["One. Two. Three."], 10, ("One. Two.",)),  # cut after the last sentence that fits
        (["Hello.", "One. Two. Three."], 12, ("Hello.", "One.")),
        (["Hello.", "Goodbye."], 6, ("Hello.",)),  # a text that does not fit at all is dropped
        (["word " * 10], 12, ("word word",)),  # one endless sentence: cut at a word
        (["x" * 50], 10, ("x" * 10,)),  # not even a word: cut at the limit
    ],
)
def test_a_prompt_is_bounded_at_a_sentence_end(
    texts: list[str], limit: int, spoken: tuple[str, ...]
) -> None:
    assert bounded(texts, limit) == spoken


async def test_a_prompt_longer_than_the_bound_is_cut_and_said_so(
    stage: Stage, caplog: pytest.LogCaptureFixture
) -> None:
    endless = " ".join(f"Item {n} is ready." for n in range(1000))  # ~17,000 characters
    stage.speaker.say(1, [endless], queued=False)
    await until(lambda: len(stage.first_audio) == 1)
    (said,) = stage.first_audio
    assert len(said) <= MAX_PROMPT_CHARS and said.endswith("is ready.")
    assert f"a prompt of {len(endless)} characters cut to {len(said)}" in caplog.text
    stage.speaker.stop()


class SentenceTts(ToneTts):
    """One chunk per sentence, counting how many were asked for (synthesized)."""

    def __init__(self) -> None:
        super().__init__(seconds_per_char=0.01, rate=16000)
        self.chunks_made = 0

    async def stream(self, text: str) -> AsyncIterator[np.ndarray]:
        self.spoken.append(text)
        for sentence in split_sentences(text):
            self.chunks_made += 1
            yield np.full(int(len(sentence) * self.seconds_per_char * self.rate), 900, np.int16)


async def test_a_long_prompt_is_synthesized_only_a_little_ahead_of_the_caller(
    stage: Stage,
) -> None:
    tts = SentenceTts()
    stage.speaker.tts = tts
    long_answer = " ".join(f"Item {n} is ready." for n in range(80))  # ~1,400 characters: 14 s
    stage.speaker.say(1, [long_answer], queued=False)
    stage.speaker.pause()  # the caller is talking: nothing drains
    await until(lambda: tts.chunks_made > 0)
    await asyncio.sleep(0.5)  # time enough to synthesize and resample all 80, were it asked
    sentence_s = 0.17
    assert stage.pacer.queued_seconds <= SYNTHESIS_AHEAD_S + sentence_s
    assert tts.chunks_made <= (SYNTHESIS_AHEAD_S + sentence_s) / 0.16 + 1  # of 80
    stage.speaker.resume()
    await stage.settle()  # and the whole prompt is still heard
    assert stage.done() == [1] and tts.chunks_made == 80
    assert len(stage.sent) == pytest.approx(len(long_answer) * 0.01 / 0.02, abs=90)


def write_wav(path: Path, seconds: float, rate: int, channels: int) -> Path:
    frames = int(seconds * rate)
    tone = (np.sin(np.arange(frames) * 2 * np.pi * 440 / rate) * 8000).astype("<i2")
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(np.repeat(tone, channels).tobytes())
    return path


async def test_a_recorded_prompt_plays_between_texts_through_the_same_pacer(
    stage: Stage, tmp_path: Path
) -> None:
    file = write_wav(tmp_path / "welcome.wav", 0.2, 44100, 2)  # any rate, stereo
    welcome = RecordedPrompt("audio", "welcome.wav", str(file))
    stage.speaker.say(1, [welcome, "Goodbye."], queued=False)
    await stage.settle()
    assert stage.done() == [1]
    assert stage.first_audio == ["[audio welcome.wav]", "Goodbye."]
    assert stage.tts.spoken == ["Goodbye."]  # the recording is not synthesized
    # 0.2 s of recording and 8 characters of 10 ms: 10 + 4 frames at 8 kHz.
    assert [len(p.payload) for p in stage.sent] == [160] * 14


async def test_a_recorded_prompt_is_stopped_like_speech(stage: Stage, tmp_path: Path) -> None:
    file = write_wav(tmp_path / "long.wav", 5.0, 8000, 1)
    stage.speaker.say(1, [RecordedPrompt("sound", "long", str(file))], queued=False)
    stage.speaker.pause()
    await until(lambda: stage.pacer.queued_frames > 0)
    stage.speaker.stop()
    await stage.settle()
    assert stage.sent == [] and stage.done() == []
    assert stage.first_audio == ["[sound long]"]
