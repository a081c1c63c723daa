"""Turn-taking: who speaks when. A pure core, ``TurnTaker.handle(input) -> commands``.

Everything a call decides lives here: when the caller's turn is over, when the bot's prompt
pauses, resumes or stops under the caller's voice, what a key does during a prompt, when
silence is a no-input. The session feeds it inputs (voice activity from the listener,
transcripts and turn-model verdicts, keys, timers, playback progress, webhook answers), each
stamped with the time it happened, and carries out the commands it answers with. Nothing
here reads a clock, touches a socket or awaits: tests drive it input by input.

The caller's turn, once they fall silent (``VoicePaused``):

1. Decode what was said so far (a speculative decode: the caller may go on); where the state
   expects free text, ask the turn model at the same time.
2. A transcript that completes the state's expected answer (a menu phrase, yes/no, all the
   digits) is taken at once; a correct start (too few digits) waits ``digit_timeout``.
3. Otherwise the turn model judges the audio: complete → take it; incomplete → wait up to
   ``max_silence``. Without a model the silence rule waits ``silence``.
4. Voice again before the turn is taken: every result for the old audio is dropped.

Barge-in is soft: the caller's voice onset pauses the prompt; confirmed speech (long enough,
or words in its transcript) stops it and drops what was queued; a sound without words (a
cough, a click) resumes the prompt where it paused, with no no-match turn.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..dialog.engine import (
    Action,
    CallStarted,
    CallWebhook,
    DialogState,
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
    step,
)
from ..dialog.expectation import AnswerKind, Completion, ends_open, lacks_verb
from ..dialog.model import Script

# A turn model's P(complete) above this takes the turn (Smart Turn's own threshold is 0.5).
# Its verdict is the mean of three cuts around the voice end (speech/turn/base.py): one cut's
# score moved 0.3 between two calls of the same recording, the mean of three moved at most
# 0.27 over cuts 10-20 ms apart. Offline, through G.711, on the 16 free-text turns of
# tests/fixtures/turns: 11 whole sentences scored 0.61-0.98; of the first halves of paused
# answers, those with a verb scored at most 0.44 ("I lost my card", "You have two") and those
# without one (up to 0.66: "my parcel", "The person at extension") are never judged (see
# lacks_verb). 0.6 takes the whole ones early and leaves the judged halves 0.16 of margin.
COMPLETE_THRESHOLD = 0.6
# Whisper writes something for a cough or a breath: "." or, at a tiny score, "You". Measured
# on tests/fixtures/turns: noise scored 0.009-0.09 with no letters but for that one "You";
# the lowest real word 0.05. Text without letters or digits, or scored below this, is no word.
MIN_WORD_CONFIDENCE = 0.02
# Whisper also writes whole sentences for a cough at times. Voice with less pitched audio
# than this (vowels; a cough, a breath or a hiss has none) is a sound, whatever the words.
MIN_PITCHED_S = 0.06
# Answers whose words cannot tell whether they are over: the turn model judges these.
OPEN_ANSWERS = frozenset({AnswerKind.TEXT, AnswerKind.NUMBER})

# -- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Begin:
    """The call was answered."""

    at: float
    variables: Mapping[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class VoiceStarted:
    """The caller's voice began (or came back within the same turn)."""

    at: float


@dataclass(frozen=True)
class VoiceConfirmed:
    """The voice has lasted long enough to be speech, not a cough or a click."""

    at: float


@dataclass(frozen=True)
class VoicePaused:
    """The caller fell silent. ``audio``: the whole turn so far, for the recognizer."""

    at: float
    voice_end: float  # when the last voiced frame ended
    audio: np.ndarray = field(repr=False, compare=False, hash=False)
    pitched_s: float = 1.0  # pitched voice in the turn so far (speech has some, a cough none)


