#!/usr/bin/env python3
"""Turn-taking on real calls: right / wrong / no-match and voice-to-voice per condition, over
several seeded takes of every turn; false cut-offs, barge-in, noise, background talk.

Plays the labelled caller turns of tests/fixtures/turns/ (labels.json; --turns names other
sets: tests/fixtures/turns-ru/ is the Russian one) to a bot through the sandbox Asterisk with
sipp, one call per take of a turn, and measures at the caller's phone:

  verdict          right (the bot took the turn's answer, from one caller turn, without its
                   no-match line), wrong (it took something else: another intent, other
                   digits, part of a text) or no-match (nothing, or only after "Sorry")
  steady / flip    each turn is played as --seeds takes (voicebot/tools/takes.py: take 0 is
                   the file, the others add an inaudible lead, gain, line noise and dither);
                   a turn is steady when every take of it is right, and flips when its
                   takes' verdicts differ: a result that needs luck
  voice to voice   the caller's last voiced frame (labels.json voice_end_s) → the bot's first
                   voiced frame after it (RMS of 20 ms frames)
  false cut-off    the bot answered before the caller had finished (a mid-turn pause taken for
                   the end)
  background       extension 318 (a ~5 s greeting): the turn's background talk starts during
                   the greeting and the caller answers after it. "prompt stopped" counts the
                   plays where the greeting stopped or paused for more than a breath (0.3 s)
                   before the caller spoke; "from background" the wrong ones routed on a word
                   only the background said
  barge-in stop    the caller's voice onset over a prompt → the bot's last packet before it
                   stopped (extension 317)
  noise            a cough, click, crackle, hiss or breath over the prompt: lost when the
                   prompt did not go on, or the bot took it for an answer
  languages        a turn labelled "language": "ru" is played to the Russian scripts (321
                   menu, 322 yes/no, 324 four digits; groups ru-menu, ru-paused, ru-yes_no,
                   ru-digits); with English menu turns in the same run the report compares
                   ru-menu's voice to voice with menu's (same machine, same bot)

It starts its own bot (ARI app voicebot-turns, scripts from tests/fixtures/turns/scripts) and
needs the sandbox Asterisk: `scripts/asterisk-sandbox.sh start` (or `make asterisk`) first.

    .venv/bin/python scripts/bench-endpointing.py                      # everything, 3 takes
    .venv/bin/python scripts/bench-endpointing.py --groups background --groups paused
    .venv/bin/python scripts/bench-endpointing.py --groups menu-carrier --seeds 5 --limit 4
    .venv/bin/python scripts/bench-endpointing.py --dry-run            # the plan and its time
    .venv/bin/python scripts/bench-endpointing.py --turns tests/fixtures/turns-ru   # Russian
    .venv/bin/python scripts/bench-endpointing.py --turns tests/fixtures/turns \
        --turns tests/fixtures/turns-ru --groups menu --groups ru-menu      # English vs Russian
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from voicebot.errors import VoicebotError  # noqa: E402
from voicebot.media.codecs import ULAW  # noqa: E402
from voicebot.media.levels import is_voiced  # noqa: E402
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
from voicebot.tools.takes import Take, take  # noqa: E402
from voicebot.tools.turnbench import (  # noqa: E402
    CONDITIONS,
    LANGUAGE_COMPARISONS,
    TABLE_HEAD,
    Outcome,
    answer_onset,
    extension_for,
    from_background,
    greeting_running,
    greeting_stopped,
    language_of,
    latency_comparison,
    percentile,
    taken_value,
    talkspurt_s,
    tally,
    tally_line,
    verdict,
)

TURNS = REPO / "tests" / "fixtures" / "turns"
HTTP_PORT = 18092
GREETING_S = 2.0  # 311-316, 321, 322 and 324 greet in about a second
TALK_OVER_AT_S = 2.0  # into 317's ten-second greeting
BACKGROUND_EXTENSION = "318"
# After a sound over the prompt, the prompt must be heard again within this long.
RESUMED_WITHIN_S = 1.5
# A caller with background talk answers this long after the greeting's end.
CALLER_AFTER_GREETING_S = 0.6
# The reference call to 318 listens this long (its greeting is ~5 s; no-input comes 5 s later).
REFERENCE_LISTEN_S = 8.0
# If the reference call saw no greeting: where it is expected to end, from the answer.
GREETING_END_FALLBACK_S = 6.0
# For --dry-run's estimate: per call, sipp's set-up and teardown, the bot's answer and hang-up
# (measured: 91 calls of the original set took about 10 minutes).
CALL_OVERHEAD_S = 1.0
ANSWER_S = 1.8

GROUP_ALIASES: dict[str, tuple[str, ...]] = {
    "plain": CONDITIONS["plain answers"],
    "paused": CONDITIONS["paused answers"],
    "background": ("background-10db", "background-16db", "background-22db"),
    "ru-plain": CONDITIONS["ru plain answers"],
    "ru": (*CONDITIONS["ru plain answers"], *CONDITIONS["ru paused answers"]),
}


@dataclass(frozen=True)
class Greeting:
    """318's greeting as the reference call heard it."""

    ends_after_answer_s: float  # from the 200 OK to the greeting's last packet
    length_s: float  # its audio


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


