#!/usr/bin/env python3
"""Many callers at once, on real calls: what a burst does to voice-to-voice and to pacing.

Starts its own bot (ARI app voicebot-ops, extension 920, tests/fixtures/ops/patient.yaml) and
places real SIP calls through the sandbox Asterisk, one sipp process per call with its own
ports. Every caller waits for the menu, then says Allison's "hours". First one call alone, then
``--calls`` callers whose answers all start within ``--within`` seconds (``--spread`` places the
calls that far apart instead). For both it prints, at the callers' phones:

  voice to voice   the caller's last voiced frame → the bot's first voiced frame: p50 / p95
  routed           calls whose answer the bot understood ("hours")
  packet gaps      between consecutive packets of the bot's speech: p99 / max
  bot              CPU (cores busy, averaged over the burst) and peak RSS, per extra call

and the delay the load adds: p95 under load − p50 of the single call, same run.

    scripts/asterisk-sandbox.sh start
    .venv/bin/python scripts/bench-load.py [--calls 16] [--within 1.0 | --spread 0.3] [--singles 5]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from voicebot.callprobe import start_sandbox_bot  # noqa: E402
from voicebot.media.levels import speech_end_s  # noqa: E402
from voicebot.sipcaller import CallResult, Pause, Play, WaitForBye, place_call, read_wav_8k  # noqa: E402

HTTP_PORT = 18097
EXTENSION = "920"
MENU_S = 4.0  # "Which service? Say hours." lasts about 2 s
HOURS = REPO / "tests" / "fixtures" / "audio" / "hours.wav"


@dataclass
class Burst:
    voice_to_voice_ms: list[float]
    routed: int
    calls: int
    gaps_ms: list[float]
    pacer_late_ms: float  # the latest any of the bot's packets left its slot
    cpu_cores: float
    peak_rss_mb: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bot_get(path: str) -> dict[str, object]:
    with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}{path}", timeout=5) as response:
        return dict(json.loads(response.read()))


def start_bot(log: Path, max_active: int) -> subprocess.Popen[bytes]:
    overrides = {
        "VOICEBOT_ARI_APP": "voicebot-ops",
        "VOICEBOT_DIALOG_SCRIPTS_DIR": str(REPO / "tests" / "fixtures" / "ops"),
        "VOICEBOT_DIALOG_DEFAULT_SCRIPT": "patient",
        "VOICEBOT_MEDIA_PORT_MIN": "42400",
        "VOICEBOT_MEDIA_PORT_MAX": "42599",
        "VOICEBOT_CALLS_MAX_ACTIVE": str(max_active),
    }
    return start_sandbox_bot(REPO, overrides, log, HTTP_PORT, "bench-load")


def packet_gaps_ms(result: CallResult, after: float) -> list[float]:
    packets = [p for p in result.received_packets if p.arrival_time >= after]
    return [(b.arrival_time - a.arrival_time) * 1000 for a, b in itertools.pairwise(packets)
            if b.seq == (a.seq + 1) & 0xFFFF and not b.marker]  # fmt: skip


async def burst(
    count: int, offsets: list[float], pid: int, workdir: Path, *, stagger_calls: bool = False
) -> Burst:
    """``count`` calls placed together, call i answering ``offsets[i]`` after the others; or,
    with ``stagger_calls``, call i placed ``offsets[i]`` later (each answers after its menu)."""
    hours = read_wav_8k(HOURS)
    voice_end = speech_end_s(hours, 8000)
    before = time.time()
    cpu_before, wall_before = proc_cpu_s(pid), time.monotonic()
    peak = proc_rss_mb(pid)

    async def one(i: int) -> CallResult:
        if stagger_calls:
            await asyncio.sleep(offsets[i])
        wait = MENU_S if stagger_calls else MENU_S + offsets[i]
        return await place_call(
            extension=EXTENSION, workdir=workdir / str(i), timeout_s=90,
            steps=[Pause(wait), Play(hours), WaitForBye(timeout_s=30)],
        )  # fmt: skip

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    while not all(t.done() for t in tasks):
        peak = max(peak, proc_rss_mb(pid))
        await asyncio.sleep(0.2)
    cpu = (proc_cpu_s(pid) - cpu_before) / (time.monotonic() - wall_before)
    results = [t.result() for t in tasks]
    v2v: list[float] = []
    gaps: list[float] = []
    for result in results:
        sent = result.sent_start_time[0] if result.sent_start_time else None
        if sent is None:
            continue
        ended = sent + voice_end
        answered = result.first_voiced_after(ended)
        if answered is not None:
            v2v.append((answered - ended) * 1000)
            gaps += packet_gaps_ms(result, answered)
    await asyncio.sleep(1.0)
    recent = [
        c
        for c in bot_get("/calls")["recent"]  # type: ignore[union-attr]
        if float(c.get("started", 0)) >= before - 0.5
    ]  # type: ignore[union-attr]
    routed = sum(
        1 for c in recent
        if [line.get("intent") for line in c["transcript"] if line["who"] == "caller"] == ["hours"]
    )  # fmt: skip
    late = max((float(c.get("pacer", {}).get("max_late_ms", 0.0)) for c in recent), default=0.0)
    return Burst(v2v, routed, count, gaps, late, cpu, peak)


def describe(name: str, b: Burst) -> str:
    v = b.voice_to_voice_ms
    gaps = (
        f"p99 {percentile(b.gaps_ms, 0.99):.1f} / max {max(b.gaps_ms):.1f} ms" if b.gaps_ms else "-"
    )
    timing = f"p50 {statistics.median(v):.0f} / p95 {percentile(v, 0.95):.0f} ms" if v else "-"
    return (
        f"{name}: voice to voice {timing} (n {len(v)}); routed {b.routed}/{b.calls}; "
        f"packet gaps {gaps} (the bot's pacer at most {b.pacer_late_ms:.1f} ms late); "
        f"bot {b.cpu_cores:.2f} cores, peak RSS {b.peak_rss_mb:.0f} MB"
    )


async def run(calls: int, within: float, spread: float | None, workdir: Path, pid: int,
              singles: int) -> None:  # fmt: skip
    alone = [await burst(1, [0.0], pid, workdir / f"single{i}") for i in range(singles)]
    single = Burst(
        [v for b in alone for v in b.voice_to_voice_ms], sum(b.routed for b in alone),
        singles, [g for b in alone for g in b.gaps_ms], max(b.pacer_late_ms for b in alone),
        max(b.cpu_cores for b in alone),
        max(b.peak_rss_mb for b in alone),
    )  # fmt: skip
    print(describe(f"1 call at a time ({singles} calls)", single), flush=True)
    if spread is not None:
        offsets = [i * spread for i in range(calls)]
        label = f"{calls} calls placed {spread:g} s apart"
    else:
        offsets = [within * i / max(1, calls - 1) for i in range(calls)]
        label = f"{calls} calls answering within {within:g} s"
    loaded = await burst(calls, offsets, pid, workdir / "load", stagger_calls=spread is not None)
    print(describe(label, loaded), flush=True)
    if single.voice_to_voice_ms and loaded.voice_to_voice_ms:
        added = percentile(loaded.voice_to_voice_ms, 0.95) - statistics.median(
            single.voice_to_voice_ms
        )
        per_call = (loaded.peak_rss_mb - single.peak_rss_mb) / max(1, calls - 1)
        print(
            f"added delay (p95 under load − p50 of one call): {added:.0f} ms; "
            f"RSS per extra call {per_call:.1f} MB"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=16)
    parser.add_argument(
        "--within",
        type=float,
        default=1.0,
        help="all answers start within this many seconds (default 1)",
    )
    parser.add_argument(
        "--spread", type=float, default=None, help="place the calls this many seconds apart instead"
    )
    parser.add_argument(
        "--singles", type=int, default=5,
        help="calls placed one at a time first, for the baseline (default 5)",
    )  # fmt: skip
    args = parser.parse_args()
    workdir = REPO / ".state" / "bench-load"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    bot = start_bot(workdir / "voicebot.log", max_active=args.calls + 1)
    try:
        asyncio.run(run(args.calls, args.within, args.spread, workdir, bot.pid, args.singles))
    finally:
        bot.terminate()
        try:
            bot.wait(timeout=30)
        except subprocess.TimeoutExpired:
            bot.kill()
    print(f"(bot log and sipp files: {workdir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
