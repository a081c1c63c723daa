"""asr.engine = auto | vosk | whisper: which engine and model serve a script's language."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicebot.config import AsrConfig, TtsConfig
from voicebot.errors import ModelError
from voicebot.models import bundled_piper_voice, bundled_whisper_model
from voicebot.speech.choice import choose_asr, choose_voice


def fake_vosk_model(root: Path) -> Path:
    for part in ("am", "conf", "graph"):
        (root / part).mkdir(parents=True)
    (root / "am" / "final.mdl").write_bytes(b"\0")
    return root


def test_auto_takes_a_vosk_model_when_one_is_present(tmp_path: Path) -> None:
    model = fake_vosk_model(tmp_path / "en" / "vosk")
    choice = choose_asr(AsrConfig(engine="auto"), "en", tmp_path)
    assert (choice.engine, choice.model) == ("vosk", model)


def test_auto_falls_back_to_the_bundled_whisper_without_one(tmp_path: Path) -> None:
    choice = choose_asr(AsrConfig(engine="auto"), "en-US", tmp_path)
    assert (choice.engine, choice.model) == ("whisper", bundled_whisper_model())


def test_auto_finds_an_installed_vosk_model_package() -> None:
    choice = choose_asr(AsrConfig(engine="auto"), "ko", Path("/nonexistent"))
    assert choice.engine == "vosk" and choice.model.name == "model"


def test_whisper_forced_even_when_vosk_is_present(tmp_path: Path) -> None:
    fake_vosk_model(tmp_path / "en" / "vosk")
    assert choose_asr(AsrConfig(engine="whisper"), "en", tmp_path).engine == "whisper"


def test_vosk_forced_without_a_model_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no Vosk model for language 'en'"):
        choose_asr(AsrConfig(engine="vosk"), "en", tmp_path)


def test_a_language_nothing_can_hear_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no speech recognizer for language 'de'"):
        choose_asr(AsrConfig(engine="auto"), "de", tmp_path)


def test_voices_per_language(tmp_path: Path) -> None:
    assert choose_voice(TtsConfig(), "en", tmp_path) == bundled_piper_voice()
    (tmp_path / "de" / "piper").mkdir(parents=True)
    (tmp_path / "de" / "piper" / "de_DE-thorsten-medium.onnx").write_bytes(b"x")
    assert choose_voice(TtsConfig(), "de", tmp_path).name == "de_DE-thorsten-medium.onnx"
    with pytest.raises(ModelError, match="no voice for language 'fr'"):
        choose_voice(TtsConfig(), "fr", tmp_path)
