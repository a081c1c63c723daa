"""Download, verify and install a catalogue model under ``models/`` (``voicebot models fetch``).

A fetch never leaves anything half-installed: files are downloaded into a temporary directory
inside ``models/`` (``.fetch-*``, as ``*.part``), checked, unpacked there, and only then renamed
into place. A file's SHA-256 is verified when a trustworthy published value is known; otherwise
the download is checked by its length (against Content-Length) and its structure only, and the
notes say so.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO
from urllib.parse import urlsplit

import aiohttp

from ..errors import VoicebotError
from ..speech.discovery import is_vosk_model_dir
from .catalogue import ModelEntry, megabytes, source_url

MARKER = ".voicebot-model"  # in models/<lang>/vosk/: the catalogue name of the installed model


class FetchError(VoicebotError):
    """A model could not be downloaded, verified or installed; ``str()`` is one line."""


# ---------------------------------------------------------------------------------- progress


class Progress:
    """Download progress on a stream: ``\\r``-updated on a terminal, a line per 10 % otherwise."""

    def __init__(
        self,
        label: str,
        total: int | None,
        stream: IO[str],
        tty: bool,
    ) -> None:
        self.label = label
        self.total = total if total and total > 0 else None
        self.stream = stream
        self.tty = tty
        self.started = time.monotonic()
        self.last_draw = 0.0
        self.next_step = 10  # non-TTY: the next percentage that gets a line
        self.done = 0

    def _line(self, done: int) -> str:
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = f"{megabytes(done / elapsed)}/s"
        if self.total is None:
            return f"{self.label}: {megabytes(done)}  {rate}"
        percent = min(100, done * 100 // self.total)
        return f"{self.label}: {megabytes(done)} / {megabytes(self.total)}  {percent:3d}%  {rate}"

    def update(self, done: int) -> None:
        self.done = done
        if self.tty:
            now = time.monotonic()
            if now - self.last_draw >= 0.1:
                self.last_draw = now
                self.stream.write("\r" + self._line(done) + "\033[K")
                self.stream.flush()
            return
        if self.total is None:
            return
        percent = done * 100 // self.total
        if percent >= self.next_step and done < self.total:
            self.stream.write(self._line(done) + "\n")
            self.stream.flush()
            self.next_step = (percent // 10 + 1) * 10

    def abort(self) -> None:
        """End a terminal's in-place line, so that an error message starts on its own."""
        if self.tty and self.last_draw:
            self.stream.write("\n")
            self.stream.flush()

    def finish(self) -> None:
        """The download is complete: its size is now the total (which may have been a guess)."""
        if self.done:
            self.total = self.done
        if self.tty:
            self.stream.write("\r" + self._line(self.done) + "\033[K\n")
        else:
            self.stream.write(self._line(self.done) + "\n")
        self.stream.flush()


# ---------------------------------------------------------------------------------- download


def _open_part(path: Path) -> IO[bytes]:
    return path.open("wb")


def _describe(exc: BaseException) -> str:
    """A short reason for a failed download."""
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} {exc.message}".strip()
    if isinstance(exc, aiohttp.ClientConnectorError):
        error = exc.os_error
        if isinstance(error, socket.gaierror) or not error.errno:  # DNS: its own message
            reason = error.strerror or str(error) or str(exc)
        else:  # asyncio words a refusal "Connect call failed (...)"; the errno says it better
            reason = os.strerror(error.errno)
        return f"no network ({reason})"
    if isinstance(exc, TimeoutError):
        return "no network (timed out)"
    if isinstance(exc, aiohttp.ClientPayloadError):
        return f"the connection broke off mid-download ({exc})"
    if isinstance(exc, aiohttp.ClientError):
        return f"network error ({exc.__class__.__name__}: {exc})"
    return str(exc)


@dataclass
class Downloaded:
    path: Path
    size: int
    sha256: str


