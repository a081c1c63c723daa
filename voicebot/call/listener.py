"""The caller's side of a call: RTP in → voice activity and the turn's audio, and decodes.

The listener only does I/O and bookkeeping: it turns packets into the turn core's voice
inputs, keeps the audio of the turn in progress at the recognizer's rate, and runs the
decodes and turn-model judgements the core asks for, off the event loop. What any of it
means is the core's business.

Whose voice a frame is, the caller's or the room's, is ``call/voices.py``'s to say: the
segmenter counts only the caller's voice, so a voice far under theirs opens no turn and
pauses no prompt, and the recognizer hears the caller's stretches with the rest silenced.

At each pause it hands the core the turn's new part (the voice since the previous pause) and
the whole turn so far; the core says which to decode. A call's decodes run one at a time, in
the order asked, never more than the recognizer's window at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
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
from .parts import MIN_PITCHED_S, has_words
from .voices import CallerVoice, Levels, VoicesConfig, Whose, frame_db

log = logging.getLogger(__name__)

# No packet for this long means the caller's phone went quiet (many phones send nothing in
# silence): count it as silence so the segmenter still sees the pause. Three frames: jitter
# rarely holds a packet that long, and a late one only adds a little silence to the turn.
RECEIVE_GAP_S = 0.06

# The recognizer's audio runs this many frames behind the VAD, so a frame is silenced as the
# room's only once the frames after it are known: the caller's voice is told apart a frame
# or four after it begins (two loud frames in five), and their first phoneme is kept.
LOOKAHEAD_FRAMES = 5
# How far back the room's voice is silenced when the caller's voice rises out of it.
RISE_WINDOW_S = VoicesConfig().rise_window_s

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
        # The pre-roll before an onset: the frames held for the look-ahead are part of it.
        self._preroll_frames = max(1, vad.preroll_ms // vad.frame_ms - LOOKAHEAD_FRAMES)
        self._preroll: deque[np.ndarray] = deque(maxlen=self._preroll_frames)
        # Whose voice each frame is; the frames not yet handed on, with whether to keep them.
        self._voices = CallerVoice()
        self._held: deque[tuple[float, np.ndarray, bool]] = deque()
        self._frame_s = vad.frame_ms / 1000
        # The session says when a prompt plays: a barge-in must be the caller's own voice.
        self.prompt_playing = False
        # Stream times of the current turn's first onset and last voice end (for voices).
        self._turn_began = 0.0
        self._turn_voice_end = 0.0
        # The turn in progress at the recognizer's rate, one chunk per frame (and one per
        # pause, what the resampler held back), kept whole for the turn model.
        self._turn_audio: list[np.ndarray] | None = None
        # The current part begins at this chunk; the next one's pre-roll (for its first
        # phoneme) reaches back no further than the floor, where this one ended: the pause
        # that ended it may still hold the soft end of its last word ("nine" heard twice).
        self._part_from = 0
        self._part_floor = 0
        # A turn never holds more than the core's cap, and a little for the decision.
        self._max_chunks = math.ceil((turns.MAX_TURN_VOICE_S + 5.0) * 1000 / vad.frame_ms)
        self._confirmed = False  # the voice since the last onset is speech
        # The core cut the turn (CutTurn): the voice after the cut waits for the next turn.
        self._cut = False
        # One decode in flight per call; a decode asked for a turn since closed is skipped,
        # and so is one of the whole turn when a later pause has asked for it again.
        self._decoding = asyncio.Lock()
        self._turns_closed = 0
        self._newest_whole = 0
        # What the state expects: a hint for the recognizer, a grammar where the script asks.
        self.phrases: Sequence[str] | None = None
        self.grammar = False
        # Streaming engines (Vosk) are fed while the caller speaks, one recognizer for the
        # whole turn: a pause only peeks at what it has heard, and if the caller goes on it
        # simply hears more. Little is left to do at a pause; CPU is spent only on speech.
        self._stream: asyncio.Queue[np.ndarray | _Peek | None] | None = None
        self._stream_task: asyncio.Task[None] | None = None
        # While set (the answer of an outbound call is being judged), every frame goes here
        # with its voice verdict, and nowhere else: no turn, no recognizer.
        self.observe: Callable[[np.ndarray, bool], None] | None = None

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
        at = self._segmenter.stream_time
        voiced, pitched = self._segmenter.measure(frame)
        if self.observe is not None:
            self._segmenter.advance(False, False)  # time goes on; no voice to follow
            self.observe(frame, voiced)
            return
        heard = self._voices.frame(at, frame_db(frame), voiced, pitched, self.prompt_playing)
        verdict = heard.verdict
        if verdict is not None and verdict.whose is Whose.BACKGROUND:
            log.debug("call %s: voice at %.2f s is the room's: %s", self.call_id,
                      verdict.at, verdict.reason)  # fmt: skip
        if verdict is not None and verdict.room_until is not None:
            log.debug("call %s: the caller's voice at %.2f s: %s", self.call_id,
                      verdict.at, verdict.reason)  # fmt: skip
            # The caller's first sound comes before their voice is loud enough to rise: the
            # look-ahead's 100 ms before the rise stay, as for any onset.
            until = verdict.room_until - LOOKAHEAD_FRAMES * self._frame_s
            self._silence_before(until, verdict.room_until - RISE_WINDOW_S)
        events = self._segmenter.advance(heard.caller, pitched)
        self._held.append((at, frame, heard.keep))
        if len(self._held) > LOOKAHEAD_FRAMES:
            self._hand_on_held(1)
        if not events:
            return
        now = time.monotonic()
        behind = self._segmenter.stream_time
        for event in events:
            if isinstance(event, VoiceBegan):
                self._confirmed = False
                if self._cut:
                    continue  # the next turn's, handed on when the cut one is closed
                if self._turn_audio is None:
                    self._turn_began = event.stream_time
                    self._turn_audio = list(self._preroll)
                    self._preroll.clear()
                    self._part_from = 0
                else:
                    ahead = len(self._turn_audio) - self._preroll_frames
                    self._part_from = max(self._part_floor, ahead)
                if self.asr.streaming and self._stream is None:
                    self._start_stream()
                self._deliver(turns.VoiceStarted(now - (behind - event.stream_time)))
            elif isinstance(event, SpeechConfirmed):
                self._confirmed = True
                if not self._cut:
                    self._deliver(turns.VoiceConfirmed(now))
            elif isinstance(event, VoicePaused) and not self._cut:
                self._turn_voice_end = event.voice_end
                self._hand_out_part(now, now - (behind - event.voice_end), event.pitched_s)

    def _hand_on_held(self, count: int) -> None:
        """The oldest ``count`` held frames go on to the recognizer's audio: as they are when
        they or a frame after them is the caller's, else silenced (the room's voice)."""
        for _ in range(count):
            _, frame, keep = self._held.popleft()
            if not keep and not any(later for _, _, later in self._held):
                frame = np.zeros_like(frame)
            asr_audio = self._to_asr.process(frame)
            if self._turn_audio is not None:
                self._add_to_turn(asr_audio)
            else:
                self._preroll.append(asr_audio)

    def _silence_before(self, until: float, since: float) -> None:
        """The voice between ``since`` and ``until`` (stream times) was the room's: out of
        the recognizer's audio of the turn, and of the frames still held. (A streaming
        recognizer has heard it already.)"""
        for i, (at, frame, keep) in enumerate(self._held):
            if since <= at < until:
                self._held[i] = (at, np.zeros_like(frame), keep)
        if self._turn_audio is None:
            return
        held_from = self._held[0][0] if self._held else until
        # Chunks are frames (and, at a pause, what the resampler held back: a few ms).
        after = max(0, round((held_from - until) / self._frame_s))
        span = round((until - since) / self._frame_s)
        end = max(0, len(self._turn_audio) - after)
        for i in range(max(0, end - span), end):
            self._turn_audio[i] = np.zeros_like(self._turn_audio[i])

    def _add_to_turn(self, chunk: np.ndarray) -> None:
        assert self._turn_audio is not None
        self._turn_audio.append(chunk)
        if self._stream is not None:
            self._stream.put_nowait(chunk)
        excess = len(self._turn_audio) - self._max_chunks
        if excess > 0:  # the core cuts a turn at its cap: only while one waits for its decision
            del self._turn_audio[:excess]
            self._part_from = max(0, self._part_from - excess)
            self._part_floor = max(0, self._part_floor - excess)

    def _hand_out_part(self, now: float, voice_end: float, pitched_s: float) -> None:
        """The caller paused (or the turn is cut): the new part to decode, the whole turn to
        judge."""
        # The frames held for the look-ahead and what the resampler holds back (10-115 ms):
        # let them out, so the decode hears the whole last word, not only what came before.
        self._hand_on_held(len(self._held))
        held_back = self._to_asr.process(np.zeros(0, np.int16), last=True)
        if self._turn_audio is not None:
            self._add_to_turn(held_back)
        chunks = self._turn_audio or []
        part = _joined(chunks[self._part_from :])
        whole = _joined(chunks)
        self._part_floor = self._part_from = len(chunks)
        self._deliver(turns.VoicePaused(now, voice_end, part, pitched_s, whole))

    @property
    def in_voice(self) -> bool:
        return self._segmenter.in_voice

    @property
    def voice_levels(self) -> Levels:
        """What the call has learned of the caller's and the room's levels."""
        return self._voices.levels

    def caller_spoke(self) -> None:
        """The core took the current turn as the caller's: their level is learned from it."""
        end = max(self._turn_began, self._turn_voice_end)  # a cut turn may not have paused
        level = self._voices.caller_turn(self._turn_began, end)
        if level is not None:
            log.debug("call %s: the caller speaks at %.0f dBFS", self.call_id, level)

    def caller_unheard(self) -> None:
        """The dialog heard nothing: if that is because the caller's voice was taken for the
        room's, the room is learned again from scratch."""
        self._voices.no_input()

    def turn_audio(self) -> np.ndarray:
        return _joined(self._turn_audio or [])

    # -- commands from the core ---------------------------------------------------------

    def close_turn(self) -> None:
        """The turn is handled or dropped: the next voice starts a new one. After a cut, the
        voice that goes on is that next turn, at once."""
        carried = self._turn_audio[self._part_from :] if self._turn_audio is not None else []
        cut, self._cut = self._cut, False
        self._turn_audio = None
        self._part_from = self._part_floor = 0
        self._turns_closed += 1
        self._end_stream()
        if cut and self._segmenter.in_voice:
            # (Voice that began after the cut and paused before the decision is dropped: a
            # caller who talked on for MAX_TURN_VOICE_S is answered rather than heard out.)
            self._turn_audio = carried
            if self.asr.streaming:
                self._start_stream()
            now = time.monotonic()
            self._deliver(turns.VoiceStarted(now))
            if self._confirmed:
                self._deliver(turns.VoiceConfirmed(now))

    def cut_turn(self, last_part: bool = True) -> None:
        """The core's cap: end the turn here, as if the caller had paused (handing out the
        ``last_part`` if they are speaking; not in voice, their pause is on its way to the
        core already). The voice from now on is kept for the next turn (``close_turn``)."""
        if self._turn_audio is None or self._cut:
            return
        if last_part and self._segmenter.in_voice:
            now = time.monotonic()
            # The segmenter confirms speech only with some pitched voice in it.
            self._hand_out_part(now, now, MIN_PITCHED_S if self._confirmed else 0.0)
        self._cut = True

    async def decode(
        self, turn_audio: int, audio: np.ndarray, part: int = 0, cumulative: bool = False
    ) -> None:
        """Transcribe part ``part`` of the turn (``cumulative``: the whole turn up to it). A
        call's decodes run one at a time, in the order asked; one that waited while its turn
        was closed, or while a later pause asked for the whole turn again, is skipped."""
        closed = self._turns_closed
        if cumulative:
            self._newest_whole = max(self._newest_whole, turn_audio)
        if self._stream is not None:
            # The stream has heard the whole turn, as it came: what it has so far is the text
            # of the turn up to this pause (whatever was asked: it costs nothing more), and
            # the stream goes on if the caller does.
            peek = _Peek()
            self._stream.put_nowait(peek)
            heard = await peek.result
            if heard is not None:
                at = time.monotonic()
                self._deliver(turns.Transcribed(at, turn_audio, heard.text, heard.confidence,
                                                part, cumulative=True))  # fmt: skip
                return
        async with self._decoding:
            if closed != self._turns_closed or (cumulative and turn_audio < self._newest_whole):
                return
            text, confidence = await self._recognize(audio)
        self._deliver(turns.Transcribed(time.monotonic(), turn_audio, text, confidence, part,
                                        cumulative))  # fmt: skip

    async def _recognize(self, audio: np.ndarray) -> tuple[str, float | None]:
        """The words in ``audio``; never more than the engine's window at once (a longer part
        is cut into equal pieces, decoded in order and joined)."""
        window = self.asr.max_audio_s
        seconds = audio.size / self.asr.sample_rate
        count = 1 if window is None else max(1, math.ceil(seconds / window))
        texts: list[str] = []
        confidences: list[float] = []
        for piece in np.array_split(audio, count):
            recognizer = self.asr.recognizer(self.phrases, grammar=self.grammar)
            try:
                await recognizer.feed(piece)
                heard = await recognizer.finish()
            finally:
                recognizer.close()
            if count == 1:
                return heard.text, heard.confidence
            if has_words(heard.text, heard.confidence):
                texts.append(heard.text.strip())
                if heard.confidence is not None:
                    confidences.append(heard.confidence)
        return " ".join(texts), min(confidences, default=None)

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


def _joined(chunks: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
