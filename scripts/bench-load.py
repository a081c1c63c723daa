#!/usr/bin/env python3
"""Many callers at once, on real calls: what a burst does to voice-to-voice and to pacing.

Starts its own bot (ARI app voicebot-ops, extension 920, tests/fixtures/ops/patient.yaml) and
places real SIP calls through the sandbox Asterisk, one sipp process per call with its own
ports (the bot's call limit: --calls + 1, or --max-active; 0 is the bot's own default).
Every caller waits for the menu, then says Allison's "hours". First one call alone, then
``--calls`` callers whose answers all start within ``--within`` seconds (``--spread`` places the
calls that far apart instead). For both it prints, at the callers' phones:

  voice to voice   the caller's last voiced frame → the bot's first voiced frame: p50 / p95
  routed           calls whose answer the bot understood ("hours")
  packet gaps      between consecutive packets of the bot's speech: p99 / max
  bot              CPU (cores busy, averaged over the burst) and peak RSS, per extra call

and the delay the load adds: p95 under load − p50 of the single call, same run.

With ``--workers N`` the same calls go to a pool instead (scripts/cluster.sh: N workers behind
HAProxy, extension 150, the same patient menu): it also prints how many calls each worker took,
and with ``--kill-one`` what one worker's death costs: one worker is killed (-9) while every
worker has a caller, then a new call is placed every 0.25 s for 2 s; it prints the killed
worker's callers handed back to the fallback (and when, after the kill), and which of the new
calls were served.

With ``--long-talker`` the burst is placed a second time beside one caller who talks on and on
(the turn set's recorded answers without "hours", 0.3-0.6 s apart, for LONG_TALK_S; placed
LONG_TALK_LEAD_S before the burst): it prints the burst's voice to voice beside the talker and
how much that adds to the quiet bot's, same run.

    scripts/asterisk-sandbox.sh start
    .venv/bin/python scripts/bench-load.py [--calls 16] [--within 1.0 | --spread 0.3] [--singles 5]
    .venv/bin/python scripts/bench-load.py --calls 4 --spread 1.0 --long-talker
    .venv/bin/python scripts/bench-load.py --workers 3 [--kill-one] ...
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from voicebot.media.levels import speech_end_s  # noqa: E402
from voicebot.tools.callprobe import start_sandbox_bot  # noqa: E402
from voicebot.tools.sip import (  # noqa: E402
    CallResult,
    Hangup,
    Pause,
    Play,
    Step,
    WaitForBye,
    place_call,
    read_wav_8k,
)

HTTP_PORT = 18097
SINGLE_EXTENSION, POOL_EXTENSION = "920", "150"
CLUSTER = REPO / "scripts" / "cluster.sh"
ASTERISK_LOG = REPO / ".state" / "asterisk" / "asterisk.log"
OPS_SCRIPTS = {
    "VOICEBOT_DIALOG_SCRIPTS_DIR": str(REPO / "tests" / "fixtures" / "ops"),
    "VOICEBOT_DIALOG_DEFAULT_SCRIPT": "patient",
}
MENU_S = 4.0  # "Which service? Say hours." lasts about 2 s
HOURS = REPO / "tests" / "fixtures" / "audio" / "hours.wav"
TURNS = REPO / "tests" / "fixtures" / "turns"
LONG_TALK_S = 75.0
LONG_TALK_LEAD_S = 20.0


@dataclass
class Burst:
    voice_to_voice_ms: list[float]
    routed: int
    calls: int
    gaps_ms: list[float]
    pacer_late_ms: float  # the latest any of the bot's packets left its slot
    cpu_cores: float
    peak_rss_mb: float
    taken: dict[int, int]  # calls per bot (worker number; 0: the single bot)
    most_active: int = 0  # the most calls the bots held at once (sampled every 0.2 s)


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


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return dict(json.loads(response.read()))


class Target:
    """What the calls go to: one bot (``voicebot run``), or a pool of workers behind HAProxy."""

    def __init__(self, extension: str, status_urls: dict[int, str]) -> None:
        self.extension = extension
        self.status_urls = status_urls  # worker number (0: the single bot) → status URL
        self.bot: subprocess.Popen[bytes] | None = None

    @classmethod
    def single(cls, log: Path, max_active: int) -> Target:
        overrides = {
            **OPS_SCRIPTS,
            "VOICEBOT_ARI_APP": "voicebot-ops",
            "VOICEBOT_MEDIA_PORT_MIN": "42400",
            "VOICEBOT_MEDIA_PORT_MAX": "42599",
            "VOICEBOT_CALLS_MAX_ACTIVE": str(max_active),
        }
        target = cls(SINGLE_EXTENSION, {0: f"http://127.0.0.1:{HTTP_PORT}"})
        target.bot = start_sandbox_bot(REPO, overrides, log, HTTP_PORT, "bench-load")
        return target

    @classmethod
    def pool(cls, workers: int, max_active: int) -> Target:
        env = {**os.environ, **OPS_SCRIPTS, "VOICEBOT_CALLS_MAX_ACTIVE": str(max_active)}
        subprocess.run([str(CLUSTER), "stop"], check=True, capture_output=True)
        subprocess.run([str(CLUSTER), "start", str(workers)], check=True, env=env)
        return cls(POOL_EXTENSION, {k: f"http://127.0.0.{k + 1}:{8090 + k}"
                                    for k in range(1, workers + 1)})  # fmt: skip

    def pids(self) -> dict[int, int]:
        if self.bot is not None:
            return {0: self.bot.pid}
        workers = REPO / ".state" / "workers"
        found = {k: int((workers / f"worker-{k}.pid").read_text()) for k in self.status_urls}
        return {k: pid for k, pid in found.items() if Path(f"/proc/{pid}").exists()}

    def recent(self) -> dict[int, list[dict[str, Any]]]:
        """Each live bot's recent calls."""
        out: dict[int, list[dict[str, Any]]] = {}
        for k in self.pids():
            out[k] = list(get_json(self.status_urls[k] + "/calls")["recent"])
        return out

    def active(self) -> dict[int, int]:
        return {k: int(get_json(self.status_urls[k] + "/health")["active_calls"])
                for k in self.pids()}  # fmt: skip

    def stop(self) -> None:
        if self.bot is None:
            subprocess.run([str(CLUSTER), "stop"], check=False, capture_output=True)
            return
        self.bot.terminate()
        try:
            self.bot.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.bot.kill()


