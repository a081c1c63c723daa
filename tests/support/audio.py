"""Where the tests' recorded human speech lives: copies in the repo, never a system path."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from voicebot.speech.turn.features import SAMPLE_RATE

FIXTURE_AUDIO = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
# Allison Smith's Asterisk prompts, byte-for-byte copies of Debian's asterisk-core-sounds-en-wav
# (CC BY-SA 3.0; see fixtures/audio/README.md).
ALLISON = FIXTURE_AUDIO / "allison"
# The labelled caller turns of the endpointing bench (labels.json, README.md there).
TURNS = Path(__file__).resolve().parents[1] / "fixtures" / "turns"


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise shaped by a syllable-rate envelope: broadband, loud, not silence (at the
    end-of-turn model's rate)."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (rng.normal(0, 3000, n) * envelope).astype(np.int16)
