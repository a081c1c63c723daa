"""The caller's side of a call: RTP in → voice activity and the turn's audio, and decodes.

The listener only does I/O and bookkeeping: it turns packets into the turn core's voice
inputs, keeps the audio of the turn in progress at the recognizer's rate, and runs the
decodes and turn-model judgements the core asks for, off the event loop. What any of it
means is the core's business.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..config import VadConfig
from ..media.codecs import Codec, Resampler, resample
from ..media.endpoint import RtpEndpoint
from ..media.inbound import FrameAssembler
from ..speech.asr.base import AsrEngine, Transcript
from ..speech.turn.base import TurnDetector
from ..speech.vad import SpeechConfirmed, VoiceBegan, VoicePaused, VoiceSegmenter
from . import turns

log = logging.getLogger(__name__)

# No packet for this long means the caller's phone went quiet (many phones send nothing in
# silence): count it as silence so the segmenter still sees the pause. Three frames: jitter
# rarely holds a packet that long, and a late one only adds a little silence to the turn.
RECEIVE_GAP_S = 0.06

Deliver = Callable[[turns.TurnInput], None]


class _Peek:
    """A request, in the stream's queue behind the audio fed so far, for what it says."""

    def __init__(self) -> None:
        self.result: asyncio.Future[Transcript | None] = asyncio.get_running_loop().create_future()


