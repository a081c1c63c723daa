"""The shipped dialog scripts (prompts/*.yaml) load, and the caller audio fixtures say what
they claim to (whisper tiny.en, after the G.711 μ-law round trip the bot's audio goes through).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

from voicebot.dialog.lang import language_for
from voicebot.dialog.library import ScriptLibrary
from voicebot.dialog.parser import load_script
from voicebot.media.codecs import resample
from voicebot.media.g711 import ulaw_decode, ulaw_encode
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.tools.sip import read_wav_8k

ROOT = Path(__file__).resolve().parents[2]
PROMPTS = ROOT / "prompts"
AUDIO = ROOT / "tests" / "fixtures" / "audio"
SCRIPTS = sorted(PROMPTS.glob("*.yaml"))


def _maker() -> ModuleType:
    """scripts/make-caller-audio.py: its FIXTURES list is the source of truth."""
    spec = importlib.util.spec_from_file_location(
        "make_caller_audio", ROOT / "scripts" / "make-caller-audio.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


FIXTURES = {f.name: f.text for f in _maker().FIXTURES}
# Russian fixtures live in ru/ and are checked with whisper base (ru).
ENGLISH_FIXTURES = sorted(name for name in FIXTURES if not name.startswith("ru/"))
RUSSIAN_FIXTURES = sorted(name for name in FIXTURES if name.startswith("ru/"))
NUMBER_WORDS = {
    w: str(i) for i, w in enumerate("zero one two three four five six seven eight nine".split())
} | {"oh": "0"}
ARTICLES = {"a", "an", "the"}  # whisper may drop them ("an appointment" -> "appointment.")


def heard_words(text: str) -> list[str]:
    """Lower-case words; digits one per word ("4217" and "four" both become digits)."""
    out: list[str] = []
    for word in re.findall(r"[a-z0-9']+", text.lower()):
        word = NUMBER_WORDS.get(word, word)
        out.extend(word if word.isdigit() else [word])
    return out


# ---- scripts ---------------------------------------------------------------------------


def test_the_example_scripts_are_all_there() -> None:
    assert {p.stem for p in SCRIPTS} >= {"demo", "bank", "clinic", "delivery"}


@pytest.mark.parametrize("path", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_loads(path: Path) -> None:
    script = load_script(path)
    assert script.states


def test_bot_loads_every_script_by_name() -> None:
    library = ScriptLibrary(PROMPTS, "demo")
    for name in ("bank", "clinic", "delivery"):
        assert library.get(name).states


# ---- caller audio fixtures -------------------------------------------------------------


def test_every_fixture_file_is_made_by_the_script_and_vice_versa() -> None:
    files = [*AUDIO.glob("*.wav"), *AUDIO.glob("ru/*.wav")]
    assert {str(p.relative_to(AUDIO).with_suffix("")) for p in files} == set(FIXTURES)


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_is_small_8k_mono_16bit(name: str) -> None:
    pcm = read_wav_8k(AUDIO / f"{name}.wav")  # raises unless 8 kHz 16-bit
    assert 0.3 < pcm.size / 8000 < 5.0


@pytest.mark.slow
@pytest.mark.parametrize("name", ENGLISH_FIXTURES)
async def test_whisper_hears_the_fixture_text(name: str, whisper: WhisperEngine) -> None:
    pcm = ulaw_decode(ulaw_encode(read_wav_8k(AUDIO / f"{name}.wav")))
    transcript = await whisper.transcribe(resample(pcm, 8000, whisper.sample_rate))
    heard = heard_words(transcript.text)
    for word in set(heard_words(FIXTURES[name])) - ARTICLES:
        assert word in heard, (
            f"{name}.wav: expected {FIXTURES[name]!r}, whisper heard {transcript.text!r}"
        )


@pytest.mark.slow
@pytest.mark.parametrize("name", RUSSIAN_FIXTURES)
async def test_whisper_base_hears_the_russian_fixture_text(
    name: str, whisper_ru: WhisperEngine
) -> None:
    pcm = ulaw_decode(ulaw_encode(read_wav_8k(AUDIO / f"{name}.wav")))
    transcript = await whisper_ru.transcribe(resample(pcm, 8000, whisper_ru.sample_rate))
    russian = language_for("ru")
    expected = FIXTURES[name]
    if russian.parse_digits(expected) is not None and name.startswith("ru/digits"):
        assert russian.parse_digits(transcript.text) == russian.parse_digits(expected), (
            f"{name}.wav: expected {expected!r}, whisper base heard {transcript.text!r}"
        )
        return
    heard = " ".join(russian.normalize(transcript.text))
    for word in (w for w in russian.normalize(expected) if len(w) > 2):
        # Endings move with case ("работы" / "работа"): the stem must be there.
        assert word[:4] in heard, (
            f"{name}.wav: expected {expected!r}, whisper base heard {transcript.text!r}"
        )
