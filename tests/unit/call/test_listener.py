"""call.listener: a streaming recognizer hears a turn once, across the caller's pauses."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Sequence
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from tests.support.audio import ALLISON, TURNS
from tests.support.doubles import ListAsr, RecordingDetector, StreamingListAsr, ToneTts
from voicebot.call import CallSession, SpeechServices, turns
from voicebot.call import listener as listener_module
from voicebot.call import session as session_module
from voicebot.call import speaker as speaker_module
from voicebot.call.listener import Listener
from voicebot.call.turns import MAX_TURN_VOICE_S
from voicebot.capture.wav import read_wav
from voicebot.config import VadConfig
from voicebot.dialog.parser import parse_script
from voicebot.media.codecs import ULAW, resample
from voicebot.media.rtp import RtpPacket
from voicebot.speech.asr.base import Recognizer, Transcript
from voicebot.tools.takes import take

FRAME = 160  # 20 ms of G.711
MENU = parse_script(
    """
start: main
defaults: {max_retries: 9}
states:
  main:
    say: "Say hours."
    expect:
      hours: {phrases: ["opening hours"], goto: bye}
  bye:
    say: "Goodbye."
    hangup: true
""",
    "menu.yaml",
)


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


# -- parts: each pause hands over the voice since the previous one ----------------------------


class Ear:
    """A listener on a QueueEndpoint, its inputs to the core kept in order."""

    def __init__(self, asr: ListAsr) -> None:
        self.endpoint = QueueEndpoint()
        self.inputs: list[turns.TurnInput] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.sent = 0
        self.listener = Listener(
            call_id="t", endpoint=self.endpoint, codec=ULAW, vad=VadConfig(), asr=asr,  # type: ignore[arg-type]
            turn_detector=None, deliver=self.inputs.append, spawn=self.spawn,
        )  # fmt: skip

    def spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        self.tasks.append(asyncio.create_task(coro, name=name))
        return self.tasks[-1]

    async def say(self, pcm: np.ndarray) -> None:
        """Hand over ``pcm`` (8 kHz) as packets; each is taken before the next."""
        for start in range(0, pcm.size - FRAME + 1, FRAME):
            payload = ULAW.encode(pcm[start : start + FRAME])
            await self.endpoint.packets.put(RtpPacket(0, self.sent, self.sent * FRAME, 1, payload))
            self.sent += 1
            await self.endpoint.packets.join()

    def of(self, kind: type[Any]) -> list[Any]:
        return [i for i in self.inputs if isinstance(i, kind)]

    async def __aenter__(self) -> Ear:
        self.spawn(self.listener.run(), "rx")
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * 8000), np.int16)


async def test_a_pause_hands_over_the_new_part_with_its_lead_in_and_the_whole_turn() -> None:
    async with Ear(ListAsr([])) as ear:
        await ear.say(np.concatenate([quiet(0.5), voiced(1.0, 0), quiet(0.4), voiced(0.8, 1),
                                      quiet(0.4)]))  # fmt: skip
    first, second = ear.of(turns.VoicePaused)
    assert first.whole.size == first.audio.size
    part_s, whole_s = second.audio.size / 16000, second.whole.size / 16000
    # The second stretch, up to 0.3 s of the quiet before it (for its first phoneme), the
    # pause and what the resampler held back.
    assert 0.8 + 0.15 < part_s < 0.8 + 0.16 + 0.3 + 0.12, part_s
    assert np.array_equal(second.whole[-second.audio.size :], second.audio)
    # The whole turn from the first stretch's pre-roll: for the turn model.
    assert 0.3 + 1.0 + 0.4 + 0.8 + 0.15 - 0.05 < whole_s < 0.3 + 1.0 + 0.4 + 0.8 + 0.2, whole_s
    assert first.pitched_s > 0.5 and second.pitched_s > 0.4  # each part's own


class SlowAsr(ListAsr):
    """Says which decode each result is, after some decode time; counts those at once."""

    def __init__(self, max_audio_s: float | None = None) -> None:
        super().__init__([])
        self.max_audio_s = max_audio_s
        self.running = self.most_at_once = self.decodes = 0

    def recognizer(
        self, phrases: Sequence[str] | None = None, *, grammar: bool = False
    ) -> Recognizer:
        engine = self

        class _Slow(Recognizer):
            async def feed(self, pcm: np.ndarray) -> Transcript | None:
                engine.audio_seconds.append(pcm.size / 16000)
                return None

            async def finish(self) -> Transcript:
                engine.decodes += 1
                number = engine.decodes
                engine.running += 1
                engine.most_at_once = max(engine.most_at_once, engine.running)
                await asyncio.sleep(0.01)
                engine.running -= 1
                return Transcript(f"word{number}", is_final=True, confidence=number / 10)

        return _Slow()


async def test_decodes_run_one_at_a_time_in_order_and_not_for_a_closed_turn() -> None:
    asr = SlowAsr()
    async with Ear(asr) as ear:
        second = np.ones(3200, np.int16)
        await asyncio.gather(*(ear.listener.decode(n + 1, second * (n + 1), n, n == 1)
                               for n in range(3)))  # fmt: skip
        assert asr.most_at_once == 1
        heard = ear.of(turns.Transcribed)
        assert [(h.turn_audio, h.part, h.text, h.cumulative) for h in heard] == [
            (1, 0, "word1", False), (2, 1, "word2", True), (3, 2, "word3", False)
        ]  # fmt: skip
        # Two more asked; the turn is closed while the first runs: the second never is.
        waiting = [asyncio.create_task(ear.listener.decode(n, second, 0)) for n in (4, 5)]
        await asyncio.sleep(0)
        ear.listener.close_turn()
        await asyncio.gather(*waiting)
        assert asr.decodes == 4 and len(asr.audio_seconds) == 4


async def test_a_whole_turn_decode_still_waiting_when_a_later_pause_asks_again_is_skipped() -> None:
    asr = SlowAsr()
    async with Ear(asr) as ear:
        second = np.ones(3200, np.int16)
        await asyncio.gather(*(ear.listener.decode(n + 1, second, n, cumulative=True)
                               for n in range(3)))  # fmt: skip
    # The first was running; the second, still waiting, is no use once the third is asked.
    assert [(h.turn_audio, h.part) for h in ear.of(turns.Transcribed)] == [(1, 0), (3, 2)]


async def test_a_part_longer_than_the_recognizers_window_is_decoded_in_pieces() -> None:
    asr = SlowAsr(max_audio_s=1.0)
    async with Ear(asr) as ear:
        await ear.listener.decode(7, np.ones(40000, np.int16), 2)  # 2.5 s
    assert asr.audio_seconds == pytest.approx([2.5 / 3] * 3, rel=1e-3)  # none over the window
    (heard,) = ear.of(turns.Transcribed)
    assert (heard.turn_audio, heard.part, heard.text) == (7, 2, "word1 word2 word3")
    assert heard.confidence == pytest.approx(0.1)  # the least sure piece's


async def test_a_cut_hands_over_the_turn_and_the_voice_that_goes_on_is_the_next() -> None:
    async with Ear(ListAsr([])) as ear:
        talk = voiced(3.0, 0)
        await ear.say(np.concatenate([quiet(0.5), talk[:8000]]))
        ear.listener.cut_turn()
        (cut,) = ear.of(turns.VoicePaused)
        assert 1.0 < cut.audio.size / 16000 < 1.0 + 0.3 + 0.05
        assert cut.pitched_s > 0  # confirmed speech
        await ear.say(talk[8000:16000])
        assert len(ear.of(turns.VoicePaused)) == 1  # nothing more until the cut turn closes
        ear.listener.close_turn()
        assert isinstance(ear.inputs[-2], turns.VoiceStarted)
        assert isinstance(ear.inputs[-1], turns.VoiceConfirmed)
        await ear.say(np.concatenate([talk[16000:], quiet(0.4)]))
    _, after = ear.of(turns.VoicePaused)
    # The voice since the cut, none of it lost; and the turn's audio starts there.
    assert 2.0 < after.audio.size / 16000 < 2.0 + 0.25
    assert after.whole.size == after.audio.size


# -- bounded work: a long talker, with the real listener, turn core and session ---------------


class _SkippingSelector(selectors.DefaultSelector):
    """Never waits for a timer: it moves the loop's clock to it instead."""

    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = super().select(0)
        if not ready and timeout is not None and timeout > 0:
            self.now += timeout
        elif not ready and timeout is None:
            ready = super().select(None)  # waiting on a thread: its result wakes us
        return ready


class VirtualClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock jumps to the next timer whenever nothing else is ready: a
    call of minutes runs in a second, with every timer and pause where it would be."""

    def __init__(self) -> None:
        self.selector = _SkippingSelector()
        super().__init__(self.selector)

    def time(self) -> float:
        return self.selector.now


class PacedCaller:
    """The bot's end of the line: the caller's audio, a 20 ms packet every 20 ms."""

    def __init__(self, pcm: np.ndarray) -> None:
        self.pcm = pcm
        self.sent = 0
        self.done = asyncio.Event()

    async def receive(self, timeout: float | None = None) -> RtpPacket | None:  # noqa: ASYNC109
        await asyncio.sleep(FRAME / 8000)
        start = self.sent * FRAME
        if start + FRAME > self.pcm.size:
            self.done.set()
            return None
        self.sent += 1
        payload = ULAW.encode(self.pcm[start : start + FRAME])
        return RtpPacket(0, self.sent % 65536, start, 1, payload)

    def send(self, packet: RtpPacket) -> None:
        pass

    def note_undecodable(self, exc: ValueError) -> None:
        raise AssertionError(exc)


class CountingAsr(ListAsr):
    """Words that fit no answer ("blah blah": the caller never finishes an answer), after
    ~5 % of the audio's length in (virtual) decode time; counts the audio and the decodes
    running at once."""

    def __init__(self) -> None:
        super().__init__([])
        self.running = 0
        self.most_at_once = 0

    def recognizer(
        self, phrases: Sequence[str] | None = None, *, grammar: bool = False
    ) -> Recognizer:
        engine = self

        class _Counting(Recognizer):
            fed = 0.0

            async def feed(self, pcm: np.ndarray) -> Transcript | None:
                engine.audio_seconds.append(pcm.size / 16000)
                self.fed += pcm.size / 16000
                return None

            async def finish(self) -> Transcript:
                engine.running += 1
                engine.most_at_once = max(engine.most_at_once, engine.running)
                try:
                    await asyncio.sleep(0.02 + 0.05 * self.fed)
                finally:
                    engine.running -= 1
                return Transcript("blah blah", is_final=True)

        return _Counting()


def voiced(seconds: float, seed: int) -> np.ndarray:
    """A vowel-like stretch at 8 kHz: a 100-140 Hz voice with harmonics, syllable-modulated."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 8000)) / 8000
    f0 = rng.uniform(100, 140) * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / 8000
    wave = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6))
    return (wave * envelope * 4000).astype(np.int16)


