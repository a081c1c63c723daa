"""One call's conversation: RTP in → VAD → ASR → dialog → TTS → RTP out.

A ``CallSession`` owns every task it starts (receive loop, speaker, no-input timer, pacer);
``run()`` cancels and awaits all of them whichever way the call ends. It knows nothing about
ARI: the controller hands it a connected RTP endpoint and tells it about keys and hangups.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np

from .config import VadConfig
from .dialog.engine import (
    Action,
    CallStarted,
    CallWebhook,
    DialogEngine,
    Event,
    Hangup,
    Heard,
    KeyPressed,
    Listen,
    NoInput,
    Recognized,
    Say,
    SlotFilled,
    Transfer,
    WebhookDone,
    WebhookFailed,
)
from .dialog.script import Script
from .errors import MediaError
from .media.codecs import Codec, reply_codec, resample
from .media.endpoint import RtpEndpoint
from .media.inbound import SPEECH_RATE, FrameAssembler
from .media.pacer import Pacer
from .speech.asr.base import AsrEngine, Recognizer, Transcript
from .speech.tts.base import TtsEngine
from .speech.vad import Endpointer, SpeechEnded, SpeechStarted
from .webhook import call_webhook

log = logging.getLogger(__name__)

# No packet for this long means the caller's phone went quiet: count it as silence so the
# endpointer can still finish the utterance.
RECEIVE_GAP_S = 0.1


@dataclass
class SpeechServices:
    """Models shared by all calls (loaded once at start-up): the default pair, and one per
    script language when the scripts speak several."""

    asr: AsrEngine
    tts: TtsEngine
    by_language: dict[str, tuple[AsrEngine, TtsEngine]] = field(default_factory=dict)

    def for_language(self, language: str) -> tuple[AsrEngine, TtsEngine]:
        return self.by_language.get(language, (self.asr, self.tts))

    async def close(self) -> None:
        engines = {id(e): e for pair in [(self.asr, self.tts), *self.by_language.values()]
                   for e in pair}  # fmt: skip
        for engine in engines.values():
            await engine.close()


@dataclass
class TurnTiming:
    """Monotonic timestamps of one caller turn, from end of speech to the bot's first packet."""

    turn: int
    voice_end: float  # estimated wall time of the caller's last voiced frame
    speech_end: float  # when the endpointer decided the utterance was over
    asr_done: float = 0.0
    dialog_done: float = 0.0
    first_audio: float | None = None  # first TTS chunk ready
    first_packet: float | None = None  # first RTP packet of the answer on the wire
    text: str = ""
    answer: str = ""  # the first text of the answer, recorded when it reaches the wire

    def as_dict(self) -> dict[str, Any]:
        def ms(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round((b - a) * 1000, 1)

        return {
            "turn": self.turn,
            "text": self.text,
            "total_ms": ms(self.speech_end, self.first_packet),
            "endpointing_ms": ms(self.voice_end, self.speech_end),
            "asr_ms": ms(self.speech_end, self.asr_done),
            "dialog_ms": ms(self.asr_done, self.dialog_done),
            "tts_ms": ms(self.dialog_done, self.first_audio),
            "send_ms": ms(self.first_audio, self.first_packet),
        }

    def log_line(self) -> str:
        d = self.as_dict()
        return (
            f"turn {d['turn']} latency: {d['total_ms']} ms end of speech → first RTP "
            f"(asr {d['asr_ms']} ms, dialog {d['dialog_ms']} ms, tts {d['tts_ms']} ms, "
            f"send {d['send_ms']} ms; endpointing wait {d['endpointing_ms']} ms before that) "
            f"heard {d['text']!r}"
        )


@dataclass
class TranscriptLine:
    who: str  # "bot" | "caller"
    text: str
    t: float  # seconds since the call started
    state: str | None = None
    intent: str | None = None
    # On the bot's answer to a caller turn: where the time went (TurnTiming.as_dict()).
    latency_ms: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without the fields that do not apply to this line."""
        return {k: v for k, v in vars(self).items() if v is not None}


@dataclass(frozen=True)
class _Utterance:
    ended: SpeechEnded
    voice_end: float
    decided: float
    # Streaming engines were fed during the speech; this task gives the final transcript.
    streamed: asyncio.Task[Transcript] | None = None


@dataclass(frozen=True)
class _Control:
    kind: str  # "spoken" | "end" | "failed"
    detail: str = ""
    speaker: int = 0  # which prompt finished ("spoken" from a replaced prompt is stale)


_QueueItem = Event | _Utterance | _Control


@dataclass(frozen=True)
class CallEnd:
    """How the conversation ended: the bot hung up, or hands the caller to ``transfer``."""

    reason: str  # "bot-hangup" | "transfer"
    transfer: Transfer | None = None


@dataclass
class CallStats:
    turns: list[TurnTiming] = field(default_factory=list)
    barge_ins: int = 0
    webhooks: int = 0


class CallSession:
    def __init__(
        self,
        *,
        call_id: str,
        endpoint: RtpEndpoint,
        codec: Codec,
        script: Script,
        services: SpeechServices,
        vad: VadConfig,
        variables: Mapping[str, str] | None = None,
        http: aiohttp.ClientSession | None = None,
        on_transcript: Callable[[TranscriptLine], None] | None = None,
    ) -> None:
        self.call_id = call_id
        self.endpoint = endpoint
        self.codec = codec
        self.script = script
        self.engine = DialogEngine(script)
        self.transcript: list[TranscriptLine] = []
        self.stats = CallStats()
        self._variables = dict(variables or {})
        self._http = http
        self._on_transcript = on_transcript
        self._vad_config = vad
        self._events: asyncio.Queue[_QueueItem] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._speaker: asyncio.Task[None] | None = None
        self._speaker_id = 0
        self._timer: asyncio.Task[None] | None = None
        self._listen: Listen | None = None
        self._barge_in = True
        # Input during a prompt that may not be interrupted: speech is ignored, keys wait.
        self._ignore_utterance = False
        self._deferred_keys: list[KeyPressed] = []
        self._ending: Hangup | Transfer | None = None
        self._pending_turn: TurnTiming | None = None
        # Caller utterances from speech onset until handled (or dismissed).
        self._open_utterances = 0
        self._stream: asyncio.Queue[np.ndarray | None] | None = None
        self._stream_task: asyncio.Task[Transcript] | None = None
        self.asr, self.tts = services.for_language(script.language)
        self._started = time.monotonic()
        self.reply_codec = reply_codec(codec)
        self.pacer = Pacer(endpoint.send, self.reply_codec, self.reply_codec.payload_type)
        self.pacer.on_sent = self._on_packet_sent

    # -- inputs from the controller -------------------------------------------------------

    def key_pressed(self, digit: str) -> None:
        self._events.put_nowait(KeyPressed(digit))

    def awaiting_caller(self) -> bool:
        """The bot has said its piece and listens: nothing playing or queued, no caller
        speech being recognized, no webhook pending (a replay ends on this)."""
        return (
            self._listen is not None
            and not self._speaking()
            and not self.pacer.is_playing
            and self._events.empty()
            and not self._open_utterances
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> CallEnd:
        """Converse until the dialog hangs up or transfers, or until cancelled."""
        self.pacer.start()
        self._spawn(self._receive_loop(), "rx")
        try:
            await self._execute(self.engine.handle(CallStarted(self._variables)))
            while True:
                item = await self._events.get()
                if isinstance(item, _Control):
                    if item.kind == "failed":
                        raise MediaError(f"call {self.call_id}: {item.detail}")
                    if item.speaker != self._speaker_id:
                        continue  # a prompt that was replaced meanwhile
                    if item.kind == "end":
                        if isinstance(self._ending, Transfer):
                            return CallEnd("transfer", self._ending)
                        return CallEnd("bot-hangup")
                    self._prompt_finished()
                elif isinstance(item, _Utterance):
                    try:
                        await self._on_utterance(item)
                    finally:
                        self._open_utterances -= 1
                elif isinstance(item, KeyPressed):
                    await self._on_key(item)
                else:
                    if isinstance(item, NoInput) and self._speaking():
                        continue  # a timer that fired as a new prompt started
                    self._cancel_timer()
                    await self._execute(self.engine.handle(item))
        finally:
            await self._shutdown()

    async def _shutdown(self) -> None:
        tasks = {t for t in (*self._tasks, self._speaker, self._timer) if t is not None}
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.pacer.aclose()

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=f"call-{self.call_id}-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # A dead receive loop or speaker would leave a call that neither hears nor talks:
            # end the call (only this one) instead.
            exc = task.exception()
            log.error("call %s: task %s failed", self.call_id, task.get_name(), exc_info=exc)
            self._events.put_nowait(_Control("failed", f"{task.get_name()} failed: {exc!r}"))

    # -- caller audio ---------------------------------------------------------------------

    async def _receive_loop(self) -> None:
        assembler = FrameAssembler(self.codec, self._vad_config.frame_ms)
        endpointer = Endpointer(self._vad_config, SPEECH_RATE)
        while True:
            packet = await self.endpoint.receive(timeout=RECEIVE_GAP_S)
            if packet is None:
                frames = assembler.silence(RECEIVE_GAP_S)
            else:
                if (
                    self.reply_codec is self.codec
                    and packet.payload_type != self.pacer.payload_type
                ):
                    # Asterisk only plays back the payload type it sends us.
                    self.pacer.payload_type = packet.payload_type
                try:
                    frames = assembler.push_packet(packet)
                except ValueError as exc:  # e.g. an odd-length linear payload
                    self.endpoint.note_undecodable(exc)
                    continue
            for frame in frames:
                events = endpointer.feed(frame)
                if self._stream is not None and endpointer.in_speech and not events:
                    self._stream.put_nowait(frame)
                for event in events:
                    self._on_vad_event(event, endpointer.stream_time)

    def _on_vad_event(self, event: SpeechStarted | SpeechEnded, stream_time: float) -> None:
        now = time.monotonic()
        if isinstance(event, SpeechStarted):
            self._open_utterances += 1
            self._cancel_timer()
            if self.asr.streaming:
                self._start_stream(event.audio)
            if self._speaking() and not self._barge_in:
                self._ignore_utterance = True
            else:
                # Barge-in acts here, not in the queue, so the prompt stops within a frame or two.
                if self._interrupt_prompt():
                    log.info("call %s: barge-in %.0f ms after the caller's speech onset",
                             self.call_id, (stream_time - event.stream_time) * 1000)  # fmt: skip
        elif self._ignore_utterance:
            self._end_stream()
            self._ignore_utterance = False
            self._open_utterances -= 1
            log.info("call %s: ignored speech during a prompt without barge-in", self.call_id)
            if not self._speaking():
                self._start_no_input_timer()
        else:
            voice_end = now - (stream_time - event.end_time)
            streamed = self._end_stream()
            self._events.put_nowait(
                _Utterance(event, voice_end=voice_end, decided=now, streamed=streamed)
            )

    def _grammar_phrases(self) -> tuple[str, ...] | None:
        """The phrases recognition is restricted to, when the state asks for a grammar."""
        listen = self._listen
        return listen.phrases if listen is not None and listen.grammar else None

    def _start_stream(self, so_far: np.ndarray) -> None:
        """Open a recognizer for this utterance and feed it while the caller speaks: the
        final result is nearly ready when the speech ends, and CPU is spent only on speech."""
        self._end_stream()
        frames: asyncio.Queue[np.ndarray | None] = asyncio.Queue()
        frames.put_nowait(so_far)
        recognizer = self.asr.recognizer(self._grammar_phrases())
        self._stream = frames
        self._stream_task = self._spawn(self._feed_stream(recognizer, frames), "asr")

    def _end_stream(self) -> asyncio.Task[Transcript] | None:
        task, self._stream_task = self._stream_task, None
        if self._stream is not None:
            self._stream.put_nowait(None)
            self._stream = None
        return task

    async def _feed_stream(
        self, recognizer: Recognizer, frames: asyncio.Queue[np.ndarray | None]
    ) -> Transcript:
        try:
            while (pcm := await frames.get()) is not None:
                partial = await recognizer.feed(pcm)
                if partial is not None and partial.text:
                    log.debug("call %s: partial %r", self.call_id, partial.text)
            return await recognizer.finish()
        finally:
            recognizer.close()

    def _interrupt_prompt(self) -> bool:
        """Stop the prompt now (barge-in); True when something was playing."""
        if self._ending is not None:
            return False  # the goodbye or transfer announcement is not interruptible
        if self._speaking():
            assert self._speaker is not None
            self._speaker.cancel()
            self._pending_turn = None  # its answer, if not on the wire yet, never will be
            dropped = self.pacer.flush()
            self.stats.barge_ins += 1
            log.info("call %s: prompt stopped, dropped %d queued frames", self.call_id, dropped)
            return True
        if self.pacer.is_playing:
            self.pacer.flush()
            return True
        return False

    async def _on_key(self, key: KeyPressed) -> None:
        if self._speaking() and not self._barge_in:
            self._deferred_keys.append(key)
            return
        self._interrupt_prompt()
        self._cancel_timer()
        await self._execute(self._handle_caller(key, f"#{key.digit}"))

    async def _on_utterance(self, utterance: _Utterance) -> None:
        turn = TurnTiming(
            turn=len(self.stats.turns) + 1,
            voice_end=utterance.voice_end,
            speech_end=utterance.decided,
        )
        if utterance.streamed is not None:
            transcript = await utterance.streamed
        else:
            recognizer = self.asr.recognizer(self._grammar_phrases())
            try:
                await recognizer.feed(utterance.ended.audio)
                transcript = await recognizer.finish()
            finally:
                recognizer.close()
        turn.asr_done = time.monotonic()
        text = transcript.text.strip()
        turn.text = text
        if not text:
            log.info("call %s: speech without words (noise?), still listening", self.call_id)
            if not self._speaking():
                self._start_no_input_timer()
            return
        actions = self._handle_caller(Heard(text), text)
        turn.dialog_done = time.monotonic()
        if any(isinstance(a, Say) for a in actions):
            self._pending_turn = turn
        self.stats.turns.append(turn)
        await self._execute(actions)

    def _handle_caller(self, event: Heard | KeyPressed, text: str) -> list[Action]:
        """The dialog's answer to the caller's words or key, after recording them with the
        state that heard them and the intent it matched."""
        state = self.engine.state.current if self.engine.state else None
        actions = self.engine.handle(event)
        recognized = next((a for a in actions if isinstance(a, Recognized)), None)
        if recognized is not None:
            self._record("caller", text, state=recognized.state, intent=recognized.intent)
        else:
            self._record("caller", text, state=state)
        return actions

    # -- bot output -----------------------------------------------------------------------

    async def _execute(self, actions: list[Action], *, interrupt: bool = True) -> None:
        """Carry out the engine's actions. ``interrupt=False`` queues the new prompt after
        the one playing (a webhook answer must not cut off the "please wait" prompt)."""
        if not actions:
            return  # the engine ignored the event (e.g. speech while a webhook runs)
        texts: list[str] = []
        listen: Listen | None = None
        for action in actions:
            if isinstance(action, Say):
                texts.append(action.text)
                self._barge_in = action.barge_in
            elif isinstance(action, Listen):
                listen = action
            elif isinstance(action, Hangup | Transfer):
                self._ending = action
            elif isinstance(action, CallWebhook):
                self.stats.webhooks += 1
                self._spawn(self._webhook(action), "webhook")
            elif isinstance(action, Recognized):
                log.info("call %s: state %s heard %r → %s", self.call_id, action.state,
                         action.text, action.intent or "(no match)")  # fmt: skip
            elif isinstance(action, SlotFilled):
                log.info("call %s: %s = %r", self.call_id, action.name, action.value)
        self._listen = listen
        previous = self._speaker
        if interrupt and previous is not None and not previous.done():
            previous.cancel()
            self.pacer.flush()
            previous = None
        self._speaker_id += 1
        self._speaker = self._spawn(self._speak(texts, self._speaker_id, previous), "speaker")

    async def _speak(
        self, texts: list[str], speaker: int, after: asyncio.Task[None] | None
    ) -> None:
        if after is not None:
            try:
                # Waits without taking on ``after``'s outcome; our own cancellation (barge-in)
                # still arrives here, and then the prompt queued before us must stop too.
                await asyncio.wait([after])
            except asyncio.CancelledError:
                after.cancel()
                raise
        for text in texts:
            started = False
            async for chunk in self.tts.stream(text):
                if not started:
                    started = True
                    turn = self._pending_turn
                    if turn is not None and turn.first_audio is None:
                        # The answer to a turn is recorded with its latency as it goes out.
                        turn.first_audio = time.monotonic()
                        turn.answer = text
                    else:
                        self._record("bot", text)
                self.pacer.play(resample(chunk, self.tts.sample_rate, self.reply_codec.sample_rate))
        self.pacer.end_of_stream()
        await self.pacer.wait_idle()
        kind = "end" if self._ending is not None else "spoken"
        self._events.put_nowait(_Control(kind, speaker=speaker))

    def _prompt_finished(self) -> None:
        deferred, self._deferred_keys = self._deferred_keys, []
        for key in deferred:
            self._events.put_nowait(key)
        if not deferred:
            self._start_no_input_timer()

    def _speaking(self) -> bool:
        return self._speaker is not None and not self._speaker.done()

    def _on_packet_sent(self, sent_at: float, first_of_talkspurt: bool) -> None:
        turn = self._pending_turn
        if turn is not None and turn.first_packet is None and turn.first_audio is not None:
            turn.first_packet = sent_at
            self._pending_turn = None
            log.info("call %s: %s", self.call_id, turn.log_line())
            self._record("bot", turn.answer, latency_ms=turn.as_dict())

    # -- webhooks -------------------------------------------------------------------------

    async def _webhook(self, action: CallWebhook) -> None:
        if self._http is None:
            ok, result = False, "no HTTP client available for webhooks"
        else:
            ok, result = await call_webhook(
                self._http, action.method, action.url, action.body, action.timeout_s
            )
        if ok:
            log.info("call %s: webhook %s %s answered", self.call_id, action.method, action.url)
            event: Event = WebhookDone(result)
        else:
            log.warning("call %s: webhook failed: %s", self.call_id, result)
            event = WebhookFailed(str(result))
        await self._execute(self.engine.handle(event), interrupt=False)

    # -- no-input -------------------------------------------------------------------------

    def _start_no_input_timer(self) -> None:
        self._cancel_timer()
        if self._listen is not None and not self.engine.ended:
            self._timer = asyncio.create_task(
                self._no_input_after(self._listen.timeout_s), name=f"call-{self.call_id}-no-input"
            )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _no_input_after(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._events.put_nowait(NoInput())

    def _record(
        self,
        who: str,
        text: str,
        *,
        state: str | None = None,
        intent: str | None = None,
        latency_ms: dict[str, Any] | None = None,
    ) -> None:
        if state is None and self.engine.state is not None:
            state = self.engine.state.current
        line = TranscriptLine(who=who, text=text, t=round(time.monotonic() - self._started, 3),
                              state=state, intent=intent, latency_ms=latency_ms)  # fmt: skip
        self.transcript.append(line)
        if self._on_transcript is not None:
            self._on_transcript(line)
