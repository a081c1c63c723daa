"""Recorded prompts in a script's ``say``: ``{audio: FILE}`` and ``{sound: NAME}``, found and
checked when the script loads, so a missing or unplayable file is a ``voicebot check`` error
with its line, never a silent call."""

from __future__ import annotations

import re
import wave
from collections.abc import Sequence
from pathlib import Path

from .model import RecordedPrompt

RECORDED_KEYS = {"audio", "sound"}
_SOUND_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$")
# Allison Smith's Asterisk prompts as Debian's asterisk-core-sounds-en-wav installs them (make
# setup does); a PBX's own sounds directory is configured as dialog.sound_dirs.
ALLISON_DIR = Path("/usr/share/asterisk/sounds/en_US_f_Allison")
DEFAULT_SOUND_DIRS = (ALLISON_DIR,)
# A recorded prompt is held in memory, converted, for every call: ten minutes is plenty.
MAX_RECORDED_S = 600.0


def recorded_prompt(
    kind: str, source: str, script_dir: Path, sound_dirs: Sequence[Path]
) -> RecordedPrompt:
    """``{audio: source}`` (a WAV file relative to ``script_dir``) or ``{sound: source}``
    (``source``.wav in the first of ``sound_dirs`` that has it); ``ValueError`` says why not."""
    if kind == "audio":
        file = script_dir / source
        problem = wav_problem(file)
        if problem is not None:
            raise ValueError(f"'{source}': {problem}")
        return RecordedPrompt("audio", source, str(file.resolve()))
    if not _SOUND_NAME.match(source) or ".." in source.split("/"):
        raise ValueError(f"bad sound name '{source}' (e.g. hello-world or digits/1)")
    for directory in sound_dirs:
        file = directory / f"{source}.wav"
        if file.is_file():
            problem = wav_problem(file)
            if problem is not None:
                raise ValueError(f"sound '{source}' ({file}): {problem}")
            return RecordedPrompt("sound", source, str(file.resolve()))
    where = ", ".join(str(d) for d in sound_dirs) or "no sound directories"
    raise ValueError(f"no sound '{source}' ({source}.wav in {where}; dialog.sound_dirs)")


def wav_problem(file: Path) -> str | None:
    """Why ``file`` cannot be played as a recorded prompt, or None: a PCM WAV file (any rate,
    mono or stereo) with some audio in it."""
    try:
        with wave.open(str(file), "rb") as wav:
            channels, width = wav.getnchannels(), wav.getsampwidth()
            rate, frames = wav.getframerate(), wav.getnframes()
    except FileNotFoundError:
        return "no such file"
    except IsADirectoryError:
        return "is a directory"
    except OSError as exc:
        return f"cannot read it ({exc.strerror or exc})"
    except (wave.Error, EOFError) as exc:
        return f"not a PCM WAV file ({exc})"
    if channels not in (1, 2):
        return f"{channels} channels (mono or stereo only)"
    if width not in (1, 2, 3, 4):
        return f"{width * 8}-bit samples (8, 16, 24 or 32-bit PCM only)"
    if frames == 0 or rate <= 0:
        return "no audio in it"
    if frames / rate > MAX_RECORDED_S:
        return f"{frames / rate:.0f} s long (at most {MAX_RECORDED_S:.0f} s)"
    return None
