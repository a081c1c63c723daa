"""The models ``voicebot models fetch`` can install: names, sources, sizes, checksums, languages.

Data and pure lookups only; downloading is ``fetch``'s business. The default models come from
PyPI packages; this catalogue lists the others (Vosk recognizers and Piper voices for more
languages) with where each one goes under ``models/``, in the layout the model discovery
(``speech.discovery``) expects::

    models/<lang>/vosk/            the Vosk model's files directly (am/, conf/, graph/, ...)
    models/<lang>/piper/<voice>.onnx   and <voice>.onnx.json beside it
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal
from urllib.parse import urlsplit

Kind = Literal["vosk", "piper"]

# A mirror serves every catalogue file by its name at its root (see ``source_url``).
MIRROR_ENV = "VOICEBOT_MODELS_MIRROR"


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


def first_of_kind(
    kind: Kind, language: str, catalogue: Sequence[ModelEntry] = CATALOGUE
) -> ModelEntry | None:
    """The catalogue's model of ``kind`` for a primary language subtag, if it has one."""
    return next((e for e in catalogue if e.kind == kind and e.language == language), None)


def source_url(file: RemoteFile, mirror: str | None) -> str:
    """The URL to download ``file`` from: a mirror serves every file by its name at its root."""
    if not mirror:
        return file.url
    return f"{mirror.rstrip('/')}/{file.filename}"


def megabytes(n: float) -> str:
    """A size or rate as ``models list`` and the download progress show it."""
    return f"{n / 1e6:.1f} MB"