def arrivals(result: CallResult) -> list[float]:
    return [r.arrival_time for r in result.received_packets]


def voiced_arrivals(result: CallResult) -> list[tuple[float, bool]]:
    """(arrival, voiced) per PCMU packet the caller received."""
    return [(r.arrival_time, is_voiced(ULAW.decode(r.payload))) for r in result.received_packets
            if r.packet.payload_type == ULAW.payload_type]  # fmt: skip


def new_outcome(label: dict[str, Any], seed: int) -> Outcome:
    return Outcome(label["file"], label["group"], label["kind"], seed,
                   human=label["source"].startswith("Allison"),
                   language=language_of(label))  # fmt: skip


def judge(outcome: Outcome, label: dict[str, Any], record: dict[str, Any]) -> None:
    transcript = record["transcript"]
    outcome.verdict = verdict(label, transcript)
    outcome.value = taken_value(label, transcript)
    outcome.from_background = outcome.verdict == "wrong" and from_background(label, outcome.value)
    outcome.heard = [line["text"] for line in transcript if line["who"] == "caller"]


async def judged_call(
    label: dict[str, Any], played: Take, workdir: Path, extension: str, steps: list[Step],
    timeout_s: float,
) -> tuple[Outcome, CallResult]:  # fmt: skip
    """Place one call playing the turn, then judge what the bot made of it (its /calls
    record)."""
    before = time.time()
    result = await place_call(extension=extension, workdir=workdir, timeout_s=timeout_s,
                              steps=steps)  # fmt: skip
    outcome = new_outcome(label, played.seed)
    judge(outcome, label, await finished_record(before))
    return outcome, result


async def answer_turn(label: dict[str, Any], played: Take, workdir: Path) -> Outcome:
    steps: list[Step] = [Pause(GREETING_S), Play(played.pcm), WaitForBye(timeout_s=20)]
    outcome, result = await judged_call(label, played, workdir, extension_for(label), steps, 60)
    sent = result.sent_start_time[0]
    if sent is None:
        return outcome
    began = sent + played.lead_s + label["speech_start_s"]
    ended = sent + played.lead_s + label["voice_end_s"]
    answered = result.first_voiced_after(began)
    outcome.cut_off = answered is not None and answered < ended
    after = result.first_voiced_after(ended)
    outcome.voice_to_voice_ms = None if after is None else round((after - ended) * 1000, 1)
    return outcome


async def reference_greeting(workdir: Path) -> Greeting:
    """Listen to 318's greeting once, nobody talking: when it ends and how long it is."""
    result = await place_call(
        extension=BACKGROUND_EXTENSION, workdir=workdir, timeout_s=30,
        steps=[Pause(REFERENCE_LISTEN_S), Hangup()],
    )  # fmt: skip
    heard = arrivals(result)
    if not heard or result.answered_time is None:
        print(f"  reference call: no greeting heard; the callers will answer "
              f"{GREETING_END_FALLBACK_S:.1f} s after the call is answered")  # fmt: skip
        return Greeting(GREETING_END_FALLBACK_S, 0.0)
    length = talkspurt_s(heard)
    ends = min(heard) + length - result.answered_time
    print(f"  reference call: 318's greeting {length:.2f} s long, over {ends:.2f} s after "
          "the answer")  # fmt: skip
    return Greeting(ends, length)


