"""One call's conversation: RTP in → VAD → ASR → dialog → TTS → RTP out.

A ``CallSession`` owns every task it starts (receive loop, speaker, no-input timer, pacer);
``run()`` cancels and awaits all of them whichever way the call ends. It knows nothing about
ARI: the controller hands it a connected RTP endpoint and tells it about keys and hangups.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp

from ..config import VadConfig
from ..dialog.engine import CallWebhook, DoNotCall, Transfer
from ..dialog.model import Script
from ..errors import MediaError
from ..logtext import caller_text, caller_text_level, is_key
from ..media.codecs import Codec, reply_codec
from ..media.endpoint import RtpEndpoint
from ..media.pacer import Pacer
from . import turns
from .amd import AmdDecision, AmdSettings, SpeakNow, Verdict
from .answering import AmdEvent, Answering, ignore
from .listener import Listener
from .services import SpeechServices
from .speaker import Speaker
from .webhook import DEFAULT_POLICY, WebhookPolicy, run_webhook

log = logging.getLogger(__name__)
# How long a person who answered an outbound call waits at most for its greeting to be
# synthesized (it began while the phone rang); after that it is synthesized as it plays.
READY_WAIT_S = 1.5


@dataclass
class TurnTiming:
    """Monotonic timestamps of one caller turn, from the caller's last voiced frame to the
    bot's first packet of the answer."""

    turn: int
    voice_end: float  # the end of the caller's last voiced frame, as the bot heard it
    paused: float  # the pause was noticed (vad.pause_ms later): the decode began
    transcribed: float  # the decode of the final audio came back
    decided: float  # the turn was taken (complete answer, turn model, or a timeout)
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
            "total_ms": ms(self.voice_end, self.first_packet),
            "pause_ms": ms(self.voice_end, self.paused),
            "asr_ms": ms(self.paused, self.transcribed),
            "wait_ms": ms(self.voice_end, self.decided),
            "dialog_ms": ms(self.decided, self.dialog_done),
            "tts_ms": ms(self.dialog_done, self.first_audio),
            "send_ms": ms(self.first_audio, self.first_packet),
        }

    def log_line(self) -> str:
        d = self.as_dict()
        return (
            f"turn {d['turn']} latency: {d['total_ms']} ms caller's voice end → first RTP "
            f"(pause {d['pause_ms']} ms, asr {d['asr_ms']} ms, turn taken after "
            f"{d['wait_ms']} ms; dialog {d['dialog_ms']} ms, tts {d['tts_ms']} ms, "
            f"send {d['send_ms']} ms) heard {len(self.text)} characters"
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

    def without_key(self) -> TranscriptLine:
        """The line as ``record.keys = false`` shows it: a key the caller pressed is "#", not
        which key it was."""
        if self.who == "caller" and is_key(self.text):
            return replace(self, text="#")
        return self


@dataclass(frozen=True)
class CallEnd:
    """How the conversation ended: the bot hung up, or hands the caller to ``transfer``."""

    reason: str  # "bot-hangup" | "transfer" | "machine" (answered by one, no message to leave)
    transfer: Transfer | None = None


class CallObserver:
    """Told what happens in a call, as it happens: the bot's metrics and the call's recording
    observe calls this way. Every method does nothing unless overridden; none may block."""

    def turn(self, timing: Mapping[str, float | None]) -> None:
        """An answered turn, as ``TurnTiming.as_dict()``."""

    def barge_in(self) -> None:
        """The caller talked over a prompt and it stopped."""

    def webhook(self, seconds: float) -> None:
        """A webhook came back (answered or failed) after ``seconds``."""

    def transcript(self, line: TranscriptLine) -> None:
        """A line of the call's transcript (``CallSession.transcript`` keeps them all)."""

    def key(self, digit: str, duration_ms: int) -> None:
        """The caller pressed a key, held for ``duration_ms`` (0: not known)."""


@dataclass
class CallStats:
    turns: list[TurnTiming] = field(default_factory=list)
    barge_ins: int = 0
    webhooks: int = 0
    # What happened when (seconds since the call began), for the console's timeline and
    # counts: {"t", "kind": "barge-in" | "no-input", "state"}; webhooks add "seconds", "ok".
    events: list[dict[str, Any]] = field(default_factory=list)


class CallSession:
    """Runs one call: every input goes through one queue to the turn core, and the session
    carries out the commands it answers with. Owns its tasks (receive loop, speaker,
    decodes, timers, webhooks) and cancels and awaits them whichever way the call ends."""

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
        observers: Sequence[CallObserver] = (),
        log_transcripts: bool = False,
        webhook_policy: WebhookPolicy = DEFAULT_POLICY,
        amd: AmdSettings | None = None,
        ready: Awaitable[object] | None = None,
    ) -> None:
        self.call_id = call_id
        self.endpoint = endpoint
        self.codec = codec
        self.script = script
        self.asr, self.tts = services.for_language(script.language)
        turn_model = services.turn if script.language.startswith("en") else None
        self._meaning = services.meaning
        meaning = self._meaning is not None
        self._policy = turns.TurnPolicy(turn_model=turn_model is not None, meaning=meaning)
        self.core = turns.TurnTaker(script, self._policy)
        self.transcript: list[TranscriptLine] = []
        self.stats = CallStats()
        self._variables = dict(variables or {})
        self._http = http
        self._observers = tuple(observers)
        self._webhook_policy = webhook_policy
        # log.transcripts: INFO lines may show what the caller said and keyed.
        self._log_transcripts = log_transcripts
        self._inputs: asyncio.Queue[turns.TurnInput | _Failure | AmdEvent | _Begin] = (
            asyncio.Queue()
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._timers: dict[str, asyncio.Task[None]] = {}
        self._started = time.monotonic()
        self.reply_codec = reply_codec(codec)
        self.pacer = Pacer(endpoint.send, self.reply_codec, self.reply_codec.payload_type)
        self.pacer.on_sent = self._on_packet_sent
        self.listener = Listener(
            call_id=call_id,
            endpoint=endpoint,
            codec=codec,
            vad=vad,
            asr=self.asr,
            turn_detector=turn_model,
            deliver=self._inputs.put_nowait,
            spawn=self._spawn,
            on_payload_type=self._follow_payload_type,
        )
        self.speaker = Speaker(
            call_id=call_id,
            tts=self.tts,
            recordings=services.recordings,
            pacer=self.pacer,
            codec=self.reply_codec,
            deliver=self._inputs.put_nowait,
            spawn=self._spawn,
            on_first_audio=self._on_first_audio,
        )
        # An outbound call: who answered is judged before the script begins (``answering``);
        # its greeting, synthesized while the phone rang, is awaited (briefly) so that it is
        # not synthesized twice.
        self.answering = Answering(amd, codec.sample_rate, self._inputs.put_nowait) if amd else None
        self._ready = ready
        self.do_not_call = False  # a state with ``dnc: true`` was entered
        self._pending_turn: TurnTiming | None = None
        # Texts of the answer's prompt ready before its first packet left: recorded after it.
        self._held_lines: list[str] = []
        self._end: CallEnd | None = None

    @property
    def engine(self) -> turns.TurnTaker:
        """The dialog's holder (``.state`` is the dialog state), for replays and tests."""
        return self.core

    # -- inputs from the controller -------------------------------------------------------

    def key_pressed(self, digit: str, duration_ms: int = 0) -> None:
        for observer in self._observers:
            observer.key(digit, duration_ms)
        self._inputs.put_nowait(turns.KeyInput(time.monotonic(), digit))

    def awaiting_caller(self) -> bool:
        """The bot has said its piece and listens: nothing playing or queued, no caller
        speech being decided, no webhook pending (a replay ends on this)."""
        return (
            self.core.awaiting_caller()
            and self._inputs.empty()
            and not self.pacer.is_playing
            and not self.listener.in_voice
        )

    # -- lifecycle ------------------------------------------------------------------------

    async def run(self) -> CallEnd:
        """Converse until the dialog hangs up or transfers, or until cancelled."""
        self.pacer.start()
        self._spawn(self.listener.run(), "rx")
        try:
            if self.answering is not None:
                self.listener.observe = self.answering.watch.frame
            else:
                self._begin()
            while self._end is None:
                item = await self._inputs.get()
                if isinstance(item, _Failure):
                    raise MediaError(f"call {self.call_id}: {item.detail}")
                if isinstance(item, AmdDecision | SpeakNow):
                    self._answered_by(item)
                elif isinstance(item, _Begin):
                    self._begin()
                else:
                    self._execute(self.core.handle(item))
            return self._end
        finally:
            await self._shutdown()

    @property
    def amd(self) -> AmdDecision | None:
        """An outbound call's answering-machine verdict (None: inbound, or not decided)."""
        return self.answering.decision if self.answering is not None else None

    @property
    def message_left(self) -> bool:
        """A machine answered and the script's message was played to its end."""
        begun = self.answering is not None and self.answering.message_begun
        return begun and self._end is not None and self._end.reason == "bot-hangup"

    def _begin(self, start: str | None = None) -> None:
        self._execute(self.core.handle(turns.Begin(time.monotonic(), self._variables, start)))

    def _answered_by(self, event: AmdDecision | SpeakNow) -> None:
        """An outbound call's answer is judged: a person (or no telling) hears the script; a
        machine gets the script's ``on_machine`` message once its beep or greeting is over."""
        answering = self.answering
        assert answering is not None
        if isinstance(event, AmdDecision):
            if not answering.decided(event):
                return
            log.info("call %s: answered by %s at %.2f s (%s)", self.call_id, event.verdict,
                     event.at_s, "; ".join(event.reasons))  # fmt: skip
            if event.verdict is not Verdict.MACHINE:
                self.listener.observe = None
                self._spawn(self._begin_when_ready(), "ready")
            elif self.script.on_machine is None:
                self._end = CallEnd("machine")  # no message to leave: hang up
            return
        if not answering.may_leave_message():
            return  # no machine, or its message is under way
        log.info("call %s: leaving the message at %.2f s (%s)", self.call_id, event.at_s,
                 event.reason)  # fmt: skip
        self.listener.observe = ignore
        self._begin(self.script.on_machine)

    def _heard_callee(self, text: str) -> None:
        """A machine taken for a person says so in its words: stop talking to it and wait
        for its beep (a fresh turn core: the greeting's dialog is dropped)."""
        answering = self.answering
        since = time.monotonic() - self._started
        if answering is None or (corrected := answering.heard(text, since)) is None:
            return
        log.info("call %s: %s", self.call_id, corrected.reasons[-1])
        self.speaker.stop()
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        self._pending_turn = None
        self.core = turns.TurnTaker(self.script, self._policy)
        if self.script.on_machine is None:
            self._end = CallEnd("machine")
        else:
            self.listener.close_turn()
            self.listener.observe = answering.watch.frame

    async def _begin_when_ready(self) -> None:
        if self._ready is not None:  # not ready in time: synthesized as it plays
            await asyncio.wait({asyncio.ensure_future(self._ready)}, timeout=READY_WAIT_S)
        self._inputs.put_nowait(_Begin())

    async def _shutdown(self) -> None:
        tasks = {*self._tasks, *self._timers.values()}
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
            # A dead receive loop, speaker or decode would leave a call that neither hears
            # nor talks: end the call (only this one) instead.
            exc = task.exception()
            log.error("call %s: task %s failed", self.call_id, task.get_name(), exc_info=exc)
            # Its type and message, not its repr: the repr of a UnicodeEncodeError holds the
            # whole text it could not encode (a prompt with the caller's data), and this detail
            # ends up in the ERROR line of the call's end and in /calls.
            detail = f"{task.get_name()} failed: {type(exc).__name__}: {exc}"
            self._inputs.put_nowait(_Failure(detail))

    def _follow_payload_type(self, payload_type: int) -> None:
        # Asterisk only plays back the payload type it sends us.
        if self.reply_codec is self.codec and payload_type != self.pacer.payload_type:
            self.pacer.payload_type = payload_type

    # -- carrying out the core's commands -------------------------------------------------

    def _execute(self, commands: list[turns.Command]) -> None:
        for command in commands:
            if isinstance(command, turns.Speak):
                self.speaker.say(command.prompt, command.texts, queued=command.queued)
            elif isinstance(command, turns.PausePlayback):
                self.speaker.pause()
            elif isinstance(command, turns.ResumePlayback):
                self.speaker.resume()
                log.info("call %s: a sound without words: the prompt goes on", self.call_id)
            elif isinstance(command, turns.StopPlayback):
                dropped = self.speaker.stop()
                self._pending_turn = None  # its answer, if not on the wire yet, never will be
                self._held_lines = []
                log.info("call %s: prompt stopped, dropped %d queued frames", self.call_id,
                         dropped)  # fmt: skip
            elif isinstance(command, turns.Decode):
                # A task each, but the listener runs them one at a time, in this order.
                decode = self.listener.decode(
                    command.turn_audio, command.audio, command.part, command.cumulative
                )
                self._spawn(decode, "asr")
            elif isinstance(command, turns.JudgeTurn):
                self._spawn(self.listener.judge(command.turn_audio, command.audio,
                                                command.trailing_s), "turn")  # fmt: skip
            elif isinstance(command, turns.CloseTurn):
                self.listener.close_turn()
            elif isinstance(command, turns.CutTurn):
                self.listener.cut_turn(command.last_part)
            elif isinstance(command, turns.StartTimer):
                self._start_timer(command)
            elif isinstance(command, turns.CancelTimer):
                timer = self._timers.pop(command.name, None)
                if timer is not None:
                    timer.cancel()
            elif isinstance(command, turns.Understand) and self._meaning is not None:
                self._spawn(self._meaning.answer(command, self._inputs.put_nowait), "meaning")
            elif isinstance(command, turns.TurnTaken):
                self.listener.caller_spoke()
                self._turn_taken(command)
            elif isinstance(command, turns.Record):
                self._record(command.who, command.text, state=command.state,
                             intent=command.intent)  # fmt: skip
                if command.who == "caller":
                    self._heard_callee(command.text)
            elif isinstance(command, turns.Note):
                if command.kind == "no-input":
                    self.listener.caller_unheard()
                if command.kind in ("barge-in", "no-input"):
                    self._event(command.kind)
                if command.kind == "barge-in":
                    self.stats.barge_ins += 1
                    for observer in self._observers:
                        observer.barge_in()
                self._log_note(command)
            elif isinstance(command, CallWebhook):
                self.stats.webhooks += 1
                self._spawn(self._webhook(command), "webhook")
            elif isinstance(command, DoNotCall):
                self.do_not_call = True
                log.info("call %s: the number called goes on the do-not-call list", self.call_id)
            elif isinstance(command, turns.EndCall):
                transfer = command.transfer
                self._end = CallEnd("transfer", transfer) if transfer else CallEnd("bot-hangup")
        self.listener.prompt_playing = self.core.playing
        listen = self.core.listen
        self.listener.phrases = listen.phrases if listen is not None and listen.phrases else None
        self.listener.grammar = listen is not None and listen.grammar
        if self._pending_turn is not None and not self._pending_turn.dialog_done:
            self._pending_turn.dialog_done = time.monotonic()

    def _turn_taken(self, command: turns.TurnTaken) -> None:
        turn = TurnTiming(
            turn=len(self.stats.turns) + 1,
            voice_end=command.voice_end,
            paused=command.paused,
            transcribed=command.transcribed,
            decided=command.at,
            text=command.text,
        )
        self.stats.turns.append(turn)
        self._pending_turn = turn

    def _start_timer(self, command: turns.StartTimer) -> None:
        previous = self._timers.pop(command.name, None)
        if previous is not None:
            previous.cancel()

        async def fire() -> None:
            await asyncio.sleep(max(0.0, command.at - time.monotonic()))
            self._timers.pop(command.name, None)
            self._inputs.put_nowait(turns.TimerFired(time.monotonic(), command.name,
                                                     command.token))  # fmt: skip

        self._timers[command.name] = asyncio.create_task(
            fire(), name=f"call-{self.call_id}-timer-{command.name}"
        )

    # -- bot output -----------------------------------------------------------------------

    def _on_first_audio(self, text: str) -> None:
        turn = self._pending_turn
        if turn is not None and turn.first_audio is None:
            # The answer to a turn is recorded with its latency as it goes out.
            turn.first_audio = time.monotonic()
            turn.answer = text
        elif turn is not None:
            # Ready before the answer is on the wire (a recorded prompt is ready at once): it
            # follows the answer in the transcript, as it does on the line.
            self._held_lines.append(text)
        else:
            self._record("bot", text)

    def _on_packet_sent(self, sent_at: float, first_of_talkspurt: bool) -> None:
        turn = self._pending_turn
        if turn is not None and turn.first_packet is None and turn.first_audio is not None:
            turn.first_packet = sent_at
            self._pending_turn = None
            log.info("call %s: %s", self.call_id, turn.log_line())
            timing = turn.as_dict()
            self._record("bot", turn.answer, latency_ms=timing)
            held, self._held_lines = self._held_lines, []
            for line in held:
                self._record("bot", line)
            for observer in self._observers:
                observer.turn(timing)

    # -- webhooks -------------------------------------------------------------------------

    async def _webhook(self, action: CallWebhook) -> None:
        def timed(seconds: float) -> None:
            for observer in self._observers:
                observer.webhook(seconds)

        started = time.monotonic()
        ok, result = await run_webhook(self._http, action, self._webhook_policy, self.call_id,
                                       timed)  # fmt: skip
        self._event("webhook", at=started, seconds=round(time.monotonic() - started, 3), ok=ok)
        self._inputs.put_nowait(turns.WebhookAnswered(time.monotonic(), ok, result))

    def _event(self, kind: str, at: float | None = None, **details: Any) -> None:
        at = time.monotonic() if at is None else at
        self.stats.events.append({"t": round(at - self._started, 3), "kind": kind,
                                  "state": self.core.state_name, **details})  # fmt: skip

    def _record(
        self,
        who: str,
        text: str,
        *,
        state: str | None = None,
        intent: str | None = None,
        latency_ms: dict[str, Any] | None = None,
    ) -> None:
        if state is None:
            state = self.core.state_name
        line = TranscriptLine(who=who, text=text, t=round(time.monotonic() - self._started, 3),
                              state=state, intent=intent, latency_ms=latency_ms)  # fmt: skip
        self.transcript.append(line)
        self._log_line(line)
        for observer in self._observers:
            observer.transcript(line)

    # -- the log --------------------------------------------------------------------------

    def _shown(self, text: str) -> str:
        return caller_text(text, log, transcripts=self._log_transcripts)

    def _log_line(self, line: TranscriptLine) -> None:
        """A transcript line in the log. The caller's words are only their shape at INFO
        (unless ``log.transcripts``); the bot's own lines read back slot values ("You said
        4 2 1 7"), so they are logged at DEBUG only (INFO with ``log.transcripts``)."""
        if line.who == "caller":
            verb = "keyed" if is_key(line.text) else "heard"
            intent = f" → intent {line.intent!r}" if line.intent else ""
            log.info("call %s: %s %s in state %r%s", self.call_id, verb, self._shown(line.text),
                     line.state, intent)  # fmt: skip
        else:
            log.log(caller_text_level(transcripts=self._log_transcripts), "call %s: %s says %r",
                    self.call_id, line.who, line.text)  # fmt: skip

    def _log_note(self, note: turns.Note) -> None:
        if note.kind != "slot":
            log.info("call %s: %s %s", self.call_id, note.kind, note.detail)
            return
        # The core names the slot only; its value is in the dialog state it has just left.
        dialog = self.core.dialog
        value = dialog.variables.get(note.detail) if dialog is not None else None
        log.info("call %s: slot %r filled: %s", self.call_id, note.detail,
                 self._shown("" if value is None else str(value)))  # fmt: skip


@dataclass(frozen=True)
class _Begin:
    """The script begins (an outbound call, once a person answered and its greeting is
    ready)."""


@dataclass(frozen=True)
class _Failure:
    """A task of the call died: the call ends."""

    detail: str


# What the session's loop takes, one at a time.
_Input = turns.TurnInput | _Failure | AmdEvent | _Begin
