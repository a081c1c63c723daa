"""One call: the turn-taking core, the listener, the speaker and the session that runs them."""

from .services import SpeechServices
from .session import (
    CallEnd,
    CallObserver,
    CallSession,
    CallStats,
    TranscriptLine,
    TurnTiming,
)

__all__ = [
    "CallEnd",
    "CallObserver",
    "CallSession",
    "CallStats",
    "SpeechServices",
    "TranscriptLine",
    "TurnTiming",
]
