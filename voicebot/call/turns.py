"""Turn-taking: who speaks when. A pure core, ``TurnTaker.handle(input) -> commands``.

Everything a call decides lives here: when the caller's turn is over, when the bot's prompt
pauses, resumes or stops under the caller's voice, what a key does during a prompt, when
silence is a no-input. The session feeds it inputs (voice activity from the listener,
transcripts and turn-model verdicts, keys, timers, playback progress, webhook answers), each
stamped with the time it happened, and carries out the commands it answers with
(``call/commands.py``). Nothing here reads a clock, touches a socket or awaits: tests drive
it input by input.

The caller's turn, once they fall silent (``VoicePaused``):

1. Decode the turn so far while it is a short answer (``WHOLE_TURN_MAX_S``), else only its
   new part, the voice since the previous pause (``call/parts.py``); where the state expects
   free text, ask the turn model about the whole turn at the same time.
2. Words that complete the state's expected answer (a menu phrase, yes/no, all the digits)
   are taken at once; a correct start (too few digits) waits ``digit_timeout``. Whole-turn
   words that fit nothing are checked with the last part decoded alone (and if that fits
   nothing either, the turn is decoded by parts from then on).
3. Otherwise the turn model judges the audio: complete → take it; incomplete → wait up to
   ``max_silence``. Without a model the silence rule waits ``silence``.
4. Voice again before the turn is taken: whatever was decided (timers, verdicts) is void;
   the transcripts stay right about what they heard and are kept.

A turn holds at most ``MAX_TURN_VOICE_S``: then it is cut (``CutTurn``) and decided on what
was said; voice that goes on is the next turn.

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
    DoNotCall,
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
from ..dialog.expectation import AnswerKind, Completion
from ..dialog.lang import language_for
from ..dialog.meaning import MeaningMatch
from ..dialog.model import SayItem, Script
from .commands import (
    CancelTimer,
    CloseTurn,
    Command,
    CutTurn,
    Decode,
    EndCall,
    JudgeTurn,
    Note,
    PausePlayback,
    Record,
    ResumePlayback,
    Speak,
    StartTimer,
    StopPlayback,
    TurnTaken,
    Understand,
)
from .parts import TurnParts

# A turn model's P(complete) above this takes the turn (Smart Turn's own threshold is 0.5).
# Its verdict is the mean of three cuts around the voice end (speech/turn/base.py): one cut's
# score moved 0.3 between two calls of the same recording, the mean of three moved at most
# 0.27 over cuts 10-20 ms apart. Offline, through G.711, on the 16 free-text turns of
# tests/fixtures/turns: 11 whole sentences scored 0.61-0.98; of the first halves of paused
# answers, those with a verb scored at most 0.44 ("I lost my card", "You have two") and those
# without one (up to 0.66: "my parcel", "The person at extension") are never judged (see
# lacks_verb). 0.6 takes the whole ones early and leaves the judged halves 0.16 of margin.
COMPLETE_THRESHOLD = 0.6
# The most voice one turn may hold: a caller (or a TV) that talks on without a pause the
# turn can end at is cut here and answered, so one call never holds more than this much
# audio or queues more than this much recognition. 30 s is also whisper's window. Answers
# to an IVR take a few seconds; the longest free-text turn in tests/fixtures/turns is 6 s.
MAX_TURN_VOICE_S = 30.0
# While the turn's voice spans at most this, a pause decodes the whole turn again: short
# words are heard far better in their sentence (a lone "five" came back "5 5"). The longest
# answer of tests/fixtures/turns, digits after a carrier phrase with a pause before each
# digit, spans 5.7 s. Later pauses, free text, and a turn whose words and last part fit
# nothing (a talker, not an answer) decode only each new part, once.
WHOLE_TURN_MAX_S = 8.0
# Answers whose words cannot tell whether they are over: the turn model judges these.
OPEN_ANSWERS = frozenset({AnswerKind.TEXT, AnswerKind.NUMBER})

# -- inputs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Begin:
    """The call was answered (an outbound call: and its answering-machine verdict is in);
    ``start``: a state to begin in other than the script's start (``on_machine``)."""

    at: float
    variables: Mapping[str, str] = field(default_factory=dict, hash=False)
    start: str | None = None


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
    """The caller fell silent (or the turn was cut). ``audio``: the turn's new part, the voice
    since the previous pause with a little lead-in, for the recognizer; ``whole``: the whole
    turn so far, for the turn model (None: the part is the whole turn)."""

    at: float
    voice_end: float  # when the last voiced frame ended
    audio: np.ndarray = field(repr=False, compare=False, hash=False)
    pitched_s: float = 1.0  # pitched voice in the part (speech has some, a cough none)
    whole: np.ndarray | None = field(default=None, repr=False, compare=False, hash=False)


