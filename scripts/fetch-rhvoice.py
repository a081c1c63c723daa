#!/usr/bin/env python3
"""Install RHVoice (Russian, LGPL voices only) into .state/rhvoice/root/ (idempotent).

.venv/bin/python scripts/fetch-rhvoice.py [--state DIR] [--debs DIR] [--check] [--keep-downloads]

RHVoice's libraries and Russian data come from Debian bookworm (``non-free`` for RHVoice,
``main`` for libsonic) as pinned .deb files. They are fetched by apt-get with a private
configuration under ``.state/rhvoice/apt/`` (its own sources.list, lists, cache and an empty
dpkg status; the system's apt sources, lists and hooks are not touched, its network settings
such as proxies are kept), checked against the sha256 pinned below, unpacked with
``dpkg-deb -x`` into a staging directory, and the Russian voices other than Aleksandr, Anna,
Elena and Irina are deleted (they are licensed for non-commercial use only). A manifest
(``voicebot-rhvoice.json``: packages, versions, sha256, voices, the files and their sha256)
is written last and the directory renamed into place, so an interrupted run leaves nothing
half-installed. When the pinned install is already there it only says so.

``--check`` verifies an install (every file against its sha256, no other voice present).
``--debs DIR`` uses .deb files downloaded before (an offline machine); they are checked the
same way. The downloads are deleted after a successful install unless ``--keep-downloads``.
Exit status: 0 installed, already there or checked; 1 on any failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from voicebot.models.fetch import FetchError
from voicebot.models.wheels import sha256_of
from voicebot.speech.tts.rhvoice import DATA_DIR, LGPL_VOICES, MANIFEST_NAME

REPO = Path(__file__).resolve().parents[1]
STATE = REPO / ".state" / "rhvoice"
PROG = "fetch-rhvoice"
MIRROR = "http://deb.debian.org/debian"
SUITE = "bookworm"
COMPONENTS = "main non-free"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
ARCHITECTURE = "amd64"
MANIFEST_FORMAT = 1


@dataclass(frozen=True)
class Deb:
    name: str
    version: str
    architecture: str
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        # apt-get download's name for it (no epochs here, so no %3a to escape).
        return f"{self.name}_{self.version}_{self.architecture}.deb"


# What the C API needs, nothing more: RHVoice's own `rhvoice` package is only its command-line
# tools and D-Bus service, librhvoice-audio2 plays to sound cards, and the English data is
# optional (Russian voices read Latin letters without it). libsonic0 is a dependency of the
# core library; it is unpacked too so that a machine without it still works.
DEBS = (
    Deb(
        "libsonic0", "0.2.0-12", "amd64", 11_024,
        "9d60de6918ace0b10e3e4e95421befd08aaf03b5b2a3d71ceb799e0cf259916f",
    ),
    Deb(
        "librhvoice-core7", "1.8.0+dfsg-3", "amd64", 511_400,
        "7b321d21caf899c78e579593f105fd49995f4d0c948c0523b2b4baa3291375f5",
    ),
    Deb(
        "librhvoice5", "1.8.0+dfsg-3", "amd64", 91_844,
        "7a12f124a48941ec0e94aeaa60da44a27c164a31d5a6bb884875e533a6d15128",
    ),
    Deb(
        "rhvoice-russian", "1.8.0+dfsg-3", "all", 106_057_580,
        "1892955b9d779abb67963842f124fb2192810e7bb9976ad3a4cbdea7a99ac838",
    ),
)  # fmt: skip
RHVOICE_VERSION = "1.8.0+dfsg-3"
LICENSES = {
    "libRHVoice, libRHVoice_core, Russian language data": (
        "LGPL-2.1+ (Olga Yakovleva; a few files LGPL-3+ or BSD: usr/share/doc/*/copyright)"
    ),
    "voices Aleksandr, Anna, Elena, Irina": "LGPL-2.1+ (data/* in Debian's copyright file)",
    "libsonic": "Apache-2.0 (Bill Cox)",
}
# Host apt settings that must not reach the private configuration: hooks run programs on
# the system, Dir:: entries are set below, and extra index targets (DEP-11, Contents)
# would only download more.
_DROPPED_SETTINGS = (
    "apt::update::",
    "dpkg::",
    "dir ",
    "dir::",
    "acquire::indextargets",
    "apt::sandbox",
)


# -- pure parts ----------------------------------------------------------------------------------


def voices_to_remove(voice_dirs: Iterable[str]) -> list[str]:
    """The voice directories to delete: every one but the LGPL voices' (an exact name:
    "aleksandr-hq" is another voice, CC BY-SA, and goes too)."""
    kept = {voice.lower() for voice in LGPL_VOICES}
    return sorted(name for name in voice_dirs if name not in kept)


def missing_voices(voice_dirs: Iterable[str]) -> list[str]:
    present = set(voice_dirs)
    return [voice for voice in LGPL_VOICES if voice.lower() not in present]


def verify_deb(path: Path, deb: Deb) -> None:
    """A ``FetchError`` naming the package and both digests unless ``path`` is the pinned
    file."""
    got = sha256_of(path)
    if got != deb.sha256:
        raise FetchError(
            f"{path.name}: sha256 mismatch: pinned {deb.sha256}, got {got}; refusing to install "
            f"{deb.name} {deb.version} (delete the file and run again; if it persists, the "
            f"mirror serves another build)"
        )


def pinned_packages(debs: Sequence[Deb] = DEBS) -> list[dict[str, object]]:
    return [asdict(deb) for deb in debs]


def manifest_problems(manifest: object, debs: Sequence[Deb] = DEBS) -> list[str]:
    """Why a manifest does not describe the pinned install (empty: it does)."""
    if not isinstance(manifest, dict):
        return ["the manifest is not a JSON object"]
    problems = []
    if manifest.get("format") != MANIFEST_FORMAT:
        problems.append(f"manifest format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}")
    if manifest.get("packages") != pinned_packages(debs):
        problems.append("installed packages differ from the pinned ones")
    if sorted(manifest.get("voices") or []) != sorted(LGPL_VOICES):
        problems.append(f"voices {manifest.get('voices')!r}, expected {list(LGPL_VOICES)}")
    if not isinstance(manifest.get("files"), dict) or not manifest["files"]:
        problems.append("the manifest lists no files")
    return problems


def apt_config(host_dump: str, apt_dir: Path, as_root: bool) -> str:
    """The private apt configuration: the host's network settings (``apt-config dump``
    lines), without its hooks, directories and extra index targets, then ours."""
    kept = [
        line
        for line in host_dump.splitlines()
        if line.strip() and not line.strip().lower().startswith(_DROPPED_SETTINGS)
    ]
    ours = {
        "Dir::Etc::main": apt_dir / "apt.conf.main",
        "Dir::Etc::parts": apt_dir / "apt.conf.d",
        "Dir::Etc::sourcelist": apt_dir / "sources.list",
        "Dir::Etc::sourceparts": "-",
        "Dir::Etc::preferences": apt_dir / "preferences",
        "Dir::Etc::preferencesparts": apt_dir / "preferences.d",
        "Dir::Etc::trustedparts": apt_dir / "trusted.gpg.d",
        "Dir::State": apt_dir / "state",
        "Dir::State::status": apt_dir / "status",
        "Dir::Cache": apt_dir / "cache",
        "Dir::Log": apt_dir / "log",
        "Acquire::Languages": "none",
        "APT::Update::Error-Mode": "any",  # a list that failed to download is an error
    }
    if as_root:
        # apt would otherwise try to write into our directories as the _apt user and fall
        # back to root with a warning.
        ours["APT::Sandbox::User"] = "root"
    return "\n".join([*kept, *(f'{key} "{value}";' for key, value in ours.items())]) + "\n"


def sources_list(mirror: str = MIRROR) -> str:
    return f"deb [signed-by={KEYRING}] {mirror} {SUITE} {COMPONENTS}\n"


def apt_error(output: str) -> str:
    """apt's own error lines, one line (a failed download, no network)."""
    lines = [line.strip() for line in output.splitlines() if line.startswith(("E:", "W:", "Err:"))]
    return " | ".join(lines[-4:]) if lines else (output.strip().splitlines() or ["no output"])[-1]


