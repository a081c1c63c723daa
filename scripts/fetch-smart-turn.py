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
import os
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
PROG = "fetch-smart-turn"
__all__ = ["FetchError", "sha256_of", "verify_sha256"]


def install(dest: Path, wheel: Path | None = None) -> str:
    """Put the verified model at ``dest``; returns a one-line summary of what was done."""
    if dest.is_file():
        if sha256_of(dest) == MODEL_SHA256:
            return f"{PROG}: {shown(dest)} is already installed (sha256 ok)"
        print(f"{PROG}: {shown(dest)} has the wrong sha256, replacing it", file=sys.stderr)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Everything is staged next to dest so that the final rename is atomic.
    with tempfile.TemporaryDirectory(prefix=".fetch-smart-turn-", dir=dest.parent) as tmp:
        pinned = PinnedWheel("pipecat-ai", PIPECAT_VERSION, WHEEL_URL, WHEEL_SHA256)
        source = WHEEL_URL if wheel is None else str(wheel)
        wheel = fetch_wheel(pinned, Path(tmp), wheel)
        part = Path(tmp) / (dest.name + ".part")
        with part.open("wb") as out:
            extract_member(wheel, INNER_PATH, out)
        verify_sha256(part, MODEL_SHA256, INNER_PATH)
        os.replace(part, dest)
    return (
        f"{PROG}: installed {shown(dest)} ({MODEL_SIZE:,} bytes, sha256 {MODEL_SHA256[:12]}…) "
        f"from {INNER_PATH} in {source}; license {LICENSE}"
    )


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
