"""Where the recorded human speech spoken by the test caller and the benches comes from.

Allison Smith's Asterisk prompts, as Debian's ``asterisk-core-sounds-en-wav`` installs them
(``scripts/install-system-deps.sh``), under ``en_US_f_Allison``: ``dialog.recorded.ALLISON_DIR``,
also where ``{sound: NAME}`` looks. Nothing on Debian links that directory to ``sounds/en``, so
it is the only path we name. The test suite does not use it: it reads its own copies in
``tests/fixtures/audio/allison/``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from ..dialog.recorded import ALLISON_DIR
from ..errors import MediaError

ALLISON_PACKAGE = "asterisk-core-sounds-en-wav"


def allison_prompt(name: str, directory: Path = ALLISON_DIR) -> Path:
    """The path of Allison's recording ``name`` (e.g. ``hours``, ``digits/4``); it must exist."""
    path = directory / f"{name}.wav"
    if not path.is_file():
        raise MediaError(missing_sound_message(path))
    return path


def missing_sound_message(path: Path) -> str:
    """What to tell a user whose sound file is missing, with the fix when it is one of ours."""
    if path.is_relative_to(ALLISON_DIR):
        return (
            f"sound file not found: {path} (Allison's prompts come from Debian's "
            f"{ALLISON_PACKAGE}: run `make setup` or scripts/install-system-deps.sh)"
        )
    return f"sound file not found: {path}"


def espeak_wav(text: str, voice: str, words_per_minute: int) -> bytes:
    """``text`` said by espeak-ng's ``voice``, as the WAV file espeak writes (22.05 kHz): the
    synthetic callers of the test fixtures."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng not found (Debian: apt-get install espeak-ng)")
    done = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "--stdout", text],
        capture_output=True, check=True,
    )  # fmt: skip
    return done.stdout