def packet_gaps_ms(result: CallResult, after: float) -> list[float]:
    packets = [p for p in result.received_packets if p.arrival_time >= after]
    return [(b.arrival_time - a.arrival_time) * 1000 for a, b in itertools.pairwise(packets)
            if b.seq == (a.seq + 1) & 0xFFFF and not b.marker]  # fmt: skip


def cpu_s(pids: list[int]) -> float:
    return sum(proc_cpu_s(pid) for pid in pids)


def rss_mb(pids: list[int]) -> float:
    return sum(proc_rss_mb(pid) for pid in pids)


async def burst(
    count: int, offsets: list[float], target: Target, workdir: Path, *,
    stagger_calls: bool = False,
) -> Burst:  # fmt: skip
    """``count`` calls placed together, call i answering ``offsets[i]`` after the others; or,
    with ``stagger_calls``, call i placed ``offsets[i]`` later (each answers after its menu)."""
    hours = read_wav_8k(HOURS)
    voice_end = speech_end_s(hours, 8000)
    before = time.time()
    pids = list(target.pids().values())
    cpu_before, wall_before = cpu_s(pids), time.monotonic()
    peak = rss_mb(pids)

    async def one(i: int) -> CallResult:
        if stagger_calls:
            await asyncio.sleep(offsets[i])
        wait = MENU_S if stagger_calls else MENU_S + offsets[i]
        return await place_call(
            extension=target.extension, workdir=workdir / str(i), timeout_s=90,
            steps=[Pause(wait), Play(hours), WaitForBye(timeout_s=30)],
        )  # fmt: skip

    tasks = [asyncio.create_task(one(i)) for i in range(count)]
    most_active = 0
    while not all(t.done() for t in tasks):
        peak = max(peak, rss_mb(pids))
        most_active = max(most_active, sum(target.active().values()))
        await asyncio.sleep(0.2)
    cpu = (cpu_s(pids) - cpu_before) / (time.monotonic() - wall_before)
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
    per_bot = {k: [c for c in calls if float(c.get("started", 0)) >= before - 0.5]
               for k, calls in target.recent().items()}  # fmt: skip
    recent = [c for calls in per_bot.values() for c in calls]
    routed = sum(
        1 for c in recent
        if [line.get("intent") for line in c["transcript"] if line["who"] == "caller"] == ["hours"]
    )  # fmt: skip
    late = max((float(c.get("pacer", {}).get("max_late_ms", 0.0)) for c in recent), default=0.0)
    taken = {k: len(calls) for k, calls in per_bot.items()}
    return Burst(v2v, routed, count, gaps, late, cpu, peak, taken, most_active)