async def background_turn(
    label: dict[str, Any], played: Take, workdir: Path, greeting: Greeting
) -> Outcome:
    """Play the turn so that its caller answers CALLER_AFTER_GREETING_S after 318's greeting
    (its background has started during the greeting), then judge the greeting and the answer."""
    caller_at = played.lead_s + label["speech_start_s"]
    wait = max(0.0, greeting.ends_after_answer_s + CALLER_AFTER_GREETING_S - caller_at)
    # A caller the bot never understood hears 318 out: two no-inputs or no-matches, each
    # followed by the ~6 s greeting again, then goodbye (about 45 s).
    steps: list[Step] = [Pause(wait), Play(played.pcm), WaitForBye(timeout_s=60)]
    outcome, result = await judged_call(label, played, workdir, BACKGROUND_EXTENSION, steps, 120)
    sent = result.sent_start_time[0]
    if sent is None:
        return outcome
    onset, ended = sent + caller_at, sent + played.lead_s + label["voice_end_s"]
    packets = arrivals(result)
    outcome.over_greeting = greeting_running(packets, onset)
    if greeting.length_s:
        outcome.prompt_stopped = greeting_stopped(packets, onset, greeting.length_s)
    voiced = voiced_arrivals(result)
    answered = answer_onset(voiced, onset)
    outcome.cut_off = answered is not None and answered < ended
    after = answer_onset(voiced, ended)
    outcome.voice_to_voice_ms = None if after is None else round((after - ended) * 1000, 1)
    return outcome


async def over_the_prompt(label: dict[str, Any], played: Take, workdir: Path, at_s: float
                          ) -> Outcome:  # fmt: skip
    before = time.time()
    steps: list[Step] = [Pause(at_s), Play(played.pcm)]
    steps += [Pause(4.0), Hangup()] if label["kind"] == "noise" else [WaitForBye(timeout_s=20)]
    result = await place_call(extension="317", workdir=workdir, timeout_s=60, steps=steps)
    record = await finished_record(before)
    outcome = new_outcome(label, played.seed)
    outcome.heard = [line["text"] for line in record["transcript"] if line["who"] == "caller"]
    sent = result.sent_start_time[0]
    if sent is None:
        return outcome
    if label["kind"] == "barge":
        onset = played.lead_s + label["speech_start_s"]
        stop = barge_in_stop_ms(result, 0, played.pcm, onset_s=onset)
        outcome.barge_stop_ms = None if stop is None else round(stop, 1)
        outcome.verdict = verdict(label, record["transcript"])
    else:
        end = sent + len(played.pcm) / 8000
        resumed = result.first_voiced_after(end)
        outcome.prompt_lost = (
            bool(outcome.heard) or resumed is None or (resumed - end > RESUMED_WITHIN_S)
        )
    return outcome


# ---- the report ---------------------------------------------------------------------------


