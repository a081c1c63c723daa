#!/usr/bin/env python3
"""What a second language costs in memory and start-up: the bot's models for English only, and
for English and Russian, each loaded in a fresh process by the one ``Runtime`` every call uses.

.venv/bin/python scripts/bench-languages.py [--rounds 3]

For each set of scripts (prompts/*.yaml alone; and with prompts/ru/*.yaml) a child process
builds ``Runtime.open`` (recognizers, voices, the end-of-turn model, intents by meaning where a
menu uses it, the fixed prompts synthesized) and reports its RSS before and after, and the time
it took. Prints the median of ``--rounds`` children per set. Needs the Russian models installed
(make setup VOICEBOT_LANGUAGES=en,ru).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SETS = {"English only": ("en",), "English + Russian": ("en", "ru")}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


async def child(languages: list[str]) -> dict[str, float]:
    from voicebot.config import load_config
    from voicebot.dialog.library import ScriptLibrary
    from voicebot.runtime import Runtime

    before = rss_mb()
    config = load_config(None)
    library = ScriptLibrary(REPO / "prompts", "demo")
    scripts = {
        name: script for name, script in library.scripts.items()
        if script.language.split("-")[0] in languages
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as cache:
        from dataclasses import replace

        config = replace(config, tts=replace(config.tts, cache_dir=cache))
        started = time.monotonic()
        runtime = await Runtime.open(config, scripts, "demo")
        took = time.monotonic() - started
        after = rss_mb()
        await runtime.close()
    return {"before_mb": before, "after_mb": after, "start_s": took, "scripts": len(scripts)}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(asyncio.run(child(args.child.split(",")))))
        return 0
    print(f"{'scripts':20} {'n':>3} {'RSS MB':>8} {'models MB':>10} {'start s':>8}   (median of "
          f"{args.rounds} fresh processes)")  # fmt: skip
    for label, languages in SETS.items():
        runs = []
        for _ in range(args.rounds):
            done = subprocess.run(
                [sys.executable, __file__, "--child", ",".join(languages)],
                capture_output=True, text=True, check=False, cwd=REPO,
            )  # fmt: skip
            if done.returncode != 0:
                print(done.stderr[-2000:], file=sys.stderr)
                return 1
            runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
        after = statistics.median(r["after_mb"] for r in runs)
        grown = statistics.median(r["after_mb"] - r["before_mb"] for r in runs)
        start = statistics.median(r["start_s"] for r in runs)
        print(f"{label:20} {int(runs[0]['scripts']):>3} {after:>8.0f} {grown:>10.0f} {start:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
