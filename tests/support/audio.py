"""Where the tests' recorded human speech lives: copies in the repo, never a system path."""

from __future__ import annotations

from pathlib import Path

FIXTURE_AUDIO = Path(__file__).resolve().parents[1] / "fixtures" / "audio"
# Allison Smith's Asterisk prompts, byte-for-byte copies of Debian's asterisk-core-sounds-en-wav
# (CC BY-SA 3.0; see fixtures/audio/README.md).
ALLISON = FIXTURE_AUDIO / "allison"
