"""Downloading, verifying and installing a model (``voicebot models fetch``): from an in-process
HTTP server standing in for alphacephei.com and huggingface.co (through the mirror setting),
into temporary directories."""

from __future__ import annotations

import hashlib
import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.modelhost import (
    FAKE_ONNX,
    FAKE_SIDECAR,
    FakeHost,
    leftovers,
    serving_files,
    vosk_zip,
)
from voicebot.cli import main
from voicebot.models.catalogue import MIRROR_ENV, ModelEntry, RemoteFile
from voicebot.models.commands import run_fetch
from voicebot.models.fetch import MARKER, FetchError, Progress, fetch_model

VOSK_EN = "vosk-model-small-en-us-0.15"
VOSK_DE = "vosk-model-small-de-0.15"


@pytest.fixture
def host() -> Iterator[FakeHost]:
    with serving_files() as fake:
        yield fake


def test_fetch_vosk_installs_flat_layout_with_progress(
    host: FakeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    host.files[f"{VOSK_EN}.zip"] = vosk_zip(VOSK_EN)
    monkeypatch.setenv(MIRROR_ENV, host.url)
    models = tmp_path / "models"

    assert main(["models", "fetch", VOSK_EN, "--models-dir", str(models)]) == 0

    target = models / "en" / "vosk"
    assert (target / "am" / "final.mdl").stat().st_size == 400_000
    assert (target / "conf" / "model.conf").is_file()
    assert (target / "graph" / "phones" / "word_boundary.int").is_file()
    assert not (target / VOSK_EN).exists()  # the zip's top folder is stripped
    assert (target / MARKER).read_text().strip() == VOSK_EN
    assert leftovers(models) == []
    out, err = capsys.readouterr()
    assert "verified by size and structure only" in out
    sha = hashlib.sha256(host.files[f"{VOSK_EN}.zip"]).hexdigest()
    assert sha in out
    assert f"installed {VOSK_EN} in {target}" in out
    # Not a terminal: one line per 10 %, each with bytes/total, percent and rate.
    lines = [line for line in err.splitlines() if line.startswith(f"{VOSK_EN}.zip:")]
    assert len(lines) >= 3
    assert all(" MB / " in line and "%" in line and "MB/s" in line for line in lines)
    assert lines[-1].split()[-3] == "100%"
    assert "\r" not in err


def test_second_fetch_says_already_installed_and_force_replaces(
    host: FakeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    host.files[f"{VOSK_EN}.zip"] = vosk_zip(VOSK_EN)
    monkeypatch.setenv(MIRROR_ENV, host.url)
    models = tmp_path / "models"
    assert main(["models", "fetch", VOSK_EN, "--models-dir", str(models)]) == 0
    capsys.readouterr()
    stale = models / "en" / "vosk" / "stale.txt"
    stale.write_text("from the old install")

    assert main(["models", "fetch", VOSK_EN, "--models-dir", str(models)]) == 0
    out, _ = capsys.readouterr()
    assert f"{VOSK_EN} is already installed in {models / 'en' / 'vosk'}/" in out
    assert len(host.requests) == 1
    assert stale.exists()

    assert main(["models", "fetch", VOSK_EN, "--models-dir", str(models), "--force"]) == 0
    assert len(host.requests) == 2
    assert not stale.exists()
    assert (models / "en" / "vosk" / "am" / "final.mdl").is_file()
    assert leftovers(models) == []


def test_a_hand_copied_model_is_not_overwritten_without_force(
    host: FakeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv(MIRROR_ENV, host.url)
    models = tmp_path / "models"
    (models / "en" / "vosk" / "am").mkdir(parents=True)
    assert main(["models", "fetch", VOSK_EN, "--models-dir", str(models)]) == 0
    out, _ = capsys.readouterr()
    assert "already holds a Vosk model (copied by hand); --force replaces it" in out
    assert host.requests == []


def test_piper_checksum_mismatch_fails_and_leaves_nothing(
    host: FakeHost, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    # The catalogue pins the real voice's SHA-256, which the fake file cannot match.
    host.files["en_US-lessac-medium.onnx"] = FAKE_ONNX
    host.files["en_US-lessac-medium.onnx.json"] = FAKE_SIDECAR
    monkeypatch.setenv(MIRROR_ENV, host.url)
    models = tmp_path / "models"

    assert main(["models", "fetch", "en_US-lessac-medium", "--models-dir", str(models)]) == 1

    _, err = capsys.readouterr()
    expected = "5efe09e69902187827af646e1a6e9d269dee769f9877d17b16b1b46eeaaf019f"
    actual = hashlib.sha256(FAKE_ONNX).hexdigest()
    assert (
        f"SHA-256 mismatch for en_US-lessac-medium.onnx: expected {expected}, got {actual}" in err
    )
    assert not (models / "en").exists()
    assert leftovers(models) == []


def test_fetch_piper_voice_into_language_dir(host: FakeHost, tmp_path: Path) -> None:
    entry = ModelEntry(
        "de_DE-test-medium",
        "piper",
        "de",
        (
            RemoteFile(
                "https://example.invalid/de_DE-test-medium.onnx",
                len(FAKE_ONNX),
                hashlib.sha256(FAKE_ONNX).hexdigest(),
            ),
            RemoteFile("https://example.invalid/de_DE-test-medium.onnx.json", 100),
        ),
    )
    host.files["de_DE-test-medium.onnx"] = FAKE_ONNX
    host.files["de_DE-test-medium.onnx.json"] = FAKE_SIDECAR
    host.redirect.add("de_DE-test-medium.onnx")
    models = tmp_path / "models"
    progress = io.StringIO()

    result = fetch_model(entry, models, mirror=host.url, progress_stream=progress, tty=True)

    voice = models / "de" / "piper" / "de_DE-test-medium.onnx"
    assert result.path == voice
    assert voice.read_bytes() == FAKE_ONNX
    assert voice.with_name(voice.name + ".json").read_bytes() == FAKE_SIDECAR
    assert "de_DE-test-medium.onnx: SHA-256 verified" in result.notes
    assert "/cdn/de_DE-test-medium.onnx" in host.requests  # the redirect was followed
    assert "\r" in progress.getvalue()  # a terminal gets one line rewritten in place
    assert leftovers(models) == []
    again = fetch_model(entry, models, mirror=host.url, progress_stream=progress)
    assert again.already_installed


def test_piper_download_that_is_not_onnx_is_rejected(host: FakeHost, tmp_path: Path) -> None:
    entry = ModelEntry(
        "fr_FR-test-medium",
        "piper",
        "fr",
        (
            RemoteFile("https://example.invalid/fr_FR-test-medium.onnx", 10),
            RemoteFile("https://example.invalid/fr_FR-test-medium.onnx.json", 10),
        ),
    )
    host.files["fr_FR-test-medium.onnx"] = b"<html>a login page</html>"
    host.files["fr_FR-test-medium.onnx.json"] = FAKE_SIDECAR
    models = tmp_path / "models"
    with pytest.raises(FetchError, match="not an ONNX model"):
        fetch_model(entry, models, mirror=host.url, progress_stream=io.StringIO())
    assert not (models / "fr").exists()
    assert leftovers(models) == []


@pytest.mark.parametrize("status, reason", [(404, "Not Found"), (500, "Internal Server Error")])
def test_http_error_is_one_clear_line(
    host: FakeHost,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    status: int,
    reason: str,
) -> None:
    host.status[f"{VOSK_DE}.zip"] = status
    monkeypatch.setenv(MIRROR_ENV, host.url)
    models = tmp_path / "models"

    assert main(["models", "fetch", VOSK_DE, "--models-dir", str(models)]) == 1

    _, err = capsys.readouterr()
    assert err.strip() == (
        f"voicebot models: cannot download {VOSK_DE} from 127.0.0.1:{host.port}: "
        f"HTTP {status} {reason}; copy the model into {models}/de/vosk/ by hand"
    )
    assert not (models / "de").exists()
    assert leftovers(models) == []


def test_refused_connection_says_no_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}")
    models = tmp_path / "models"

    assert main(["models", "fetch", VOSK_DE, "--models-dir", str(models)]) == 1

    _, err = capsys.readouterr()
    assert err.strip() == (
        f"voicebot models: cannot download {VOSK_DE} from 127.0.0.1:{port}: "
        f"no network (Connection refused); copy the model into {models}/de/vosk/ by hand"
    )
    assert leftovers(models) == []


def test_zip_without_a_vosk_model_is_rejected(
    host: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    host.files[f"{VOSK_DE}.zip"] = vosk_zip(VOSK_DE, with_am=False)
    models = tmp_path / "models"
    err = io.StringIO()
    assert run_fetch(VOSK_DE, models, mirror=host.url, err=err) == 1
    assert "does not contain a Vosk model" in err.getvalue()
    assert not (models / "de").exists()
    assert leftovers(models) == []


def test_zip_with_escaping_paths_is_rejected(host: FakeHost, tmp_path: Path) -> None:
    host.files[f"{VOSK_DE}.zip"] = vosk_zip(VOSK_DE, extra={"../../evil.txt": b"x"})
    models = tmp_path / "models"
    err = io.StringIO()
    assert run_fetch(VOSK_DE, models, mirror=host.url, err=err) == 1
    assert "unsafe path in zip" in err.getvalue()
    assert not list(tmp_path.rglob("evil.txt"))
    assert leftovers(models) == []


def test_not_a_zip_is_rejected(host: FakeHost, tmp_path: Path) -> None:
    host.files[f"{VOSK_DE}.zip"] = b"<html>Service Unavailable</html>"
    models = tmp_path / "models"
    err = io.StringIO()
    assert run_fetch(VOSK_DE, models, mirror=host.url, err=err) == 1
    assert "not a valid zip archive" in err.getvalue()
    assert leftovers(models) == []


def test_progress_without_a_terminal_prints_a_line_per_ten_percent() -> None:
    stream = io.StringIO()
    progress = Progress("model.zip", 1000, stream, tty=False)
    for done in range(0, 1001, 25):
        progress.update(done)
    progress.finish()
    percents = [line.split()[-3] for line in stream.getvalue().splitlines()]
    assert percents == [f"{p}%" for p in range(10, 101, 10)]


def test_progress_with_unknown_total_shows_bytes_and_rate() -> None:
    stream = io.StringIO()
    progress = Progress("voice.onnx.json", None, stream, tty=True)
    progress.update(5_000_000)
    assert stream.getvalue().startswith("\rvoice.onnx.json: 5.0 MB  ")
    assert "%" not in stream.getvalue()
    progress.finish()  # complete: what arrived is the total
    assert "5.0 MB / 5.0 MB  100%" in stream.getvalue()
    assert stream.getvalue().endswith("MB/s\033[K\n")