@dataclass(frozen=True)
class Transcribed:
    """The recognizer's text for part ``part`` of the turn, the audio of ``VoicePaused``
    number ``turn_audio``. ``cumulative``: the text of the whole turn up to that pause (a
    streaming recognizer has heard it all), which stands for parts 0..``part``."""

    at: float
    turn_audio: int
    text: str
    confidence: float | None = None  # the engine's 0..1 score, when it gives one
    part: int = 0
    cumulative: bool = False


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
    name: str  # "no_input" | "turn" | "cap"
    token: int = 0  # the turn timer's audio number (the cap's turn number): stale ones are ignored


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


@dataclass(frozen=True)
class Understood:
    """The answer to ``Understand(token)``: the intent the words mean (None: none is clear)
    and ``reason``, the scores behind it for the log."""

    at: float
    token: int
    meaning: MeaningMatch | None
    reason: str = ""


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
    | Understood
)

# -- state ----------------------------------------------------------------------------------


def now_silence(turn: _Turn) -> float:
    """How much silence ends the turn's audio: from the last voiced frame to the pause."""
    return max(0.0, turn.paused_at - turn.voice_end)


@dataclass
class _Turn:
    """The caller's turn in progress, from voice onset until taken or dropped."""

    number: int = 0  # its cap timer's token
    started: float = 0.0
    parts: TurnParts = field(default_factory=TurnParts)
    audio_number: int = 0  # the pause decisions are about (timers, verdicts); 0 = voice again
    silent: bool = False  # paused, waiting for the decision
    capped: bool = False  # held MAX_TURN_VOICE_S: decided on what was said up to the cut
    parts_only: bool = False  # its words and last part fitted nothing: decode new parts only
    voice_end: float = 0.0
    paused_at: float = 0.0
    transcribed_at: float = 0.0
    audio: np.ndarray | None = None  # the whole turn up to the last pause, for the turn model
    last_part: np.ndarray | None = None  # the voice since the pause before, for a decode alone
    text: str | None = None  # the parts' words joined, once every part is decoded
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
    meaning: bool = False  # words no phrase of a menu fits are compared by meaning


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
        self._turn_numbers = 0
        self._webhook_pending = False
        # A taken turn whose words are being compared by meaning: (token, words, TurnTaken).
        self._understanding: tuple[int, str, TurnTaken] | None = None
        self._understand_numbers = 0

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
            and self._understanding is None
            and not self.ended
        )

    # -- the step -----------------------------------------------------------------------

    def handle(self, event: TurnInput) -> list[Command]:
        if self.ended:
            return []
        if isinstance(event, Begin):
            return self._dialog(CallStarted(dict(event.variables), event.start), event.at)
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
        if isinstance(event, Understood):
            return self._understood(event)
        assert isinstance(event, WebhookAnswered)
        self._webhook_pending = False
        answer = WebhookDone(event.data) if event.ok else WebhookFailed(str(event.data))
        # The "please wait" prompt finishes before the answer is read out.
        return self._dialog(answer, event.at, queued=True)

    # -- caller's voice -----------------------------------------------------------------

    def _voice_started(self, event: VoiceStarted) -> list[Command]:
        turn = self.turn
        if turn is not None:
            if turn.capped:
                return []  # voice after the cut: the listener hands it on as the next turn
            # The caller goes on: whatever was decided about the turn so far is void (the
            # parts' transcripts stay: they are still right about their parts).
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
        self._turn_numbers += 1
        turn = self.turn = _Turn(number=self._turn_numbers, started=event.at)
        commands: list[Command] = [StartTimer("cap", event.at + MAX_TURN_VOICE_S, turn.number)]
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
        if turn is None or turn.ignored or turn.confirmed or turn.capped:
            return []
        turn.confirmed = True
        if turn.barge:
            return self._stop_prompt("speech")
        return []

    def _voice_paused(self, event: VoicePaused) -> list[Command]:
        turn = self.turn
        if turn is None or (turn.capped and turn.silent):
            return []
        if turn.ignored:
            self.turn = None
            commands: list[Command] = [CloseTurn(), Note("ignored", "prompt without barge-in")]
            if not self.playing:
                commands += self._no_input_timer(event.at)
            return commands
        self._audio_numbers += 1
        turn.audio_number = self._audio_numbers
        part = turn.parts.add(turn.audio_number, event.pitched_s)
        turn.silent = True
        turn.voice_end = event.voice_end
        turn.paused_at = event.at
        turn.audio = event.audio if event.whole is None else event.whole
        turn.last_part = event.audio
        turn.text = None
        turn.verdict = None
        turn.awaits_verdict = False
        whole = self._decodes_whole(turn)
        commands = [Decode(turn.audio_number, turn.audio if whole else event.audio, part, whole)]
        if turn.capped:
            turn.due = True  # the turn was cut: decided on its words as soon as they are in
            return commands
        if self._judges_at_pause():
            # Free text is all but always judged: ask beside the decode (another core), not
            # after it, so the verdict is ready when the words are (~350 ms sooner).
            commands.append(JudgeTurn(turn.audio_number, turn.audio, now_silence(turn)))
        # The hard ceiling, whatever the transcript and the model say later.
        commands.append(StartTimer("turn", event.voice_end + self._ceiling(), turn.audio_number))
        return commands

    def _transcribed(self, event: Transcribed) -> list[Command]:
        turn = self.turn
        if turn is None or not turn.parts.transcribed(
            event.part, event.turn_audio, event.text, event.confidence,
            cumulative=event.cumulative,
        ):  # fmt: skip
            return []  # about a turn that is over
        if not event.cumulative and turn.parts.parts[event.part].alone_asked:
            return self._tail_heard(event)
        if not turn.silent or turn.text is not None:
            return []  # the caller went on: kept for when they pause
        if turn.parts.text() is None:
            return []  # a transcript the words need is still being decoded
        return self._words_in(event.at)

    def _words_in(self, now: float) -> list[Command]:
        """The paused turn's words are in: decide on them."""
        turn = self.turn
        assert turn is not None
        text = turn.text = turn.parts.text() or ""
        turn.transcribed_at = now
        if turn.barge and not turn.confirmed:
            if not text:
                return self._noise(now, resume=True)
            turn.confirmed = True
            commands = self._stop_prompt("words")
            return commands + (self._take(now) if turn.due else self._judge_text(now))
        if not text:
            return self._noise(now, resume=False)
        if turn.due:
            return self._take(now)
        return self._judge_text(now)

    def _judge_text(self, now: float) -> list[Command]:
        turn = self.turn
        assert turn is not None and turn.text is not None
        listen = self.listen
        if listen is None:
            return self._take(now)  # nothing is expected (a webhook runs): record it, move on
        completion = listen.expectation.completion(turn.text)
        if completion is Completion.COMPLETE:
            return self._take(now)
        return self._tail_alone(listen, completion) + self._undecided(now, completion)

    def _tail_alone(self, listen: Listen, completion: Completion) -> list[Command]:
        """The whole turn's words fit nothing: have its last part decoded on its own. Not
        for free text (never complete by its words), nor a correct start ("four two" of three
        digits: a lone "five" alone may come back "5 5", and complete it wrongly)."""
        turn = self.turn
        assert turn is not None and turn.last_part is not None
        last = turn.parts.parts[-1]
        if listen.expectation.kind is AnswerKind.TEXT or completion is not Completion.UNKNOWN:
            return []
        if last.alone is not None or last.alone_asked or len(turn.parts.parts) < 2:
            return []
        last.alone_asked = True
        return [Decode(last.number, turn.last_part, len(turn.parts.parts) - 1)]

    def _tail_heard(self, event: Transcribed) -> list[Command]:
        """A part decoded alone after the whole turn's words fitted nothing: with the words
        before it, taken if that completes the answer (the whole turn's transcript lost or
        misheard what followed the pause). Else the turn is decoded by parts from now on."""
        turn = self.turn
        assert turn is not None
        tail = turn.parts.tail_text(event.part)
        listen = self.listen
        complete = Completion.COMPLETE
        if not tail or listen is None or listen.expectation.completion(tail) is not complete:
            turn.parts_only = True
            return []
        if not turn.silent or turn.text is None or event.part != len(turn.parts.parts) - 1:
            return []  # the caller went on: the whole turn is heard again at their pause
        turn.text = tail
        return self._take(event.at)

    def _decodes_whole(self, turn: _Turn) -> bool:
        kind = self.listen.expectation.kind if self.listen is not None else AnswerKind.TEXT
        short = turn.voice_end - turn.started <= WHOLE_TURN_MAX_S
        return short and kind is not AnswerKind.TEXT and not turn.capped and not turn.parts_only

    def _undecided(self, now: float, completion: Completion) -> list[Command]:
        """Words that do not complete the answer: wait for more, or judge them."""
        turn = self.turn
        listen = self.listen
        assert turn is not None and turn.text is not None and listen is not None
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
            language = language_for(self.script.language)
            if language.ends_open(turn.text) or (
                kind is AnswerKind.TEXT and language.lacks_verb(turn.text)
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
        """The caller's turn is over: hand it to the dialog (words no phrase of a menu fits
        are compared by meaning first, where the menu and the call allow: ``Understand``)."""
        turn = self.turn
        assert turn is not None
        self.turn = None
        text = turn.text or ""
        commands: list[Command] = [CancelTimer("turn"), CloseTurn()]
        if self.paused:
            # Words came, but a barge-in not yet confirmed: now it is.
            commands += self._stop_prompt("turn")
        taken = TurnTaken(
            text, turn.voice_end, now, turn.paused_at or now, turn.transcribed_at or now
        )
        understand = self._by_meaning(text)
        if understand is not None:
            # Handed over with the dialog's answer: the comparison's time is the dialog's.
            self._understanding = (understand.token, text, taken)
            return [*commands, understand]
        return [*commands, taken, *self._dialog(Heard(text), now, caller_text=text)]

    def _by_meaning(self, text: str) -> Understand | None:
        """The words' comparison by meaning, when they are for a menu that understands by
        meaning and none of its phrases fits them (a phrase that fits costs nothing more)."""
        listen, dialog = self.listen, self.dialog
        if not self.policy.meaning or listen is None or dialog is None or not text.strip():
            return None
        state = self.script.states[dialog.current]
        if not state.by_meaning or listen.expectation.completion(text) is Completion.COMPLETE:
            return None
        self._understand_numbers += 1
        return Understand(self._understand_numbers, state.name, text, state.meaning_menu)

    def _understood(self, event: Understood) -> list[Command]:
        """What the words of the turn taken mean is in: now the dialog hears them."""
        pending = self._understanding
        if pending is None or event.token != pending[0]:
            return []  # a key came first, or a later turn was taken
        self._understanding = None
        _, text, taken = pending
        commands: list[Command] = [taken]
        if event.meaning is None:
            commands.append(Note("no intent by meaning", f"({event.reason})"))
        heard = Heard(text, event.meaning)
        return commands + self._dialog(heard, event.at, caller_text=text)

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
        self._understanding = None  # keys beat speech, even words being understood
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
            if self._understanding is not None:
                return []  # the last turn's words are being understood
            return [Note("no-input"), *self._dialog(NoInput(), event.at)]
        turn = self.turn
        if event.name == "cap":
            if turn is None or event.token != turn.number or turn.capped:
                return []
            turn.capped = True
            commands: list[Command] = [CancelTimer("turn"), Note("cut", f"{MAX_TURN_VOICE_S:g} s")]
            if not turn.silent:
                return [*commands, CutTurn()]  # its VoicePaused brings the last part
            return [*commands, CutTurn(last_part=False), *self._decide_now(event.at)]
        if turn is None or event.token != turn.audio_number or not turn.silent:
            return []
        return self._decide_now(event.at)

    def _decide_now(self, now: float) -> list[Command]:
        """The paused turn is over, whatever more its words would wait for."""
        turn = self.turn
        assert turn is not None
        if turn.text is None:
            turn.due = True  # still decoding: take it as soon as the words are in
            return []
        if not turn.text:
            return self._noise(now, resume=True)
        return self._take(now)

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
                commands += _matched_how(self.script, event, recognized)
            else:
                commands.append(Record("caller", caller_text, heard_in))
        return commands + self._apply(actions, now, queued=queued)

    def _apply(self, actions: list[Action], now: float, *, queued: bool) -> list[Command]:
        if not actions:
            return []  # the dialog ignored the event (e.g. speech while a webhook runs)
        commands: list[Command] = []
        texts: list[SayItem] = []
        barge_in = self.barge_in
        listen: Listen | None = None
        for action in actions:
            if isinstance(action, Say):
                texts.append(action.recording or action.text)
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
            elif isinstance(action, DoNotCall):
                commands.append(action)
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


def _matched_how(script: Script, event: object, recognized: Recognized) -> list[Command]:
    """The log's word on how a menu's intent was matched from speech: by phrase or by
    meaning (with its score and margin)."""
    if not isinstance(event, Heard) or not recognized.intent:
        return []
    if not script.states[recognized.state].expect:
        return []  # a collect state's slot, not an intent
    if recognized.meaning is not None:
        return [Note("intent", recognized.meaning.describe())]
    return [Note("intent", f"{recognized.intent!r} by phrase")]