@dataclass(frozen=True)
class Transcribed:
    """The recognizer's text for the audio of ``VoicePaused`` number ``turn_audio``."""

    at: float
    turn_audio: int
    text: str
    confidence: float | None = None  # the engine's 0..1 score, when it gives one


@dataclass(frozen=True)
class TurnJudged:
    """The turn model's probability that the turn (audio number ``turn_audio``) is complete."""

    at: float
    turn_audio: int
    complete: float


@dataclass(frozen=True)
class KeyInput:
    at: float
    digit: str


@dataclass(frozen=True)
class TimerFired:
    at: float
    name: str  # "no_input" | "turn"
    token: int = 0  # the turn timer's audio number, so a stale one is ignored


@dataclass(frozen=True)
class PlaybackDone:
    """Prompt ``prompt`` (and everything queued before it) has been played out."""

    at: float
    prompt: int


@dataclass(frozen=True)
class WebhookAnswered:
    at: float
    ok: bool
    data: Any = field(default=None, hash=False)  # the JSON answer, or the failure reason


TurnInput = (
    Begin
    | VoiceStarted
    | VoiceConfirmed
    | VoicePaused
    | Transcribed
    | TurnJudged
    | KeyInput
    | TimerFired
    | PlaybackDone
    | WebhookAnswered
)

# -- commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Speak:
    """Say ``texts`` as prompt number ``prompt``; ``queued``: after what plays now."""

    prompt: int
    texts: tuple[str, ...]
    queued: bool = False


@dataclass(frozen=True)
class PausePlayback:
    pass


@dataclass(frozen=True)
class ResumePlayback:
    pass


@dataclass(frozen=True)
class StopPlayback:
    """Cancel the prompt and drop everything queued (a barge-in)."""


@dataclass(frozen=True)
class Decode:
    turn_audio: int
    audio: np.ndarray = field(repr=False, compare=False, hash=False)


@dataclass(frozen=True)
class JudgeTurn:
    """Ask the turn model; ``trailing_s`` of silence at the end of ``audio`` are to be cut
    (the model judges best on the audio up to the last voiced frame)."""

    turn_audio: int
    audio: np.ndarray = field(repr=False, compare=False, hash=False)
    trailing_s: float = 0.0


@dataclass(frozen=True)
class CloseTurn:
    """The listener starts the next turn afresh (its audio so far is handled or dropped)."""


@dataclass(frozen=True)
class StartTimer:
    name: str
    at: float
    token: int = 0


@dataclass(frozen=True)
class CancelTimer:
    name: str


@dataclass(frozen=True)
class TurnTaken:
    """The caller's turn is over: ``text`` goes to the dialog (informational, for timing)."""

    text: str
    voice_end: float
    at: float
    # When the pause that led here was seen and its decode came back (latency breakdown).
    paused: float = field(default=0.0, compare=False)
    transcribed: float = field(default=0.0, compare=False)


@dataclass(frozen=True)
class Record:
    """A transcript line: what the caller said or keyed, with the state that heard it."""

    who: str
    text: str
    state: str | None
    intent: str | None = None


@dataclass(frozen=True)
class Note:
    """Something worth a log line (barge-ins, ignored noise, filled slots)."""

    kind: str
    detail: str = ""


@dataclass(frozen=True)
class EndCall:
    """The dialog has ended and its last prompt has been played."""

    transfer: Transfer | None = None


Command = (
    Speak
    | PausePlayback
    | ResumePlayback
    | StopPlayback
    | Decode
    | JudgeTurn
    | CloseTurn
    | StartTimer
    | CancelTimer
    | TurnTaken
    | Record
    | Note
    | CallWebhook
    | EndCall
)

# -- state ----------------------------------------------------------------------------------


def has_words(text: str, confidence: float | None) -> bool:
    if not any(c.isalnum() for c in text):
        return False
    return confidence is None or confidence >= MIN_WORD_CONFIDENCE


def now_silence(turn: _Turn) -> float:
    """How much silence ends the turn's audio: from the last voiced frame to the pause."""
    return max(0.0, turn.paused_at - turn.voice_end)


