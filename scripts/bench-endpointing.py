#!/usr/bin/env python3
"""Turn-taking on real calls: voice-to-voice per answer kind, false cut-offs, barge-in, noise.

Plays every labelled caller turn of tests/fixtures/turns/ (labels.json) to a bot through the
sandbox Asterisk with sipp, one call per turn, and measures at the caller's phone:

  voice to voice   the caller's last voiced frame (labels.json voice_end_s) → the bot's first
                   voiced frame after it (RMS of 20 ms frames), per answer kind
  false cut-off    the bot answered before the caller had finished (a mid-turn pause taken for
                   the end), or understood less than the whole answer
  barge-in stop    the caller's voice onset over a prompt → the bot's last packet before it
                   stopped (extension 317)
  noise            a cough, click, crackle, hiss or breath over the prompt: lost when the
                   prompt did not go on, or the bot took it for an answer

It starts its own bot (ARI app voicebot-turns, scripts from tests/fixtures/turns/scripts) and
needs the sandbox Asterisk: `scripts/asterisk-sandbox.sh start` (or `make asterisk`) first.

    .venv/bin/python scripts/bench-endpointing.py [--rounds 1] [--barge-rounds 5] [--only menu]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from voicebot.errors import VoicebotError  # noqa: E402
from voicebot.tools.callprobe import barge_in_stop_ms, start_sandbox_bot  # noqa: E402
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

TURNS = REPO / "tests" / "fixtures" / "turns"
HTTP_PORT = 18092
GREETING_S = 2.0  # 311-316 greet in about a second
TALK_OVER_AT_S = 2.0  # into 317's ten-second greeting
EXTENSIONS = {"menu": "311", "yes_no": "312", "number": "315", "text": "316"}
# After a sound over the prompt, the prompt must be heard again within this long.
RESUMED_WITHIN_S = 1.5


@dataclass
class Outcome:
    file: str
    kind: str
    group: str
    voice_to_voice_ms: float | None = None
    cut_off: bool = False
    routed_right: bool = False
    barge_stop_ms: float | None = None
    prompt_lost: bool = False
    heard: list[str] = field(default_factory=list)
    human: bool = False  # Allison's recordings; the rest is espeak-ng or synthesized noise


def extension_for(label: dict[str, Any]) -> str:
    if label["kind"] == "digits":
        return "313" if label["digits_length"] == 3 else "314"
    if label["kind"] in ("noise", "barge"):
        return "317"
    return EXTENSIONS[label["kind"]]


def bot_calls() -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{HTTP_PORT}/calls", timeout=5) as response:
        return list(json.loads(response.read())["recent"])


async def finished_record(since: float) -> dict[str, Any]:
    """The bot's record of the call placed at wall time ``since`` (its /calls keeps only the
    most recent calls, so they are told apart by their start time)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        mine = [c for c in bot_calls() if c.get("started", 0) >= since - 0.5]
        if mine:
            return mine[-1]
        await asyncio.sleep(0.2)
    raise VoicebotError("the bot did not record the call")


def first_voiced_after(result: CallResult, t: float) -> float | None:
    return result.first_voiced_after(t)


def routed_right(label: dict[str, Any], record: dict[str, Any]) -> bool:
    callers = [line for line in record["transcript"] if line["who"] == "caller"]
    bots = [line["text"] for line in record["transcript"] if line["who"] == "bot"]
    if len(callers) != 1 or any("sorry" in text.lower() for text in bots):
        return False
    if label["kind"] == "menu":
        return bool(callers[0].get("intent") == label["answer"])
    if label["kind"] == "digits":
        return bool(bots) and bots[-1].replace(" ", "").rstrip(".") == f"Yousaid{label['answer']}"
    return callers[0].get("intent") is not None


