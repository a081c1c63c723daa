"""Where the speech models are found, and which engine and model serve a script's language
(asr.engine = auto | vosk | whisper)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from voicebot.config import AsrConfig, TtsConfig
from voicebot.errors import ModelError
from voicebot.speech.discovery import (
    AsrChoice,
    VoiceChoice,
    base_language,
    bundled_piper_voice,
    bundled_whisper_model,
    choose_asr,
    choose_voice,
    find_vosk_model,
    resolve_piper_voice,
    resolve_whisper_model,
)
from voicebot.speech.tts.rhvoice import MANIFEST_NAME


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
    assert choose_voice(TtsConfig(), "en", tmp_path) == VoiceChoice("piper", bundled_piper_voice())
    (tmp_path / "de" / "piper").mkdir(parents=True)
    (tmp_path / "de" / "piper" / "de_DE-thorsten-medium.onnx").write_bytes(b"x")
    assert choose_voice(TtsConfig(), "de", tmp_path).model.name == "de_DE-thorsten-medium.onnx"
    with pytest.raises(ModelError, match="no voice for language 'fr'"):
        choose_voice(TtsConfig(), "fr", tmp_path)


def test_russian_is_whisper_base_and_rhvoice_when_installed(tmp_path: Path) -> None:
    models = tmp_path / "models"
    rhvoice = tmp_path / "rhvoice"
    config = TtsConfig(rhvoice_dir=str(rhvoice), rhvoice_voice="Anna")
    with pytest.raises(ModelError, match=r"whisper base multilingual is not installed.*"
                       r"VOICEBOT_LANGUAGES=en,ru"):  # fmt: skip
        choose_asr(AsrConfig(), "ru", models)
    with pytest.raises(ModelError, match=r"RHVoice is not installed.*VOICEBOT_LANGUAGES=en,ru"):
        choose_voice(config, "ru-RU", models)

    (models / "whisper-base").mkdir(parents=True)
    (models / "whisper-base" / "model.bin").write_bytes(b"x")
    rhvoice.mkdir()
    with pytest.raises(ModelError, match="RHVoice is not installed"):  # no manifest: unfinished
        choose_voice(config, "ru", models)
    (rhvoice / MANIFEST_NAME).write_text("{}")
    assert choose_asr(AsrConfig(), "ru-RU", models) == AsrChoice(
        "whisper", models / "whisper-base", "ru"
    )
    assert choose_voice(config, "ru", models) == VoiceChoice("rhvoice", rhvoice, "Anna")
    # English keeps the bundled tiny.en, and another language is still refused.
    assert choose_asr(AsrConfig(), "en", models).model == bundled_whisper_model()
    with pytest.raises(ModelError, match="no speech recognizer for language 'de'"):
        choose_asr(AsrConfig(), "de", models)


def test_a_language_is_served_by_its_primary_subtag() -> None:
    assert [base_language(c) for c in ("en", "en-US", "de_DE", "PT-br")] == ["en", "en", "de", "pt"]


def test_a_region_specific_vosk_model_comes_before_the_language_one(tmp_path: Path) -> None:
    general = fake_vosk_model(tmp_path / "xx" / "vosk")
    regional = fake_vosk_model(tmp_path / "xx_yy" / "vosk")
    assert find_vosk_model("xx-YY", models_dir=tmp_path) == regional
    assert find_vosk_model("xx-ZZ", models_dir=tmp_path) == general


def test_a_configured_whisper_model_needs_its_model_bin(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=re.escape(f"{tmp_path} has no model.bin")):
        resolve_whisper_model(str(tmp_path))
    (tmp_path / "model.bin").write_bytes(b"\0")
    assert resolve_whisper_model(str(tmp_path)) == tmp_path


def test_a_configured_piper_voice_needs_its_sidecar(tmp_path: Path) -> None:
    voice = tmp_path / "xx_YY-test-medium.onnx"
    voice.write_bytes(b"\x08")
    with pytest.raises(ModelError, match="Piper voice config not found"):
        resolve_piper_voice(str(voice))
    voice.with_name(voice.name + ".json").write_text("{}")
    assert resolve_piper_voice(str(voice)) == voice