STRETCH_S = 1.7
STRETCHES = 71  # 120.7 s of voice


def long_talk() -> np.ndarray:
    """``STRETCHES`` of voice ``STRETCH_S`` long, 0.3-0.6 s apart, then 3 s of quiet."""
    rng = np.random.default_rng(1)
    pieces = [np.zeros(8000, np.int16)]
    for n in range(STRETCHES):
        pieces += [voiced(STRETCH_S, n), np.zeros(int(rng.uniform(0.3, 0.6) * 8000), np.int16)]
    pieces.append(np.zeros(3 * 8000, np.int16))
    return np.concatenate(pieces)


def test_two_minutes_of_talk_with_short_pauses_costs_the_recognizer_its_audio_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The issue's acceptance test for bounded work: 120 s of voice in 1.7 s stretches, each
    pause too short to end the turn, send at most 1.5x the voice to the recognizer (every
    pause re-decoded the whole turn: 30x), one decode at a time, and turns are cut at the cap."""
    loop = VirtualClockLoop()
    clock = SimpleNamespace(monotonic=loop.time)
    for module in (listener_module, session_module, speaker_module):
        monkeypatch.setattr(module, "time", clock)
    asr = CountingAsr()

    async def talk() -> CallSession:
        caller = PacedCaller(long_talk())
        session = CallSession(
            call_id="talker", endpoint=caller, codec=ULAW, script=MENU,  # type: ignore[arg-type]
            services=SpeechServices(asr, ToneTts(0.002)), vad=VadConfig(),
        )  # fmt: skip
        running = asyncio.create_task(session.run())
        await asyncio.wait([running, asyncio.create_task(caller.done.wait())],
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        assert not running.done(), running
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        return session

    try:
        session = loop.run_until_complete(talk())
    finally:
        loop.close()
    sent, voice = sum(asr.audio_seconds), STRETCHES * STRETCH_S
    assert sent <= 1.5 * voice, f"{sent:.0f} s of audio sent for {voice:.0f} s of voice"
    assert asr.most_at_once == 1
    # Cut at the cap (and answered with the no-match) every 30 s, the last at the quiet.
    heard = [line.text for line in session.transcript if line.who == "caller"]
    assert len(heard) >= 5, heard
    assert all(len(text.split()) <= 2 * MAX_TURN_VOICE_S / (STRETCH_S + 0.3) for text in heard)


# -- whose voice: the room's voice far under the caller's opens no turn -----------------------


async def test_talk_16_db_under_the_caller_opens_no_turn_and_is_silenced_for_asr() -> None:
    """Allison answers "extension" with two other speakers talking 16 dB under her from the
    start (the turn set's background16-extension-allison.wav: the room 0.1-5.56 s, Allison
    3.1-4.06 s); a greeting plays for the first 2.5 s."""
    pcm, rate = read_wav(str(TURNS / "background16-extension-allison.wav"))
    assert rate == 8000
    async with Ear(ListAsr([])) as ear:
        ear.listener.prompt_playing = True
        await ear.say(pcm[: 2 * 8000 + 4000])
        assert ear.of(turns.VoiceStarted) == []  # the greeting is neither paused nor stopped
        ear.listener.prompt_playing = False
        await ear.say(np.concatenate([pcm[2 * 8000 + 4000 :], quiet(1.0)]))
    # One turn: Allison's. The room before and after her opened none.
    assert len(ear.of(turns.VoiceStarted)) == 1
    (paused,) = ear.of(turns.VoicePaused)
    part = paused.audio.astype(np.float64)
    # Her word with its lead-in and the hangover after it; the room around it silenced.
    assert 0.96 < part.size / 16000 < 0.96 + 0.3 + 0.3 + 0.5, part.size / 16000
    lead = part[: 16000 * 15 // 100]
    assert np.sqrt(np.mean(lead**2)) < 30, "the room's voice before her onset reached the ASR"


async def test_a_taken_turn_teaches_the_listener_the_callers_level() -> None:
    pcm, rate = read_wav(str(ALLISON / "hours.wav"))
    word = resample(pcm, rate, 8000)
    async with Ear(ListAsr([])) as ear:
        await ear.say(np.concatenate([quiet(0.3), word, quiet(0.6)]))
        assert ear.listener.voice_levels.caller_db is None
        ear.listener.caller_spoke()
        learned = ear.listener.voice_levels.caller_db
    frames = word[: word.size // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    loud = 10 * np.log10(np.mean(frames**2, axis=1) / 32768**2)
    assert learned is not None and loud.max() - 12 < learned < loud.max(), (learned, loud.max())


async def test_the_room_talking_just_before_the_caller_is_silenced_once_they_speak_up() -> None:
    """No prompt, nothing learned: the room (22 dB under) starts 0.4-0.6 s before the caller
    says "an extension number" (background22-extension-number-en-gb-x-rp.wav, take 1). Its
    voice opens the turn, but once the caller's voice rises out of it, it is silenced."""
    pcm, _ = read_wav(str(TURNS / "background22-extension-number-en-gb-x-rp.wav"))
    played = take(pcm, 1)
    caller_at = played.lead_s + 1.1
    async with Ear(ListAsr([])) as ear:
        await ear.say(np.concatenate([played.pcm, quiet(1.0)]))
    # The room's voice paused once before the caller spoke: two parts of one turn.
    _room, caller = ear.of(turns.VoicePaused)
    whole = np.abs(caller.whole.astype(np.float64))
    first = int(np.argmax(whole > 100)) / 16000
    # The turn starts 0.3 s before the room's onset (~0.7 s into the take); the caller's
    # voice, less the 0.1 s look-ahead, is the first sound in it for the recognizer.
    assert first > 0.3 + (caller_at - 0.1 - 0.75), first
    assert np.sqrt(np.mean(whole[round(first * 16000) :] ** 2)) > 300


