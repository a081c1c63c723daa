"""What the turn core (``call/turns.py``) answers with: the commands the session carries out.

Plain values: the core decides, the session (and the listener and speaker it drives) does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..dialog.engine import CallWebhook, DoNotCall, Transfer
from ..dialog.model import SayItem


@dataclass(frozen=True)
class Speak:
    """Say ``texts`` as prompt number ``prompt``; ``queued``: after what plays now."""

    prompt: int
    texts: tuple[SayItem, ...]
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
    """Transcribe part ``part`` of the turn (ended by pause ``turn_audio``), or with
    ``cumulative`` the whole turn up to it: one decode in flight per call, in the order
    asked."""

    turn_audio: int
    audio: np.ndarray = field(repr=False, compare=False, hash=False)
    part: int = 0
    cumulative: bool = False


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
class CutTurn:
    """The turn holds ``MAX_TURN_VOICE_S``: the listener ends it here, as if the caller had
    paused (a ``VoicePaused`` for its ``last_part``; False: the caller had paused already),
    and once it is closed starts the next turn with the voice that went on."""

    last_part: bool = True


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
class Understand:
    """No phrase of menu state ``state`` fits the caller's words ``text``: compare them by
    meaning with ``intents`` (its ``(intent, phrases and examples)``, ``State.meaning_menu``) and
    answer ``Understood(token)``, whatever comes of it (``call/meaning.py``)."""

    token: int
    state: str
    text: str
    intents: tuple[tuple[str, tuple[str, ...]], ...]


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
    | CutTurn
    | StartTimer
    | CancelTimer
    | TurnTaken
    | Understand
    | Record
    | Note
    | CallWebhook
    | DoNotCall
    | EndCall
)