def describe(name: str, b: Burst) -> str:
    v = b.voice_to_voice_ms
    gaps = (
        f"p99 {percentile(b.gaps_ms, 0.99):.1f} / max {max(b.gaps_ms):.1f} ms" if b.gaps_ms else "-"
    )
    timing = f"p50 {statistics.median(v):.0f} / p95 {percentile(v, 0.95):.0f} ms" if v else "-"
    spread = ""
    if set(b.taken) != {0}:
        spread = "; calls per worker " + " ".join(f"{k}:{n}" for k, n in sorted(b.taken.items()))
    at_once = f" ({b.most_active} at once at most)" if b.most_active else ""
    return (
        f"{name}{at_once}: voice to voice {timing} (n {len(v)}); routed {b.routed}/{b.calls}; "
        f"packet gaps {gaps} (the bot's pacer at most {b.pacer_late_ms:.1f} ms late); "
        f"bot {b.cpu_cores:.2f} cores, peak RSS {b.peak_rss_mb:.0f} MB{spread}"
    )


async def run(calls: int, within: float, spread: float | None, workdir: Path, target: Target,
              singles: int, long_talker: bool = False) -> None:  # fmt: skip
    alone = [await burst(1, [0.0], target, workdir / f"single{i}") for i in range(singles)]
    single = Burst(
        [v for b in alone for v in b.voice_to_voice_ms], sum(b.routed for b in alone),
        singles, [g for b in alone for g in b.gaps_ms], max(b.pacer_late_ms for b in alone),
        max(b.cpu_cores for b in alone),
        max(b.peak_rss_mb for b in alone),
        {k: sum(b.taken.get(k, 0) for b in alone) for k in target.status_urls},
    )  # fmt: skip
    print(describe(f"1 call at a time ({singles} calls)", single), flush=True)
    if spread is not None:
        offsets = [i * spread for i in range(calls)]
        label = f"{calls} calls placed {spread:g} s apart"
    else:
        offsets = [within * i / max(1, calls - 1) for i in range(calls)]
        label = f"{calls} calls answering within {within:g} s"
    loaded = await burst(calls, offsets, target, workdir / "load",
                         stagger_calls=spread is not None)  # fmt: skip
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
    if long_talker:
        talked = await beside_a_long_talker(calls, offsets, target, workdir / "talker",
                                            spread is not None)  # fmt: skip
        print(describe(f"{label}, beside a long talker", talked), flush=True)
        quiet, loud = loaded.voice_to_voice_ms, talked.voice_to_voice_ms
        if quiet and loud:
            p50 = statistics.median(loud) - statistics.median(quiet)
            p95 = percentile(loud, 0.95) - percentile(quiet, 0.95)
            print(f"the long talker adds: p50 {p50:+.0f} ms, p95 {p95:+.0f} ms (goal: within 100)")


def long_talk() -> np.ndarray:
    """LONG_TALK_S of real answers from the turn set (none says "hours", so the patient menu
    never takes one), 0.3-0.6 s apart: a caller, or a TV, that does not stop."""
    labels = json.loads((TURNS / "labels.json").read_text())
    kinds = ("menu", "digits", "yes_no")
    files = [TURNS / label["file"] for label in labels
             if label["kind"] in kinds and "hour" not in label["text"]]  # fmt: skip
    rng = np.random.default_rng(21)
    pieces: list[np.ndarray] = []
    total = 0
    for path in itertools.cycle(files):
        if total >= LONG_TALK_S * 8000:
            break
        pieces += [read_wav_8k(path), np.zeros(int(rng.uniform(0.3, 0.6) * 8000), np.int16)]
        total += pieces[-2].size + pieces[-1].size
    return np.concatenate(pieces)


async def beside_a_long_talker(
    calls: int, offsets: list[float], target: Target, workdir: Path, stagger_calls: bool
) -> Burst:
    """The same burst, placed LONG_TALK_LEAD_S after a long talker's call began talking."""
    talker = asyncio.create_task(place_call(
        extension=target.extension, workdir=workdir / "talker", timeout_s=LONG_TALK_S + 60,
        steps=[Pause(MENU_S), Play(long_talk()), Hangup()],
    ))  # fmt: skip
    await asyncio.sleep(MENU_S + LONG_TALK_LEAD_S)
    if talker.done():
        raise SystemExit(f"bench-load: the long talker's call ended early: {talker.result()}")
    loaded = await burst(calls, offsets, target, workdir / "load", stagger_calls=stagger_calls)
    talked = await talker
    if talked.hangup_by != "caller":
        print("  (the bot hung up on the long talker before the talk was over)")
    return loaded


