"""Absolute paths outside the repo that code, scripts and tests name, and who provides them.

A test or a tool that reads ``/usr/share/...`` works only where some step installed it. This
finds every such path in the repo's text and asks dpkg which package owns it: the package must
be one that ``scripts/install-system-deps.sh`` installs, or one every Debian has (Essential).
Otherwise the next machine without that file fails, as the suite once did on a missing
``/usr/share/asterisk/sounds/en`` link that nothing created.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "scripts" / "install-system-deps.sh"
SCANNED = ("voicebot", "tests", "scripts", "Makefile", ".ci", "pyproject.toml", "voicebot.toml")
SKIPPED_DIRS = {"fixtures", "__pycache__", "broken_scripts"}
# The check and its tests name paths as examples.
SKIPPED_FILES = {"tests/support/system_paths.py", "tests/unit/test_system_paths.py"}
TEXT_SUFFIXES = {"", ".py", ".sh", ".toml", ".cfg", ".ini", ".txt", ".md"}

# Roots that hold installed files. /proc, /sys, /dev, /tmp and /run are the kernel's or
# scratch space, present on every machine.
_PATH = re.compile(
    r"(?:^|(?<=[\s\"'=(\[,:!<]))"
    r"(/(?:usr|etc|opt|var|srv|lib|lib32|lib64|bin|sbin|home|root|mnt|media|boot)"
    r"(?:/[A-Za-z0-9_.+@%-]+)*)"
)

# Paths that name no installed file on purpose: (file relative to the repo, path) → why.
NOT_HOST_FILES: dict[tuple[str, str], str] = {
    ("scripts/asterisk-sandbox.sh", "/usr/sbin/asterisk"): "inside the chroot (its PACKAGES)",
    ("scripts/asterisk-sandbox.sh", "/var/lib/asterisk"): "inside the chroot",
    ("scripts/asterisk-sandbox.sh", "/var/spool/asterisk"): "inside the chroot",
    ("scripts/asterisk-sandbox.sh", "/var/log/asterisk"): "inside the chroot",
    ("scripts/asterisk-sandbox.sh", "/var/run/asterisk"): "inside the chroot",
    ("scripts/asterisk-sandbox.sh", "/etc/asterisk"): "inside the chroot",
    ("scripts/asterisk-sandbox.sh", "/etc/hosts"): "copied if present (cp ... || true)",
    ("scripts/asterisk-sandbox.sh", "/etc/resolv.conf"): "copied if present (cp ... || true)",
    ("tests/unit/call/test_recording.py", "/var/rec"): "a configuration value, never opened",
    ("voicebot/dialog/calendars.py", "/etc/passwd"): "a bad time zone key a comment names",
    ("tests/unit/dialog/test_calendars.py", "/etc/passwd"): "a bad time zone key, refused",
    ("tests/unit/dialog/test_calendars.py", "/usr/share/zoneinfo"): "the path a test hides",
}


@dataclass(frozen=True)
class NamedPath:
    file: str  # relative to the repo
    line: int
    path: str


def scanned_files(root: Path = REPO) -> Iterator[Path]:
    for name in SCANNED:
        top = root / name
        if top.is_file():
            yield top
        elif top.is_dir():
            for path in sorted(top.rglob("*")):
                relative = path.relative_to(root).parts
                if SKIPPED_DIRS.intersection(relative) or not path.is_file():
                    continue
                if "/".join(relative) in SKIPPED_FILES:
                    continue
                if path.suffix in TEXT_SUFFIXES:
                    yield path


def named_paths(files: Iterable[Path], root: Path = REPO) -> Iterator[NamedPath]:
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        relative = file.relative_to(root).as_posix() if file.is_relative_to(root) else str(file)
        for number, line in enumerate(text.splitlines(), start=1):
            for match in _PATH.finditer(line):
                yield NamedPath(relative, number, match.group(1).rstrip("."))


def listed_packages(script: Path = INSTALL_SCRIPT) -> frozenset[str]:
    """The PACKAGES=(...) array of install-system-deps.sh."""
    found = re.search(r"^PACKAGES=\(([^)]*)\)", script.read_text(), re.MULTILINE)
    if found is None:
        raise ValueError(f"{script}: no PACKAGES=(...) line")
    return frozenset(found.group(1).split())


@cache
def owners(path: str) -> tuple[str, ...]:
    """Debian packages that own ``path`` (``dpkg-query -S``); empty when none does."""
    if shutil.which("dpkg-query") is None:
        raise RuntimeError("dpkg-query not found: the path check needs Debian's dpkg")
    done = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True)
    packages: set[str] = set()
    for line in done.stdout.splitlines():
        names, _, owned = line.partition(": ")
        if owned.strip() == path:
            packages.update(n.strip().split(":")[0] for n in names.split(","))
    return tuple(sorted(packages))


@cache
def is_essential(package: str) -> bool:
    done = subprocess.run(
        ["dpkg-query", "-W", "-f=${Essential}", package], capture_output=True, text=True
    )
    return done.stdout.strip() == "yes"


def problems(found: Iterable[NamedPath], packages: frozenset[str]) -> list[str]:
    """One line per path that no listed or Essential package provides."""
    lines = []
    for named in found:
        if (named.file, named.path) in NOT_HOST_FILES:
            continue
        owned_by = owners(named.path)
        if any(p in packages or is_essential(p) for p in owned_by):
            continue
        why = (
            f"provided by {', '.join(owned_by)}, which install-system-deps.sh does not install"
            if owned_by
            else "no Debian package provides it"
        )
        lines.append(f"{named.file}:{named.line}: {named.path}: {why}")
    return lines