async def test_a_caller_rising_out_of_the_room_keeps_their_first_soft_sound() -> None:
    """Silencing the room up to the rise cut the caller's first sound: whisper heard "So, it
    is mentioned" for "an extension number" 22 dB over the room, on every take."""
    # The room alone: the first second of a turn-set file, two voices 22 dB under its caller.
    pcm, _ = read_wav(str(TURNS / "background22-extension-number-en-gb-x-rp.wav"))
    room = pcm[: round(1.05 * 8000)]
    soft = (voiced(0.1, 4) * 0.3).astype(np.int16)  # -31 dBFS: not yet a rise
    loud = (voiced(0.6, 5) * 1.5).astype(np.int16)  # -17 dBFS
    async with Ear(ListAsr([])) as ear:
        await ear.say(np.concatenate([room, soft, loud, quiet(0.8)]))
    whole = ear.of(turns.VoicePaused)[-1].whole.astype(np.float64)
    levels = [float(np.sqrt(np.mean(whole[i : i + 320] ** 2))) for i in range(0, whole.size, 320)]
    rise = next(i for i, level in enumerate(levels) if level > 2000)  # 20 ms windows
    # The 80 ms before the voice is loud (the soft start, the voice rising) are all there.
    assert min(levels[rise - 4 : rise]) > 100, levels[rise - 6 : rise + 1]
    assert max(levels[: rise - 12]) < 30, "the room's voice before the caller was kept"