async def _download(
    session: aiohttp.ClientSession,
    url: str,
    dest: Path,
    expected_size: int,
    progress_stream: IO[str],
    tty: bool,
) -> Downloaded:
    async with session.get(url) as response:
        if response.status >= 400:
            raise aiohttp.ClientResponseError(
                response.request_info,
                response.history,
                status=response.status,
                message=response.reason or "",
            )
        length = response.content_length
        label = dest.name.removesuffix(".part")
        progress = Progress(label, length or expected_size, progress_stream, tty)
        digest = hashlib.sha256()
        done = 0
        sink = _open_part(dest)
        try:
            async for chunk in response.content.iter_chunked(1 << 16):
                sink.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                progress.update(done)
            if length is not None and done != length:
                raise FetchError(f"the connection broke off after {done} of {length} bytes")
        except BaseException:
            progress.abort()
            raise
        finally:
            sink.close()
        progress.finish()
    return Downloaded(dest, done, digest.hexdigest())


class _Failed(Exception):
    """A download failed: which URL, and why (one line)."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(reason)
        self.url = url
        self.reason = reason


async def _download_all(
    jobs: Sequence[tuple[str, Path, int]], progress_stream: IO[str], tty: bool
) -> list[Downloaded]:
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=20, sock_read=60)
    headers = {"User-Agent": "voicebot-models/1"}
    done: list[Downloaded] = []
    async with aiohttp.ClientSession(timeout=timeout, headers=headers) as session:
        for url, dest, size in jobs:
            try:
                done.append(await _download(session, url, dest, size, progress_stream, tty))
            except (TimeoutError, aiohttp.ClientError) as exc:
                raise _Failed(url, _describe(exc)) from None
            except FetchError as exc:
                raise _Failed(url, str(exc)) from None
            except OSError as exc:
                raise FetchError(f"cannot write {dest}: {exc}") from None
    return done


# ---------------------------------------------------------------------------------- install


def looks_like_vosk(directory: Path) -> bool:
    """A Vosk model directory, by the same test the runtime's discovery uses."""
    return is_vosk_model_dir(directory)