async def answer_turn(label: dict[str, Any], workdir: Path) -> Outcome:
    pcm = read_wav_8k(TURNS / label["file"])
    before = time.time()
    result = await place_call(
        extension=extension_for(label), workdir=workdir, timeout_s=60,
        steps=[Pause(GREETING_S), Play(pcm), WaitForBye(timeout_s=20)],
    )  # fmt: skip
    record = await finished_record(before)
    outcome = Outcome(label["file"], label["kind"], label["group"],
                      human=label["source"].startswith("Allison"))  # fmt: skip
    sent = result.sent_start_time[0]
    if sent is None:
        return outcome
    began, ended = sent + label["speech_start_s"], sent + label["voice_end_s"]
    answered = first_voiced_after(result, began)
    outcome.cut_off = answered is not None and answered < ended
    after = first_voiced_after(result, ended)
    outcome.voice_to_voice_ms = None if after is None else round((after - ended) * 1000, 1)
    outcome.routed_right = routed_right(label, record)
    outcome.heard = [line["text"] for line in record["transcript"] if line["who"] == "caller"]
    return outcome


async def over_the_prompt(label: dict[str, Any], workdir: Path, at_s: float) -> Outcome:
    pcm = read_wav_8k(TURNS / label["file"])
    before = time.time()
    steps: list[Step] = [Pause(at_s), Play(pcm)]
    steps += [Pause(4.0), Hangup()] if label["kind"] == "noise" else [WaitForBye(timeout_s=20)]
    result = await place_call(extension="317", workdir=workdir, timeout_s=60, steps=steps)
    record = await finished_record(before)
    outcome = Outcome(label["file"], label["kind"], label["group"],
                      human=label["source"].startswith("Allison"))  # fmt: skip
    outcome.heard = [line["text"] for line in record["transcript"] if line["who"] == "caller"]
    sent = result.sent_start_time[0]
    if sent is None:
        return outcome
    if label["kind"] == "barge":
        stop = barge_in_stop_ms(result, 0, pcm, onset_s=label["speech_start_s"])
        outcome.barge_stop_ms = None if stop is None else round(stop, 1)
        outcome.routed_right = [line.get("intent") for line in record["transcript"]
                                if line["who"] == "caller"] == [label["answer"]]  # fmt: skip
    else:
        end = sent + len(pcm) / 8000
        resumed = first_voiced_after(result, end)
        outcome.prompt_lost = bool(outcome.heard) or resumed is None or (
            resumed - end > RESUMED_WITHIN_S
        )
    return outcome


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def report(outcomes: list[Outcome]) -> None:
    print("\nvoice to voice at the phone (caller's last voiced frame → bot's first voiced frame)")
    print(f"  {'kind':<16} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'routed':>7} {'cut off':>8}")
    groups: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.kind not in ("noise", "barge"):
            without_pauses = "pause" not in outcome.group
            key = f"{outcome.kind}{'' if without_pauses else ' (pauses)'}"
            groups.setdefault(key, []).append(outcome)
    for key in sorted(groups):
        items = groups[key]
        times = [o.voice_to_voice_ms for o in items if o.voice_to_voice_ms is not None]
        p50 = f"{statistics.median(times):.0f}" if times else "-"
        p95 = f"{percentile(times, 0.95):.0f}" if times else "-"
        routed = sum(o.routed_right for o in items)
        cut_count = sum(o.cut_off for o in items)
        print(f"  {key:<16} {len(items):>3} {p50:>8} {p95:>8} {routed:>4}/{len(items):<2} "
              f"{cut_count:>5}/{len(items)}")  # fmt: skip
    paused = [o for o in outcomes if "pause" in o.group]
    if paused:
        cut = [o for o in paused if o.cut_off or not o.routed_right]
        print(f"\nfalse cut-offs on the pause set: {len(cut)}/{len(paused)} "
              f"({100 * len(cut) / len(paused):.1f} %)"
              + "".join(f"\n  {o.file}: heard {o.heard}" for o in cut))  # fmt: skip
    complete = [o.voice_to_voice_ms for o in outcomes if o.kind in ("menu", "yes_no", "digits")
                and "pause" not in o.group and o.voice_to_voice_ms is not None]  # fmt: skip
    if complete:
        print(f"complete answers (menu, yes/no, digits): p50 {statistics.median(complete):.0f} ms,"
              f" p95 {percentile(complete, 0.95):.0f} ms, n {len(complete)}")  # fmt: skip
    texts = [o for o in outcomes if o.kind == "text" and o.voice_to_voice_ms is not None]
    for name, chosen in (("all", texts), ("Allison", [o for o in texts if o.human]),
                         ("espeak-ng", [o for o in texts if not o.human])):  # fmt: skip
        times = [o.voice_to_voice_ms for o in chosen if o.voice_to_voice_ms is not None]
        if times:
            print(f"free text, {name}: p50 {statistics.median(times):.0f} ms, p95 "
                  f"{percentile(times, 0.95):.0f} ms, n {len(times)}")  # fmt: skip
    barges = [o.barge_stop_ms for o in outcomes if o.barge_stop_ms is not None]
    if barges:
        print(f"barge-in stop (voice onset → bot's last packet): p50 "
              f"{statistics.median(barges):.0f} ms, p95 {percentile(barges, 0.95):.0f} ms, "
              f"n {len(barges)}")  # fmt: skip
    noises = [o for o in outcomes if o.kind == "noise"]
    if noises:
        lost = [o for o in noises if o.prompt_lost]
        print(f"prompts lost to noise: {len(lost)}/{len(noises)}"
              + "".join(f"\n  {o.file}: heard {o.heard}" for o in lost))  # fmt: skip


