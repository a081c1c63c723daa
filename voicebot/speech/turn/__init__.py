"""End-of-turn detection: has the caller finished, or only paused mid-sentence?

A ``TurnDetector`` judges the audio of the turn so far (after the VAD has heard a pause) and
returns the probability that the caller is done. The caller of this package handles "no model
installed" by having no detector (None), so there is no null implementation here.
"""

from __future__ import annotations

from .base import TurnDetector
from .features import turn_features
from .smart_turn import SmartTurnDetector, find_smart_turn_model

__all__ = ["SmartTurnDetector", "TurnDetector", "find_smart_turn_model", "turn_features"]
