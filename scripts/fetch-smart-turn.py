#!/usr/bin/env python3
"""Install the Smart Turn v3.2 CPU model into models/smart-turn/ (idempotent).

.venv/bin/python scripts/fetch-smart-turn.py [--dest FILE] [--wheel FILE]

Smart Turn (Daily, BSD-2-Clause) publishes its ONNX weights inside the pipecat-ai wheel on PyPI,
so this downloads that one pinned wheel, checks its SHA-256, extracts only the model file,
checks that too, and renames it into place: an interrupted or tampered download never leaves
a model behind. When the right file is already installed it does nothing. ``--wheel`` uses a
wheel downloaded before (an offline machine); it is checked the same way.

The download goes through the proxy in PIP_PROXY if set, else the usual https_proxy/no_proxy
environment. Exit status: 0 installed or already there, 1 on any failure.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import IO

PIPECAT_VERSION = "1.14.0"
WHEEL_URL = (
    "https://files.pythonhosted.org/packages/38/31/"
    "29c72ca8d3a16b59fd12580fcb99a7cef641d9ee07fe7b0321c1b65ca3cf/"
    f"pipecat_ai-{PIPECAT_VERSION}-py3-none-any.whl"
)
WHEEL_SIZE = 12_109_725
WHEEL_SHA256 = "0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44"
INNER_PATH = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
MODEL_SIZE = 8_679_182
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
LICENSE = "BSD-2-Clause, Daily (github.com/pipecat-ai/smart-turn)"

REPO = Path(__file__).resolve().parents[1]
DEST = REPO / "models" / "smart-turn" / "smart-turn-v3.2-cpu.onnx"
TIMEOUT_S = 60.0  # per socket operation (connect, each read), not for the whole download
CHUNK = 1 << 16
PROG = "fetch-smart-turn"


class FetchError(Exception):
    """Download, checksum or install failure; ``str()`` is one line for the user."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, what: str) -> None:
    """A ``FetchError`` naming both digests unless ``path`` hashes to ``expected``."""
    got = sha256_of(path)
    if got != expected:
        raise FetchError(f"{what} checksum mismatch: expected sha256 {expected}, got {got}")


def _opener() -> urllib.request.OpenerDirector:
    proxy = os.environ.get("PIP_PROXY", "").strip()
    if proxy:
        if "://" not in proxy:  # pip accepts "host:port"
            proxy = "http://" + proxy
        return urllib.request.build_opener(
            urllib.request.ProxyHandler({"http": proxy, "https": proxy})
        )
    return urllib.request.build_opener()  # honours https_proxy / no_proxy


def download(url: str, out: IO[bytes]) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "voicebot-fetch-smart-turn"})
    try:
        with _opener().open(request, timeout=TIMEOUT_S) as response:
            shutil.copyfileobj(response, out, CHUNK)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise FetchError(f"cannot download {url}: {exc.reason}") from exc
    except OSError as exc:  # timeouts, resets mid-transfer, disk full
        raise FetchError(f"cannot download {url}: {exc}") from exc


def extract_member(wheel: Path, member: str, out: IO[bytes]) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
            shutil.copyfileobj(source, out, CHUNK)
    except KeyError:
        raise FetchError(f"{wheel} has no {member}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"cannot read {wheel}: {exc}") from exc


def install(dest: Path, wheel: Path | None = None) -> str:
    """Put the verified model at ``dest``; returns a one-line summary of what was done."""
    if dest.is_file():
        if sha256_of(dest) == MODEL_SHA256:
            return f"{PROG}: {_shown(dest)} is already installed (sha256 ok)"
        print(f"{PROG}: {_shown(dest)} has the wrong sha256, replacing it", file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Everything is staged next to dest so that the final rename is atomic.
    with tempfile.TemporaryDirectory(prefix=".fetch-smart-turn-", dir=dest.parent) as tmp:
        if wheel is None:
            wheel = Path(tmp) / WHEEL_URL.rsplit("/", 1)[1]
            with wheel.open("wb") as out:
                download(WHEEL_URL, out)
            source = WHEEL_URL
        else:
            source = str(wheel)
        verify_sha256(wheel, WHEEL_SHA256, f"pipecat-ai {PIPECAT_VERSION} wheel")
        part = Path(tmp) / (dest.name + ".part")
        with part.open("wb") as out:
            extract_member(wheel, INNER_PATH, out)
        verify_sha256(part, MODEL_SHA256, INNER_PATH)
        os.replace(part, dest)
    return (
        f"{PROG}: installed {_shown(dest)} ({MODEL_SIZE:,} bytes, sha256 {MODEL_SHA256[:12]}…) "
        f"from {INNER_PATH} in {source}; license {LICENSE}"
    )


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEST, help="where the .onnx goes")
    parser.add_argument("--wheel", type=Path, help="use this pipecat-ai wheel, no download")
    args = parser.parse_args(argv)
    try:
        print(install(args.dest, args.wheel))
    except (FetchError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