def fallback_times(since: float) -> list[float]:
    """Wall-clock times of [voicebot-fallback]'s log lines after ``since`` (Asterisk's log)."""
    times = []
    for line in ASTERISK_LOG.read_text(errors="replace").splitlines():
        match = re.match(r"\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\] NOTICE.*: "
                         r"voicebot-test result error channel=", line)  # fmt: skip
        if match:
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
            if stamp >= since:
                times.append(stamp)
    return times


async def kill_one(target: Target, workdir: Path) -> None:
    """Kill one worker (-9) while every worker has a caller; then a new call every 0.25 s."""
    workers = sorted(target.pids())
    hold: list[Step] = [Pause(12.0), Hangup()]
    callers = [asyncio.create_task(place_call(extension=target.extension, steps=hold,
                                              workdir=workdir / f"held{i}", timeout_s=60))
               for i in range(len(workers))]  # fmt: skip
    deadline = time.monotonic() + 20
    while not all(n >= 1 for n in target.active().values()):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench-load: the calls did not reach every worker: {target.active()}")
        await asyncio.sleep(0.2)
    await asyncio.sleep(2.0)  # mid-greeting
    victim = workers[0]
    taken_before = {k: len(c) for k, c in target.recent().items() if k != victim}
    killed_at = time.time()
    os.kill(target.pids()[victim], signal.SIGKILL)
    later = []
    for i in range(9):
        later.append(asyncio.create_task(place_call(
            extension=target.extension, workdir=workdir / f"after{i}", timeout_s=60,
            steps=[Pause(4.0), Hangup()])))  # fmt: skip
        await asyncio.sleep(0.25)
    held = await asyncio.gather(*callers)
    after = await asyncio.gather(*later)
    await asyncio.sleep(1.0)
    fallbacks = fallback_times(killed_at)
    handed_back = [t - killed_at for t in fallbacks]
    served = [r.answered_time is not None and r.hangup_by == "caller" for r in after]
    active = [k for k in workers if k != victim]
    # Each surviving worker's held caller ended after the kill too: not a new call.
    new_calls = {k: len(c) - taken_before.get(k, 0) - 1 for k, c in target.recent().items()}
    print(f"worker {victim} of {len(workers)} killed (-9) with 1 caller on each worker:")
    print(
        f"  its callers handed back to the fallback: {len(handed_back)} "
        f"(at {', '.join(f'{t:.2f} s' for t in handed_back) or '-'} after the kill); "
        f"the other workers' callers that hung up themselves: "
        f"{sum(1 for r in held if r.hangup_by == 'caller')}/{len(held) - 1}"
    )
    print(
        f"  new calls placed 0-2 s after the kill, every 0.25 s: served "
        f"{''.join('y' if ok else 'n' for ok in served)} "
        f"({sum(served)}/{len(served)}; by workers {active}: "
        f"{' '.join(f'{k}:{n}' for k, n in sorted(new_calls.items()))})"
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
    parser.add_argument(
        "--max-active", type=int, default=None,
        help="the bot's call limit (default: --calls + 1, so none is refused; 0: the bot's own "
             "default, 12 per core)",
    )  # fmt: skip
    parser.add_argument(
        "--workers",
        type=int,
        default=0,
        help="call a pool of this many workers (scripts/cluster.sh) instead",
    )
    parser.add_argument(
        "--kill-one",
        action="store_true",
        help="with --workers: then kill one worker mid-call, see what it costs",
    )
    parser.add_argument(
        "--long-talker",
        action="store_true",
        help="then place the burst again beside a caller who talks on for 75 s",
    )
    args = parser.parse_args()
    workdir = REPO / ".state" / "bench-load"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    limit = args.calls + 1 if args.max_active is None else args.max_active
    if args.workers:
        target = Target.pool(args.workers, max_active=limit)
    else:
        target = Target.single(workdir / "voicebot.log", max_active=limit)
    try:
        asyncio.run(run(args.calls, args.within, args.spread, workdir, target, args.singles,
                        args.long_talker))  # fmt: skip
        if args.workers and args.kill_one:
            asyncio.run(kill_one(target, workdir / "kill"))
    finally:
        target.stop()
    logs = ".state/workers/ and " if args.workers else "bot log and "
    print(f"({logs}sipp files: {workdir})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