class Listener:
    def __init__(
        self,
        *,
        call_id: str,
        endpoint: RtpEndpoint,
        codec: Codec,
        vad: VadConfig,
        asr: AsrEngine,
        turn_detector: TurnDetector | None,
        deliver: Deliver,
        spawn: Callable[..., asyncio.Task[Any]],
        on_payload_type: Callable[[int], None] | None = None,
    ) -> None:
        self.call_id = call_id
        self.endpoint = endpoint
        self.asr = asr
        self.turn_detector = turn_detector
        self._deliver = deliver
        self._spawn = spawn
        self._on_payload_type = on_payload_type
        # The VAD hears the caller's own samples (8 kHz for G.711): nothing held back.
        self._assembler = FrameAssembler(codec, vad.frame_ms, out_rate=codec.sample_rate)
        self._segmenter = VoiceSegmenter(vad, codec.sample_rate)
        # The recognizer gets its own rate, from a resampler beside the VAD.
        self._to_asr = Resampler(codec.sample_rate, asr.sample_rate)
        preroll_frames = max(1, vad.preroll_ms // vad.frame_ms)
        self._preroll: deque[np.ndarray] = deque(maxlen=preroll_frames)
        self._turn_audio: list[np.ndarray] | None = None  # the turn in progress, ASR rate
        self._turn_pitched_s = 0.0  # pitched voice in the turn so far
        # What the state expects: a hint for the recognizer, a grammar where the script asks.
        self.phrases: Sequence[str] | None = None
        self.grammar = False
        # Streaming engines (Vosk) are fed while the caller speaks, one recognizer for the
        # whole turn: a pause only peeks at what it has heard, and if the caller goes on it
        # simply hears more. Little is left to do at a pause; CPU is spent only on speech.
        self._stream: asyncio.Queue[np.ndarray | _Peek | None] | None = None
        self._stream_task: asyncio.Task[None] | None = None

    # -- the receive loop (one task per call) -------------------------------------------

    async def run(self) -> None:
        while True:
            packet = await self.endpoint.receive(timeout=RECEIVE_GAP_S)
            if packet is None:
                frames = self._assembler.silence(RECEIVE_GAP_S)
            else:
                if self._on_payload_type is not None:
                    self._on_payload_type(packet.payload_type)
                try:
                    frames = self._assembler.push_packet(packet)
                except ValueError as exc:  # e.g. an odd-length linear payload
                    self.endpoint.note_undecodable(exc)
                    continue
            for frame in frames:
                self._frame(frame)

    def _frame(self, frame: np.ndarray) -> None:
        events = self._segmenter.feed(frame)
        asr_audio = self._to_asr.process(frame)
        if self._turn_audio is not None:
            self._turn_audio.append(asr_audio)
            if self._stream is not None:
                self._stream.put_nowait(asr_audio)
        else:
            self._preroll.append(asr_audio)
        if not events:
            return
        now = time.monotonic()
        behind = self._segmenter.stream_time
        for event in events:
            if isinstance(event, VoiceBegan):
                if self._turn_audio is None:
                    self._turn_audio = list(self._preroll)
                    self._preroll.clear()
                if self.asr.streaming and self._stream is None:
                    self._start_stream()
                self._deliver(turns.VoiceStarted(now - (behind - event.stream_time)))
            elif isinstance(event, SpeechConfirmed):
                self._deliver(turns.VoiceConfirmed(now))
            elif isinstance(event, VoicePaused):
                # The resampler holds back the last 10-115 ms it was given: let it out, so
                # the decode hears the whole last word, not only what came before.
                held_back = self._to_asr.process(np.zeros(0, np.int16), last=True)
                if self._turn_audio is not None:
                    self._turn_audio.append(held_back)
                    if self._stream is not None:
                        self._stream.put_nowait(held_back)
                audio = self.turn_audio()
                voice_end = now - (behind - event.voice_end)
                self._turn_pitched_s += event.pitched_s
                self._deliver(turns.VoicePaused(now, voice_end, audio, self._turn_pitched_s))

    @property
    def in_voice(self) -> bool:
        return self._segmenter.in_voice

    def turn_audio(self) -> np.ndarray:
        if not self._turn_audio:
            return np.zeros(0, dtype=np.int16)
        return np.concatenate(self._turn_audio)

    # -- commands from the core ---------------------------------------------------------

    def close_turn(self) -> None:
        """The turn is handled or dropped: the next voice starts a new one."""
        self._turn_audio = None
        self._turn_pitched_s = 0.0
        self._end_stream()

    async def decode(self, turn_audio: int, audio: np.ndarray) -> None:
        """Transcribe ``audio`` (one task per decode; a result for old audio is dropped by
        the core, so nothing here needs cancelling when the caller goes on)."""
        transcript: Transcript | None = None
        if self._stream is not None:
            # The stream has heard the same audio, as it came: what it has so far is the
            # speculative result, and the stream goes on if the caller does.
            peek = _Peek()
            self._stream.put_nowait(peek)
            transcript = await peek.result
        if transcript is None:
            recognizer = self.asr.recognizer(self.phrases, grammar=self.grammar)
            try:
                await recognizer.feed(audio)
                transcript = await recognizer.finish()
            finally:
                recognizer.close()
        self._deliver(
            turns.Transcribed(time.monotonic(), turn_audio, transcript.text, transcript.confidence)
        )

    def _start_stream(self) -> None:
        """A recognizer for the turn, fed what the turn holds so far, then frame by frame
        until the turn is closed."""
        frames: asyncio.Queue[np.ndarray | _Peek | None] = asyncio.Queue()
        frames.put_nowait(self.turn_audio())
        self._stream = frames
        self._stream_task = self._spawn(self._feed_stream(frames), "asr-stream")

    def _end_stream(self) -> None:
        self._stream_task = None  # the session owns the task; it ends at the None below
        if self._stream is not None:
            self._stream.put_nowait(None)
            self._stream = None

    async def _feed_stream(self, frames: asyncio.Queue[np.ndarray | _Peek | None]) -> None:
        recognizer = self.asr.recognizer(self.phrases, grammar=self.grammar)
        try:
            while (item := await frames.get()) is not None:
                if isinstance(item, _Peek):
                    try:
                        heard = await recognizer.peek()
                    except asyncio.CancelledError:
                        item.result.cancel()
                        raise
                    except Exception as exc:
                        item.result.set_exception(exc)  # the decode fails, and so the call
                        raise
                    item.result.set_result(heard)
                elif item.size:
                    partial = await recognizer.feed(item)
                    if partial is not None and partial.text:
                        log.debug("call %s: partial %r", self.call_id, partial.text)
        finally:
            recognizer.close()
            # A decode still waiting when the turn is closed or the call ends: nothing to say.
            while not frames.empty():
                left = frames.get_nowait()
                if isinstance(left, _Peek) and not left.result.done():
                    left.result.set_result(None)

    async def judge(self, turn_audio: int, audio: np.ndarray, trailing_s: float) -> None:
        assert self.turn_detector is not None
        if self.asr.sample_rate != self.turn_detector.sample_rate:
            audio = resample(audio, self.asr.sample_rate, self.turn_detector.sample_rate)
        rate = self.turn_detector.sample_rate
        # The silence after the voice stays: the verdict also looks a little past the end.
        voice_end = audio.size - min(round(trailing_s * rate), audio.size)
        complete = await self.turn_detector.probability_complete_at(audio, voice_end)
        log.info(
            "call %s: turn model: %.2f complete (%.2f s of audio)",
            self.call_id,
            complete,
            voice_end / rate,
        )
        self._deliver(turns.TurnJudged(time.monotonic(), turn_audio, complete))