def start_bot(log: Path) -> subprocess.Popen[bytes]:
    overrides = {
        "VOICEBOT_ARI_APP": "voicebot-turns",
        "VOICEBOT_DIALOG_SCRIPTS_DIR": str(TURNS / "scripts"),
        "VOICEBOT_DIALOG_DEFAULT_SCRIPT": "311",
        "VOICEBOT_MEDIA_PORT_MIN": "42300",
        "VOICEBOT_MEDIA_PORT_MAX": "42399",
    }
    return start_sandbox_bot(REPO, overrides, log, HTTP_PORT, "bench-endpointing")


async def run(labels: list[dict[str, Any]], rounds: int, barge_rounds: int, workdir: Path
              ) -> list[Outcome]:  # fmt: skip
    outcomes: list[Outcome] = []
    for round_index in range(rounds):
        for index, label in enumerate(labels):
            where = workdir / f"{round_index}-{index}"
            if label["kind"] == "barge":
                for n in range(barge_rounds):
                    at = TALK_OVER_AT_S + 0.73 * n
                    outcome = await over_the_prompt(label, where / str(n), at)
                    outcomes.append(outcome)
                    print(f"  {label['file']:<38} over the prompt at {at:.1f} s: stopped after "
                          f"{outcome.barge_stop_ms} ms, heard {outcome.heard}")  # fmt: skip
                continue
            if label["kind"] == "noise":
                outcome = await over_the_prompt(label, where, TALK_OVER_AT_S)
                print(f"  {label['file']:<38} prompt {'LOST' if outcome.prompt_lost else 'went on'}"
                      f", heard {outcome.heard}")  # fmt: skip
            else:
                outcome = await answer_turn(label, where)
                flag = " CUT OFF" if outcome.cut_off else ""
                flag += "" if outcome.routed_right else " MISROUTED"
                print(f"  {label['file']:<38} {outcome.voice_to_voice_ms} ms, heard "
                      f"{outcome.heard}{flag}")  # fmt: skip
            outcomes.append(outcome)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1, help="times through the whole set")
    parser.add_argument("--barge-rounds", type=int, default=5, help="calls per barge-in turn")
    parser.add_argument("--only", action="append", default=[], metavar="KIND",
                        help="menu, yes_no, digits, number, text, noise or barge (repeatable)")
    args = parser.parse_args()
    labels = json.loads((TURNS / "labels.json").read_text())
    if args.only:
        labels = [label for label in labels if label["kind"] in args.only]
    workdir = REPO / ".state" / "bench-endpointing"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    bot = start_bot(workdir / "voicebot.log")
    try:
        outcomes = asyncio.run(run(labels, args.rounds, args.barge_rounds, workdir))
    except VoicebotError as exc:
        print(f"bench-endpointing: failed: {exc} (bot log, sipp files: {workdir})",
              file=sys.stderr)  # fmt: skip
        return 1
    finally:
        bot.terminate()
        bot.wait(timeout=30)
    report(outcomes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