@dataclass
class _Turn:
    """The caller's turn in progress, from voice onset until taken or dropped."""

    audio_number: int = 0  # which VoicePaused the results must belong to; 0 = none yet
    silent: bool = False  # paused, waiting for the decision
    voice_end: float = 0.0
    paused_at: float = 0.0
    transcribed_at: float = 0.0
    pitched_s: float = 0.0
    audio: np.ndarray | None = None
    text: str | None = None  # transcript of the current audio, once decoded
    verdict: float | None = None  # the turn model's P(complete) for the current audio
    awaits_verdict: bool = False  # the words leave it to the turn model: decide when it answers
    due: bool = False  # the ceiling passed before the transcript came: take it when it does
    barge: bool = False  # began over a prompt that paused for it
    confirmed: bool = False
    ignored: bool = False  # began over a prompt that may not be interrupted


@dataclass(frozen=True)
class TurnPolicy:
    """The call-wide part of turn-taking (config); per-state timing comes from the script."""

    turn_model: bool = False  # a turn model is loaded


class TurnTaker:
    """The turn-taking state of one call. ``handle`` is deterministic and does no I/O."""

    def __init__(self, script: Script, policy: TurnPolicy | None = None) -> None:
        self.script = script
        self.policy = policy or TurnPolicy()
        self.dialog: DialogState | None = None
        self.listen: Listen | None = None
        self.prompt = 0  # number of the newest prompt
        self.playing = False  # a prompt is playing or queued
        self.paused = False  # ... and paused under the caller's voice
        self.barge_in = True  # the playing prompt may be interrupted
        self.ending: Hangup | Transfer | None = None
        self.turn: _Turn | None = None
        self.deferred_keys: list[KeyInput] = []
        self.ended = False
        self._audio_numbers = 0
        self._webhook_pending = False

    # -- queries ------------------------------------------------------------------------

    @property
    def state(self) -> DialogState | None:
        return self.dialog

    @property
    def state_name(self) -> str | None:
        return self.dialog.current if self.dialog is not None else None

    def awaiting_caller(self) -> bool:
        """Said its piece and listens: nothing playing, no turn being decided, no webhook."""
        return (
            self.listen is not None
            and not self.playing
            and self.turn is None
            and not self._webhook_pending
            and not self.ended
        )

    # -- the step -----------------------------------------------------------------------

    def handle(self, event: TurnInput) -> list[Command]:
        if self.ended:
            return []
        if isinstance(event, Begin):
            return self._dialog(CallStarted(dict(event.variables)), event.at)
        if isinstance(event, VoiceStarted):
            return self._voice_started(event)
        if isinstance(event, VoiceConfirmed):
            return self._voice_confirmed(event)
        if isinstance(event, VoicePaused):
            return self._voice_paused(event)
        if isinstance(event, Transcribed):
            return self._transcribed(event)
        if isinstance(event, TurnJudged):
            return self._judged(event)
        if isinstance(event, KeyInput):
            return self._key(event)
        if isinstance(event, TimerFired):
            return self._timer(event)
        if isinstance(event, PlaybackDone):
            return self._playback_done(event)
        assert isinstance(event, WebhookAnswered)
        self._webhook_pending = False
        answer = WebhookDone(event.data) if event.ok else WebhookFailed(str(event.data))
        # The "please wait" prompt finishes before the answer is read out.
        return self._dialog(answer, event.at, queued=True)

    # -- caller's voice -----------------------------------------------------------------

    def _voice_started(self, event: VoiceStarted) -> list[Command]:
        turn = self.turn
        if turn is not None:
            # The caller goes on: whatever was decided about the audio so far is void.
            turn.silent = False
            turn.audio_number = 0
            turn.text = None
            turn.verdict = None
            turn.awaits_verdict = False
            turn.due = False
            if turn.barge and not turn.confirmed and self.playing and not self.paused:
                self.paused = True
                return [CancelTimer("turn"), PausePlayback()]
            return [CancelTimer("turn")]
        turn = self.turn = _Turn()
        commands: list[Command] = []
        if self.playing and (not self.barge_in or self.ending is not None):
            turn.ignored = True
            return commands
        commands.append(CancelTimer("no_input"))
        if self.playing:
            turn.barge = True
            self.paused = True
            commands.append(PausePlayback())
        return commands

    def _voice_confirmed(self, event: VoiceConfirmed) -> list[Command]:
        turn = self.turn
        if turn is None or turn.ignored or turn.confirmed:
            return []
        turn.confirmed = True
        if turn.barge:
            return self._stop_prompt("speech")
        return []

    def _voice_paused(self, event: VoicePaused) -> list[Command]:
        turn = self.turn
        if turn is None:
            return []
        if turn.ignored:
            self.turn = None
            commands: list[Command] = [CloseTurn(), Note("ignored", "prompt without barge-in")]
            if not self.playing:
                commands += self._no_input_timer(event.at)
            return commands
        self._audio_numbers += 1
        turn.audio_number = self._audio_numbers
        turn.silent = True
        turn.voice_end = event.voice_end
        turn.paused_at = event.at
        turn.pitched_s = event.pitched_s
        turn.audio = event.audio
        turn.text = None
        turn.verdict = None
        turn.awaits_verdict = False
        commands = [Decode(turn.audio_number, event.audio)]
        if self._judges_at_pause():
            # Free text is all but always judged: ask beside the decode (another core), not
            # after it, so the verdict is ready when the words are (~350 ms sooner).
            commands.append(JudgeTurn(turn.audio_number, event.audio, now_silence(turn)))
        # The hard ceiling, whatever the transcript and the model say later.
        commands.append(StartTimer("turn", event.voice_end + self._ceiling(), turn.audio_number))
        return commands

    def _transcribed(self, event: Transcribed) -> list[Command]:
        turn = self.turn
        if turn is None or event.turn_audio != turn.audio_number or not turn.silent:
            return []  # the caller spoke again meanwhile: this was about old audio
        words = has_words(event.text, event.confidence) and turn.pitched_s >= MIN_PITCHED_S
        text = event.text.strip() if words else ""
        turn.text = text
        turn.transcribed_at = event.at
        if turn.barge and not turn.confirmed:
            if not text:
                return self._noise(event.at, resume=True)
            turn.confirmed = True
            commands = self._stop_prompt("words")
            return commands + self._judge_text(event.at)
        if not text:
            return self._noise(event.at, resume=False)
        if turn.due:
            return self._take(event.at)
        return self._judge_text(event.at)

    def _judge_text(self, now: float) -> list[Command]:
        turn = self.turn
        assert turn is not None and turn.text is not None
        listen = self.listen
        if listen is None:
            return self._take(now)  # nothing is expected (a webhook runs): record it, move on
        completion = listen.expectation.completion(turn.text)
        if completion is Completion.COMPLETE:
            return self._take(now)
        settings = listen.end_of_turn
        if completion is Completion.PARTIAL:
            # Digits wait for the next digit; a round number ("one hundred") for its rest.
            digits = listen.expectation.kind is AnswerKind.DIGITS
            wait = settings.digit_timeout_s if digits else settings.max_silence_s
            return [StartTimer("turn", turn.voice_end + max(wait, settings.silence_s),
                               turn.audio_number)]  # fmt: skip
        if listen.expectation.kind not in OPEN_ANSWERS:
            # A menu, yes/no or digits answer that fits nothing yet is most likely a caller
            # still on their way to it ("I would like … my balance"): cutting them off costs a
            # no-match and a repeat, waiting costs only on a real no-match. The ceiling set at
            # the pause decides. (Tried: asking the turn model here answered two misheard
            # words 700 ms sooner but cut off "What are your … opening hours" and "six … 0 9
            # 3", heard as "What are you?" and "DICK!": 2 of 35 paused answers.)
            return []
        if self.policy.turn_model and settings.turn_model and turn.audio is not None:
            kind = listen.expectation.kind
            if ends_open(turn.text) or (
                kind is AnswerKind.TEXT and lacks_verb(turn.text, self.script.language)
            ):
                # "I lost my card and", "I need to", "my parcel": more is coming, whatever
                # the model would say about the intonation. The ceiling set at the pause
                # decides.
                return []
            turn.awaits_verdict = True
            if turn.verdict is not None:
                return self._verdict(now)
            if self._judges_at_pause():
                return []  # asked at the pause: decided when the verdict comes
            return [JudgeTurn(turn.audio_number, turn.audio, trailing_s=now_silence(turn))]
        return self._wait_until(now, turn.voice_end + settings.silence_s)

    def _judges_at_pause(self) -> bool:
        listen = self.listen
        return (
            listen is not None
            and self.policy.turn_model
            and listen.end_of_turn.turn_model
            and listen.expectation.kind is AnswerKind.TEXT
        )

    def _judged(self, event: TurnJudged) -> list[Command]:
        turn = self.turn
        if turn is None or event.turn_audio != turn.audio_number or not turn.silent:
            return []
        turn.verdict = event.complete
        if not turn.awaits_verdict:
            return []  # the words are not in yet, or they decide without the model
        return self._verdict(event.at)

    def _verdict(self, now: float) -> list[Command]:
        turn = self.turn
        assert turn is not None and turn.verdict is not None
        if turn.verdict > COMPLETE_THRESHOLD:
            return self._take(now)
        return []  # incomplete: the ceiling timer set at the pause stays

    def _wait_until(self, now: float, at: float) -> list[Command]:
        turn = self.turn
        assert turn is not None
        if at <= now:
            return self._take(now)
        return [StartTimer("turn", at, turn.audio_number)]

    def _ceiling(self) -> float:
        """The longest wait after the caller falls silent, before the answer is taken."""
        if self.listen is None:
            return 0.6
        settings = self.listen.end_of_turn
        if self.listen.expectation.kind is AnswerKind.DIGITS:
            return max(settings.max_silence_s, settings.digit_timeout_s)
        return settings.max_silence_s

    def _noise(self, now: float, *, resume: bool) -> list[Command]:
        """Voice without words: a cough, a click, line noise. Not a turn."""
        self.turn = None
        commands: list[Command] = [CancelTimer("turn"), CloseTurn(), Note("noise")]
        if resume and self.paused:
            self.paused = False
            commands.append(ResumePlayback())
        if not self.playing:
            commands += self._no_input_timer(now)
        return commands

    def _take(self, now: float) -> list[Command]:
        """The caller's turn is over: hand it to the dialog."""
        turn = self.turn
        assert turn is not None
        self.turn = None
        text = turn.text or ""
        commands: list[Command] = [CancelTimer("turn"), CloseTurn()]
        if self.paused:
            # Words came, but a barge-in not yet confirmed: now it is.
            commands += self._stop_prompt("turn")
        commands.append(
            TurnTaken(text, turn.voice_end, now, turn.paused_at or now, turn.transcribed_at or now)
        )
        return commands + self._dialog(Heard(text), now, caller_text=text)

    def _stop_prompt(self, why: str) -> list[Command]:
        if not self.playing:
            self.paused = False
            return []
        self.playing = False
        self.paused = False
        self.prompt += 1  # the stopped prompt's PlaybackDone is stale now
        return [StopPlayback(), Note("barge-in", why)]

    # -- keys ---------------------------------------------------------------------------

    def _key(self, event: KeyInput) -> list[Command]:
        if self.playing and (not self.barge_in or self.ending is not None):
            self.deferred_keys.append(event)
            return []
        commands: list[Command] = [CancelTimer("no_input")]
        if self.turn is not None and not self.turn.ignored:
            # Keys beat speech: whatever the caller was saying is dropped.
            self.turn = None
            commands += [CancelTimer("turn"), CloseTurn()]
        commands += self._stop_prompt("key")
        key = KeyPressed(event.digit)
        return commands + self._dialog(key, event.at, caller_text=f"#{event.digit}")

    # -- timers and playback ------------------------------------------------------------

    def _timer(self, event: TimerFired) -> list[Command]:
        if event.name == "no_input":
            if self.playing or self.turn is not None or self.listen is None:
                return []  # a timer that fired as something else began
            return self._dialog(NoInput(), event.at)
        turn = self.turn
        if turn is None or event.token != turn.audio_number or not turn.silent:
            return []
        if turn.text is None:
            turn.due = True  # still decoding: take it as soon as the words are in
            return []
        if not turn.text:
            return self._noise(event.at, resume=True)
        return self._take(event.at)

    def _playback_done(self, event: PlaybackDone) -> list[Command]:
        if event.prompt != self.prompt or not self.playing:
            return []
        self.playing = False
        self.paused = False
        if self.ending is not None:
            self.ended = True
            transfer = self.ending if isinstance(self.ending, Transfer) else None
            return [EndCall(transfer)]
        if self.deferred_keys:
            commands: list[Command] = []
            keys, self.deferred_keys = self.deferred_keys, []
            for key in keys:
                commands += self.handle(key)
            return commands
        if self.turn is not None and self.turn.ignored:
            # Speech that began over the uninterruptible prompt goes on past its end: still
            # not an answer, but the caller is no longer talking over anything.
            return []
        if self.turn is None:
            return self._no_input_timer(event.at)
        return []

    def _no_input_timer(self, now: float) -> list[Command]:
        if self.listen is None or self.ended:
            return []
        return [StartTimer("no_input", now + self.listen.timeout_s)]

    # -- the dialog ---------------------------------------------------------------------

    def _dialog(
        self,
        event: CallStarted | Heard | KeyPressed | NoInput | WebhookDone | WebhookFailed,
        now: float,
        *,
        queued: bool = False,
        caller_text: str | None = None,
    ) -> list[Command]:
        heard_in = self.state_name
        self.dialog, actions = step(self.script, self.dialog, event)
        commands: list[Command] = []
        if caller_text is not None:
            recognized = next((a for a in actions if isinstance(a, Recognized)), None)
            if recognized is not None:
                commands.append(Record("caller", caller_text, recognized.state, recognized.intent))
            else:
                commands.append(Record("caller", caller_text, heard_in))
        return commands + self._apply(actions, now, queued=queued)

    def _apply(self, actions: list[Action], now: float, *, queued: bool) -> list[Command]:
        if not actions:
            return []  # the dialog ignored the event (e.g. speech while a webhook runs)
        commands: list[Command] = []
        texts: list[str] = []
        barge_in = self.barge_in
        listen: Listen | None = None
        for action in actions:
            if isinstance(action, Say):
                texts.append(action.text)
                barge_in = action.barge_in
            elif isinstance(action, Listen):
                listen = action
            elif isinstance(action, Hangup | Transfer):
                self.ending = action
            elif isinstance(action, CallWebhook):
                self._webhook_pending = True
                commands.append(action)
            elif isinstance(action, SlotFilled):
                commands.append(Note("slot", action.name))
        self.listen = listen
        if texts or self.ending is not None:
            if self.playing and not queued:
                commands += [StopPlayback()]
            self.prompt += 1
            self.playing = True
            self.paused = False
            self.barge_in = barge_in
            commands.append(Speak(self.prompt, tuple(texts), queued=queued))
        elif not self.playing and self.turn is None:
            commands += self._no_input_timer(now)
        return [CancelTimer("no_input"), *commands] if texts else commands