def _extract_vosk(archive: Path, destination: Path) -> None:
    """Unzip ``archive`` into ``destination``, dropping the zip's single top folder."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [m for m in zf.infolist() if m.filename.strip("/")]
            paths = [PurePosixPath(m.filename) for m in members]
            for path in paths:
                if path.is_absolute() or ".." in path.parts or "\\" in str(path):
                    raise FetchError(f"{archive.name}: unsafe path in zip: {path}")
            tops = {p.parts[0] for p in paths}
            strip = len(tops) == 1 and any(len(p.parts) > 1 for p in paths)
            destination.mkdir(parents=True)
            for member, path in zip(members, paths, strict=True):
                parts = path.parts[1:] if strip else path.parts
                if not parts:
                    continue
                out = destination.joinpath(*parts)
                if member.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(member) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
    except (zipfile.BadZipFile, zipfile.LargeZipFile) as exc:
        raise FetchError(f"{archive.name}: not a valid zip archive ({exc})") from None
    if not looks_like_vosk(destination):
        raise FetchError(
            f"{archive.name}: does not contain a Vosk model (no am/ with conf/ or graph/)"
        )


def _check_piper(onnx: Path, sidecar: Path) -> None:
    with onnx.open("rb") as f:
        head = f.read(1)
    # An ONNX file is a protobuf ModelProto; its first field, ir_version (1, varint), is 0x08.
    if head != b"\x08":
        raise FetchError(f"{onnx.name}: not an ONNX model")
    try:
        config = json.loads(sidecar.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FetchError(f"{sidecar.name}: not valid JSON ({exc})") from None
    if not isinstance(config, dict) or not isinstance(config.get("audio"), dict):
        raise FetchError(f"{sidecar.name}: not a Piper voice config (no 'audio' section)")


def installed_vosk_name(directory: Path) -> str | None:
    """The catalogue name recorded by ``fetch`` in a Vosk directory, if any."""
    try:
        return (directory / MARKER).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


@dataclass
class FetchResult:
    entry: ModelEntry
    path: Path
    already_installed: bool = False
    notes: list[str] = field(default_factory=list)


def nothing_to_fetch(entry: ModelEntry, models_dir: Path) -> str | None:
    """Why nothing needs fetching, or None."""
    target = entry.target(models_dir)
    if entry.kind == "piper":
        sidecar = target.with_name(target.name + ".json")
        if target.is_file() and sidecar.is_file():
            return f"{entry.name} is already installed in {target.parent}/"
        return None
    if not target.is_dir() or not any(target.iterdir()):
        return None
    recorded = installed_vosk_name(target)
    if recorded == entry.name:
        return f"{entry.name} is already installed in {target}/"
    which = f"{recorded}" if recorded else "copied by hand"
    return f"{target}/ already holds a Vosk model ({which}); --force replaces it with {entry.name}"


def fetch_model(
    entry: ModelEntry,
    models_dir: Path,
    *,
    force: bool = False,
    mirror: str | None = None,
    progress_stream: IO[str] | None = None,
    tty: bool | None = None,
) -> FetchResult:
    """Download, verify and install ``entry`` under ``models_dir``. Raises :class:`FetchError`."""
    stream = sys.stderr if progress_stream is None else progress_stream
    if tty is None:
        tty = stream.isatty()
    target = entry.target(models_dir)
    if not force and (why := nothing_to_fetch(entry, models_dir)):
        return FetchResult(entry, target, already_installed=True, notes=[why])

    models_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".fetch-{entry.name}-", dir=models_dir))
    try:
        jobs = [(source_url(f, mirror), work / (f.filename + ".part"), f.size) for f in entry.files]
        try:
            downloads = asyncio.run(_download_all(jobs, stream, tty))
        except _Failed as exc:
            raise FetchError(
                f"cannot download {entry.name} from {urlsplit(exc.url).netloc}: {exc.reason}; "
                f"{entry.manual_hint(models_dir)}"
            ) from None
        notes = _verify(entry, downloads)
        if entry.kind == "vosk":
            _install_vosk(entry, downloads[0].path, work, target)
        else:
            _install_piper(entry, downloads, target)
        notes.append(f"installed {entry.name} in {target}")
        return FetchResult(entry, target, notes=notes)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _verify(entry: ModelEntry, downloads: Sequence[Downloaded]) -> list[str]:
    notes: list[str] = []
    for file, got in zip(entry.files, downloads, strict=True):
        if file.sha256 is None:
            if file is entry.files[0]:
                notes.append(
                    f"no published SHA-256 for {file.filename}: verified by size and structure "
                    f"only (its SHA-256 is {got.sha256})"
                )
            continue
        if got.sha256 != file.sha256.lower():
            got.path.unlink(missing_ok=True)
            raise FetchError(
                f"{entry.name}: SHA-256 mismatch for {file.filename}: expected {file.sha256}, "
                f"got {got.sha256}; the download was deleted"
            )
        notes.append(f"{file.filename}: SHA-256 verified")
    return notes


def _install_vosk(entry: ModelEntry, archive: Path, work: Path, target: Path) -> None:
    staged = work / "model"
    _extract_vosk(archive, staged)
    archive.unlink()
    (staged / MARKER).write_text(entry.name + "\n", encoding="utf-8")
    target.parent.mkdir(parents=True, exist_ok=True)
    old = work / "previous"
    if target.exists():
        os.replace(target, old)  # removed with ``work``
    try:
        os.replace(staged, target)
    except OSError:
        if old.exists():
            os.replace(old, target)
        raise


def _install_piper(entry: ModelEntry, downloads: Sequence[Downloaded], target: Path) -> None:
    onnx, sidecar = downloads[0].path, downloads[1].path
    _check_piper(onnx, sidecar)
    target.parent.mkdir(parents=True, exist_ok=True)
    target_sidecar = target.with_name(target.name + ".json")
    # The sidecar first: discovery keys on the .onnx, which must never be there without it.
    os.replace(sidecar, target_sidecar)
    try:
        os.replace(onnx, target)
    except OSError:
        target_sidecar.unlink(missing_ok=True)
        raise