# -- apt -----------------------------------------------------------------------------------------


def _run(command: Sequence[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
         what: str) -> str:  # fmt: skip
    try:
        result = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise FetchError(
            f"{command[0]} not found: this script needs Debian's apt and dpkg"
        ) from None
    except OSError as exc:
        raise FetchError(f"cannot run {command[0]}: {exc}") from exc
    if result.returncode != 0:
        raise FetchError(
            f"{what} failed (exit {result.returncode}): {apt_error(result.stdout + result.stderr)}"
        )
    return result.stdout


def _private_apt(apt_dir: Path, mirror: str) -> dict[str, str]:
    """Write the private apt configuration; the environment that makes apt use it."""
    if not KEYRING.is_file():
        raise FetchError(f"{KEYRING} is missing (Debian's debian-archive-keyring package)")
    for sub in ("apt.conf.d", "preferences.d", "trusted.gpg.d", "state/lists/partial",
                "cache/archives/partial", "log"):  # fmt: skip
        (apt_dir / sub).mkdir(parents=True, exist_ok=True)
    (apt_dir / "apt.conf.main").touch()
    (apt_dir / "status").touch()  # no installed packages: nothing of the system's is consulted
    (apt_dir / "sources.list").write_text(sources_list(mirror))
    host = _run(["apt-config", "dump"], what="apt-config dump")
    config = apt_dir / "apt.conf"
    config.write_text(apt_config(host, apt_dir, os.geteuid() == 0))
    # APT_CONFIG is read before apt.conf.d, and points it at our empty one.
    return {**os.environ, "APT_CONFIG": str(config), "LC_ALL": "C"}


def download(debs: Sequence[Deb], target: Path, apt_dir: Path, mirror: str) -> None:
    env = _private_apt(apt_dir, mirror)
    print(f"{PROG}: apt-get update ({mirror} {SUITE} {COMPONENTS}, private config in "
          f"{_shown(apt_dir)})", flush=True)  # fmt: skip
    try:
        _run(["apt-get", "-q", "update"], env=env, what=f"apt-get update from {mirror}")
    except FetchError as exc:
        raise FetchError(
            f"{exc} (is {mirror} reachable? a proxy is taken from http_proxy or the system's "
            f"Acquire::http::Proxy; or copy the .deb files here and use --debs DIR)"
        ) from None
    total = sum(deb.size for deb in debs) / 1e6
    print(f"{PROG}: downloading {len(debs)} packages ({total:.1f} MB)", flush=True)
    target.mkdir(parents=True, exist_ok=True)
    specs = [f"{deb.name}={deb.version}" for deb in debs]
    _run(["apt-get", "-q", "download", *specs], cwd=target, env=env, what="apt-get download")


# -- install -------------------------------------------------------------------------------------


def _voice_dirs(root: Path) -> list[str]:
    voices = root / DATA_DIR / "voices"
    return sorted(p.name for p in voices.iterdir() if p.is_dir()) if voices.is_dir() else []


def _files(root: Path) -> dict[str, list[object]]:
    """Every regular file under ``root`` (symlinks named by their target) with size and
    sha256, for ``--check``."""
    files: dict[str, list[object]] = {}
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if relative == MANIFEST_NAME:
            continue
        if path.is_symlink():
            files[relative] = ["->", os.readlink(path)]
        elif path.is_file():
            files[relative] = [path.stat().st_size, sha256_of(path)]
    return files


def read_manifest(root: Path) -> dict[str, object] | None:
    try:
        manifest = json.loads((root / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def quick_problems(root: Path) -> list[str]:
    """Why ``root`` is not the pinned install, by the manifest and file sizes (no hashing)."""
    manifest = read_manifest(root)
    if manifest is None:
        return [f"no readable {MANIFEST_NAME} in {_shown(root)}"]
    problems = manifest_problems(manifest)
    if problems:
        return problems
    files = manifest["files"]
    assert isinstance(files, dict)
    for relative, (size, _digest) in files.items():
        path = root / relative
        if size == "->":
            if not path.is_symlink():
                problems.append(f"{relative} is missing")
        elif not path.is_file() or path.stat().st_size != size:
            problems.append(f"{relative} is missing or has another size")
    return problems


def full_problems(root: Path) -> list[str]:
    """``quick_problems`` plus every file's sha256 and no voice but the LGPL ones."""
    problems = quick_problems(root)
    if problems:
        return problems
    manifest = read_manifest(root)
    assert manifest is not None and isinstance(manifest["files"], dict)
    for relative, (size, digest) in manifest["files"].items():
        if size != "->" and sha256_of(root / relative) != digest:
            problems.append(f"{relative}: sha256 differs from the manifest")
    extra = voices_to_remove(_voice_dirs(root))
    if extra:
        problems.append(f"voices that must not be installed are present: {', '.join(extra)}")
    return problems


def unpack(debs: Sequence[Deb], source: Path, staging: Path, origin: str) -> list[str]:
    """Extract the verified packages into ``staging``, delete the voices that may not be used,
    write the manifest; returns the voices removed."""
    if shutil.which("dpkg-deb") is None:
        raise FetchError("dpkg-deb not found: this script needs Debian's dpkg")
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    for deb in debs:
        _run(["dpkg-deb", "-x", str(source / deb.filename), str(staging)],
             what=f"dpkg-deb -x {deb.filename}")  # fmt: skip
    voices = _voice_dirs(staging)
    absent = missing_voices(voices)
    if absent:
        raise FetchError(f"rhvoice-russian has no voice {', '.join(absent)}: not the pinned build")
    removed = voices_to_remove(voices)
    for name in removed:
        shutil.rmtree(staging / DATA_DIR / "voices" / name)
    manifest = {
        "format": MANIFEST_FORMAT,
        "rhvoice": RHVOICE_VERSION,
        "source": origin,
        "packages": pinned_packages(debs),
        "voices": list(LGPL_VOICES),
        "removed_voices": removed,
        "licenses": LICENSES,
        "installed": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": _files(staging),
    }
    (staging / MANIFEST_NAME).write_text(json.dumps(manifest, indent=1, ensure_ascii=False))
    return removed


def install(state: Path, debs_dir: Path | None, keep: bool, mirror: str) -> str:
    """Put the pinned install at ``state/root``; returns a one-line summary."""
    root = state / "root"
    if not quick_problems(root):
        return f"{PROG}: {_summary(root)} is already installed"
    arch = _run(["dpkg", "--print-architecture"], what="dpkg --print-architecture").strip()
    if arch != ARCHITECTURE:
        raise FetchError(f"only {ARCHITECTURE} packages are pinned; this machine is {arch}")
    source = debs_dir if debs_dir is not None else state / "debs"
    if debs_dir is None:
        needed = [d for d in DEBS if not _is_pinned_file(source / d.filename, d)]
        if needed:
            download(needed, source, state / "apt", mirror)
    for deb in DEBS:
        path = source / deb.filename
        if not path.is_file():
            raise FetchError(f"{path} is missing (apt-get download did not write it)")
        verify_deb(path, deb)
    print(f"{PROG}: sha256 verified for {', '.join(d.filename for d in DEBS)}", flush=True)
    staging = state / "root.new"
    origin = str(debs_dir) if debs_dir is not None else f"{mirror} {SUITE} {COMPONENTS}"
    removed = unpack(DEBS, source, staging, origin)
    old = state / "root.old"
    if old.exists():
        shutil.rmtree(old)
    if root.exists():
        os.replace(root, old)
    os.replace(staging, root)
    shutil.rmtree(old, ignore_errors=True)
    if debs_dir is None and not keep:
        shutil.rmtree(source, ignore_errors=True)
        shutil.rmtree(state / "apt", ignore_errors=True)
    return (
        f"{PROG}: installed {_summary(root)}; removed the non-LGPL voices "
        f"{', '.join(removed) or '(none)'}"
    )


def _is_pinned_file(path: Path, deb: Deb) -> bool:
    return path.is_file() and path.stat().st_size == deb.size and sha256_of(path) == deb.sha256


def _summary(root: Path) -> str:
    return (
        f"RHVoice {RHVOICE_VERSION} with voices {', '.join(LGPL_VOICES)} in {_shown(root)} "
        f"({sum(f.stat().st_size for f in root.rglob('*') if f.is_file()) / 1e6:.0f} MB)"
    )


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--state", type=Path, default=STATE, help="default: .state/rhvoice")
    parser.add_argument("--debs", type=Path, help="use the .deb files in this directory")
    parser.add_argument("--mirror", default=MIRROR, help=f"Debian mirror (default {MIRROR})")
    parser.add_argument("--check", action="store_true", help="verify the install, change nothing")
    parser.add_argument(
        "--keep-downloads", action="store_true", help="keep the .deb files and apt lists"
    )
    args = parser.parse_args(argv)
    root = args.state / "root"
    try:
        if args.check:
            problems = full_problems(root)
            if problems:
                print(f"{PROG}: {_shown(root)}: " + "; ".join(problems[:5]), file=sys.stderr)
                print(f"{PROG}: run scripts/fetch-rhvoice.py to reinstall", file=sys.stderr)
                return 1
            print(f"{PROG}: {_summary(root)}: every file matches its sha256")
            return 0
        print(install(args.state, args.debs, args.keep_downloads, args.mirror))
    except (FetchError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
