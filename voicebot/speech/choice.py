"""Which ASR engine and TTS voice serve a script's language (``asr.engine = auto|vosk|whisper``).

Pure decisions over what is installed; the app loads what is chosen. ``auto`` takes Vosk when a
Vosk model for the language is present (config path, ``models/<lang>/vosk/``, or an installed
model package), else the bundled whisper, which only speaks English.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config import AsrConfig, TtsConfig
from ..errors import ModelError
from ..models import find_vosk_model, resolve_piper_voice, resolve_whisper_model

# The bundled models (whisper tiny.en, Piper en_US-joe-medium) are English only.
BUNDLED_LANGUAGE = "en"


@dataclass(frozen=True)
class AsrChoice:
    engine: str  # "vosk" | "whisper"
    model: Path


def base_language(language: str) -> str:
    return language.replace("_", "-").split("-")[0].lower()


def choose_asr(config: AsrConfig, language: str, models_dir: Path = Path("models")) -> AsrChoice:
    lang = base_language(language)
    if config.engine in ("auto", "vosk"):
        vosk = find_vosk_model(lang, config.vosk_model, models_dir)
        if vosk is not None:
            return AsrChoice("vosk", vosk)
        if config.engine == "vosk":
            raise ModelError(
                f"asr.engine = vosk but no Vosk model for language '{language}' (set "
                f"asr.vosk_model, put one in {models_dir}/{lang}/vosk/, or run "
                f"`voicebot models list` to see what can be fetched)"
            )
    if lang != BUNDLED_LANGUAGE and not config.whisper_model:
        raise ModelError(
            f"no speech recognizer for language '{language}': the bundled whisper model is "
            f"English only; fetch a Vosk model (`voicebot models list`) or set asr.vosk_model"
        )
    return AsrChoice("whisper", resolve_whisper_model(config.whisper_model))


def choose_voice(config: TtsConfig, language: str, models_dir: Path = Path("models")) -> Path:
    """A Piper voice for the language: tts.voice, else models/<lang>/piper/*.onnx, else the
    bundled English voice."""
    if config.voice:
        return resolve_piper_voice(config.voice)
    lang = base_language(language)
    fetched = sorted((models_dir / lang / "piper").glob("*.onnx"))
    if fetched:
        return fetched[0]
    if lang != BUNDLED_LANGUAGE:
        raise ModelError(
            f"no voice for language '{language}': the bundled Piper voice is English; fetch one "
            f"(`voicebot models list`) or set tts.voice"
        )
    return resolve_piper_voice("")