def report(outcomes: list[Outcome]) -> None:
    judged = [o for o in outcomes if o.verdict is not None and o.kind != "barge"]
    seeds = sorted({o.seed for o in outcomes})
    print(
        f"\nper group, {len(seeds)} take(s) of each turn (seeds {seeds}); right % over all "
        "plays; steady = turns right on every take; flip = turns whose takes disagree"
    )
    print(TABLE_HEAD)
    groups = sorted({o.group for o in judged})
    for group in groups:
        print(tally_line(group, tally(o for o in judged if o.group == group)))
    print(
        "\nper condition (goals: ≥ 95 % right at 16 and 22 dB and on paused answers; plain "
        "answers p50 within 30 ms of before)"
    )
    print(TABLE_HEAD)
    for name, members in CONDITIONS.items():
        chosen = [o for o in judged if o.group in members]
        if chosen:
            print(tally_line(name, tally(chosen)))
    background = [o for o in judged if o.kind == "background"]
    if background:
        print("\nbackground talk (goal: no prompt stopped at 16 dB or more under the caller)")
        for group in sorted({o.group for o in background}):
            t = tally(o for o in background if o.group == group)
            print(f"  {group}: prompt stopped by background {t.prompt_stopped}/{t.plays}, "
                  f"wrong on a background word {t.from_background}/{t.plays}, caller started "
                  f"during the greeting (timing) {t.over_greeting}/{t.plays}")  # fmt: skip
    flipped = tally(judged).flipped
    if flipped:
        print("\nturns whose verdict differs between takes (handled by luck):")
        for name in flipped:
            verdicts = [f"{o.seed}:{o.verdict}" for o in judged if o.file == name]
            print(f"  {name}: {', '.join(verdicts)}")
    wrong = [o for o in judged if o.verdict != "right"]
    if wrong:
        print("\nnot right:")
        for o in wrong:
            print(f"  {o.file} take {o.seed}: {o.verdict}, took {o.value!r}, heard {o.heard}")
    for language in sorted({o.language for o in judged}):
        paused = [o for o in judged if o.language == language
                  and ("pause" in o.group or "carrier" in o.group)]  # fmt: skip
        if paused:
            which = "the paused turns" + ("" if language == "en" else f" ({language})")
            cut = [o for o in paused if o.cut_off]
            print(f"\nfalse cut-offs on {which}: {len(cut)}/{len(paused)} "
                  f"({100 * len(cut) / len(paused):.1f} %)")  # fmt: skip
    for condition, what in (("plain answers", "menu, yes/no, digits"),
                            ("ru plain answers", "Russian menu, yes/no, digits")):  # fmt: skip
        complete = [o.voice_to_voice_ms for o in judged if o.group in CONDITIONS[condition]
                    and o.voice_to_voice_ms is not None]  # fmt: skip
        if complete:
            print(f"complete answers ({what}): p50 {statistics.median(complete):.0f} ms, "
                  f"p95 {percentile(complete, 0.95):.0f} ms, n {len(complete)}")  # fmt: skip
    for reference, other in LANGUAGE_COMPARISONS:
        compared = latency_comparison(judged, reference, other)
        if compared:
            print(f"voice to voice, {compared} (goal: within 100 ms)")
    texts = [o for o in judged if o.kind == "text" and o.voice_to_voice_ms is not None]
    for name, chosen in (("all", texts), ("Allison", [o for o in texts if o.human]),
                         ("espeak-ng", [o for o in texts if not o.human])):  # fmt: skip
        times = [o.voice_to_voice_ms for o in chosen if o.voice_to_voice_ms is not None]
        if times:
            print(f"free text, {name}: p50 {statistics.median(times):.0f} ms, p95 "
                  f"{percentile(times, 0.95):.0f} ms, n {len(times)}")  # fmt: skip
    barges = [o for o in outcomes if o.kind == "barge"]
    stops = [o.barge_stop_ms for o in barges if o.barge_stop_ms is not None]
    if stops:
        print(f"barge-in stop (voice onset → bot's last packet): p50 "
              f"{statistics.median(stops):.0f} ms, p95 {percentile(stops, 0.95):.0f} ms, "
              f"n {len(stops)}; routed right {sum(o.verdict == 'right' for o in barges)}"
              f"/{len(barges)}")  # fmt: skip
    noises = [o for o in outcomes if o.kind == "noise"]
    if noises:
        lost = [o for o in noises if o.prompt_lost]
        print(f"prompts lost to noise: {len(lost)}/{len(noises)}"
              + "".join(f"\n  {o.file} take {o.seed}: heard {o.heard}" for o in lost))  # fmt: skip


# ---- running ------------------------------------------------------------------------------


