#!/usr/bin/env python3
"""Measure barge-in on real calls: how long the bot keeps talking once the caller talks over it.

Needs the sandbox Asterisk and a running bot (`make run` in another terminal). Each round calls
extension 100, talks over the greeting at a different moment with Allison's "hours", and
measures at the caller, from the wire: caller's voice onset → last voiced bot packet.

.venv/bin/python scripts/bench-bargein.py --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from voicebot.errors import VoicebotError
from voicebot.tools.callprobe import barge_in_stop_ms
from voicebot.tools.sip import Hangup, Pause, Play, place_call, read_wav_8k
from voicebot.tools.sounds import allison_prompt


async def run(rounds: int, extension: str) -> list[float]:
    pcm = read_wav_8k(allison_prompt("hours"))
    results: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-bargein-") as workdir:
        for index in range(rounds):
            talk_at = 1.0 + 0.37 * index % 3.0  # spread over the greeting
            result = await place_call(
                extension=extension, workdir=Path(workdir) / str(index), timeout_s=60,
                steps=[Pause(talk_at), Play(pcm), Pause(3.0), Hangup()],
            )  # fmt: skip
            stop = barge_in_stop_ms(result, 0, pcm)
            print(
                f"round {index + 1}: talked over at {talk_at:.2f} s → bot stopped after "
                f"{stop:.0f} ms"
                if stop is not None
                else f"round {index + 1}: no measurement"
            )
            if stop is not None:
                results.append(stop)
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--extension", default="100")
    args = parser.parse_args()
    try:
        stops = asyncio.run(run(args.rounds, args.extension))
    except VoicebotError as exc:
        print(f"bench-bargein: failed: {exc}", file=sys.stderr)
        return 1
    if not stops:
        print("bench-bargein: no round could be measured", file=sys.stderr)
        return 1
    values = np.asarray(stops)
    print(
        f"\nbarge-in stop time over {len(values)} real calls (caller voice onset → last voiced "
        f"bot packet, at the caller): p50 {np.median(values):.0f} ms, "
        f"p95 {np.percentile(values, 95):.0f} ms, max {values.max():.0f} ms; "
        f"within 250 ms: {np.mean(values <= 250):.0%}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