def start_bot(log: Path) -> subprocess.Popen[bytes]:
    overrides = {
        "VOICEBOT_ARI_APP": "voicebot-turns",
        "VOICEBOT_DIALOG_SCRIPTS_DIR": str(TURNS / "scripts"),
        "VOICEBOT_DIALOG_DEFAULT_SCRIPT": "311",
        "VOICEBOT_MEDIA_PORT_MIN": "42300",
        "VOICEBOT_MEDIA_PORT_MAX": "42399",
    }
    return start_sandbox_bot(REPO, overrides, log, HTTP_PORT, "bench-endpointing")


def calls_of(label: dict[str, Any], seeds: int, barge_rounds: int) -> int:
    return barge_rounds if label["kind"] == "barge" else seeds


def estimate_s(labels: list[dict[str, Any]], seeds: int, barge_rounds: int, rounds: int) -> float:
    """About how long the run takes: each call's waits, audio, answer and overhead."""
    total = 0.0
    for label in labels:
        if label["kind"] == "barge":
            one = TALK_OVER_AT_S + label["duration_s"] + ANSWER_S
        elif label["kind"] == "noise":
            one = TALK_OVER_AT_S + label["duration_s"] + 4.0
        elif label["kind"] == "background":
            one = GREETING_END_FALLBACK_S + CALLER_AFTER_GREETING_S
            one += label["duration_s"] - label["speech_start_s"] + ANSWER_S
        else:
            one = GREETING_S + label["duration_s"] + ANSWER_S
        total += (one + CALL_OVERHEAD_S) * calls_of(label, seeds, barge_rounds)
    if any(label["kind"] == "background" for label in labels):
        total += REFERENCE_LISTEN_S + CALL_OVERHEAD_S
    return total * rounds


def load_labels(sets: list[Path]) -> list[dict[str, Any]]:
    """The labels of every turn set (a directory with labels.json and the WAVs), each with the
    ``path`` of its WAV; file names must differ between the sets."""
    labels: list[dict[str, Any]] = []
    seen: dict[str, Path] = {}
    for directory in sets:
        try:
            entries = json.loads((directory / "labels.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SystemExit(f"bench-endpointing: {directory}: no turn set ({exc})") from None
        for label in entries:
            if label["file"] in seen:
                raise SystemExit(f"bench-endpointing: {label['file']} is in both "
                                 f"{seen[label['file']]} and {directory}")  # fmt: skip
            seen[label["file"]] = directory
            labels.append({**label, "path": str(directory / label["file"])})
    return labels


def select(labels: list[dict[str, Any]], groups: list[str], kinds: list[str], limit: int | None
           ) -> list[dict[str, Any]]:  # fmt: skip
    """The turns to play: of the named groups (or aliases) and kinds, at most ``limit`` of each
    group (the first ones in labels.json)."""
    known = {label["group"] for label in labels}
    wanted: set[str] = set()
    for name in groups:
        members = GROUP_ALIASES.get(name, (name,))
        unknown = [m for m in members if m not in known]
        if unknown:
            aliases = {a for a, members in GROUP_ALIASES.items() if known.issuperset(members)}
            choices = ", ".join(sorted(known | aliases))
            raise SystemExit(f"bench-endpointing: no group {name!r} in the turn sets given "
                             f"(--turns; groups: {choices})")  # fmt: skip
        wanted.update(members)
    chosen = [label for label in labels
              if (not wanted or label["group"] in wanted)
              and (not kinds or label["kind"] in kinds)]  # fmt: skip
    if limit is not None:
        counts: dict[str, int] = {}
        kept = []
        for label in chosen:
            counts[label["group"]] = counts.get(label["group"], 0) + 1
            if counts[label["group"]] <= limit:
                kept.append(label)
        chosen = kept
    return chosen


async def run(labels: list[dict[str, Any]], args: argparse.Namespace, workdir: Path
              ) -> list[Outcome]:  # fmt: skip
    outcomes: list[Outcome] = []
    greeting: Greeting | None = None
    for round_index in range(args.rounds):
        for index, label in enumerate(labels):
            where = workdir / f"{round_index}-{index}"
            pcm = read_wav_8k(Path(label["path"]))
            if label["kind"] == "barge":
                for n in range(args.barge_rounds):
                    at = TALK_OVER_AT_S + 0.73 * n
                    played = take(pcm, n % args.seeds)
                    outcome = await over_the_prompt(label, played, where / str(n), at)
                    outcomes.append(outcome)
                    print(f"  {label['file']:<44} take {played.seed} over the prompt at "
                          f"{at:.1f} s: stopped after {outcome.barge_stop_ms} ms, heard "
                          f"{outcome.heard}")  # fmt: skip
                continue
            for seed in range(args.seeds):
                played = take(pcm, seed)
                here = where / f"seed{seed}"
                if label["kind"] == "noise":
                    outcome = await over_the_prompt(label, played, here, TALK_OVER_AT_S)
                    print(f"  {label['file']:<44} take {seed} prompt "
                          f"{'LOST' if outcome.prompt_lost else 'went on'}, heard "
                          f"{outcome.heard}")  # fmt: skip
                    outcomes.append(outcome)
                    continue
                if label["kind"] == "background":
                    if greeting is None:
                        greeting = await reference_greeting(workdir / "reference")
                    outcome = await background_turn(label, played, here, greeting)
                else:
                    outcome = await answer_turn(label, played, here)
                flags = "" if outcome.verdict == "right" else f" {str(outcome.verdict).upper()}"
                flags += " CUT OFF" if outcome.cut_off else ""
                flags += " PROMPT STOPPED" if outcome.prompt_stopped else ""
                print(f"  {label['file']:<44} take {seed} {outcome.voice_to_voice_ms} ms, "
                      f"heard {outcome.heard}{flags}")  # fmt: skip
                outcomes.append(outcome)
    return outcomes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="takes of each turn: seed 0 is the file as it is (default 3)",
    )
    parser.add_argument(
        "--groups",
        action="append",
        default=[],
        metavar="GROUP",
        help="a group of labels.json (menu, menu-carrier, background-16db, ...) "
        "or plain, paused, background, ru-plain, ru (repeatable; default: all)",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="KIND",
        help="menu, yes_no, digits, number, text, noise, barge or background (repeatable)",
    )
    parser.add_argument(
        "--limit", type=int, default=None, metavar="N", help="at most N turns of each group"
    )
    parser.add_argument(
        "--turns",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="a turn set: labels.json and its WAVs (repeatable; default tests/fixtures/turns; "
        "tests/fixtures/turns-ru is the Russian one)",
    )
    parser.add_argument("--rounds", type=int, default=1, help="times through the whole set")
    parser.add_argument("--barge-rounds", type=int, default=5, help="calls per barge-in turn")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the turns, the number of calls and the time it would take",
    )
    args = parser.parse_args()  # fmt: skip
    if args.seeds < 1 or args.rounds < 1 or args.barge_rounds < 0 or (args.limit or 1) < 1:
        parser.error("--seeds, --rounds and --limit need at least 1, --barge-rounds 0 or more")
    labels = select(load_labels(args.turns or [TURNS]), args.groups, args.only, args.limit)
    if not labels:
        parser.error("no turn is in the chosen groups and kinds")
    for label in labels:
        try:
            extension_for(label)
        except ValueError as exc:
            parser.error(str(exc))
    calls = sum(calls_of(label, args.seeds, args.barge_rounds) for label in labels) * args.rounds
    minutes = estimate_s(labels, args.seeds, args.barge_rounds, args.rounds) / 60
    print(f"bench-endpointing: {len(labels)} turns, {calls} calls, about {minutes:.0f} min")
    if args.dry_run:
        for group in sorted({label["group"] for label in labels}):
            names = [label["file"] for label in labels if label["group"] == group]
            print(f"  {group}: {len(names)} turns")
        return 0
    workdir = REPO / ".state" / "bench-endpointing"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    bot = start_bot(workdir / "voicebot.log")
    started = time.monotonic()
    try:
        outcomes = asyncio.run(run(labels, args, workdir))
    except VoicebotError as exc:
        print(f"bench-endpointing: failed: {exc} (bot log, sipp files: {workdir})",
              file=sys.stderr)  # fmt: skip
        return 1
    finally:
        bot.terminate()
        bot.wait(timeout=30)
    report(outcomes)
    print(f"\n{calls} calls in {(time.monotonic() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
