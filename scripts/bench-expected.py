#!/usr/bin/env python3
"""How Whisper's forced fit of a state's expected phrases tells answers said from everything
else, on the labelled turn set (tests/fixtures/turns), with the bars the engine uses.

When the words whisper hears name none of the expected answers, the engine decodes each
expected phrase by force against the audio and takes one only if it fits
(voicebot/speech/asr/whisper.py, ``choose_expected``). This prints, over several seeded takes
of every turn (G.711 as a call delivers it, cut around the caller's voice):

  answers          menu turns (plain, paused, carrier phrases, background talk at 10/16/22
                   dB with the room before the caller silenced, as the call does) against the
                   menu's phrases, yes/no turns against yes and no
  must not take    off-script speech, noise, digits and numbers, the first half of a paused
                   answer, the room's talk alone before the caller speaks, yes/no answers
                   against the menu

and for each: how many reach the forced fit (the free decode named nothing), how many it
then takes right, takes wrong, or leaves; and the closest calls among what must not be taken.

    .venv/bin/python scripts/bench-expected.py             # 3 takes, about 6 min on 2 cores
    .venv/bin/python scripts/bench-expected.py --seeds 1
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from voicebot.config import load_config  # noqa: E402
from voicebot.media.codecs import resample  # noqa: E402
from voicebot.media.g711 import ulaw_decode, ulaw_encode  # noqa: E402
from voicebot.speech.asr.whisper import (  # noqa: E402
    PhraseFit,
    WhisperEngine,
    choose_expected,
    fit_agrees,
    needs_forced_fit,
)
from voicebot.tools.sip import read_wav_8k  # noqa: E402
from voicebot.tools.takes import take  # noqa: E402

TURNS = REPO / "tests" / "fixtures" / "turns"
RATE = 16000
YES_NO = {"yes": ["yes"], "no": ["no"]}


@dataclass
class Case:
    file: str
    seed: int
    group: str  # what it is: "answer: menu-pause", "not: first half", ...
    answer: str | None  # the answer said, None when nothing must be taken
    answers: dict[str, list[str]]
    audio: np.ndarray


def menu_answers() -> dict[str, list[str]]:
    script = yaml.safe_load((TURNS / "scripts" / "318.yaml").read_text())
    expect = script["states"]["main"]["expect"]
    return {name: list(spec["phrases"]) for name, spec in expect.items()}


def cases(label: dict[str, Any], seed: int, menu: dict[str, list[str]]) -> list[Case]:
    played = take(read_wav_8k(TURNS / label["file"]), seed)
    audio = resample(ulaw_decode(ulaw_encode(played.pcm)), 8000, RATE)

    def at(seconds: float) -> int:
        return max(0, int((seconds + played.lead_s) * RATE))

    def cut(start: float, end: float) -> np.ndarray:
        return audio[at(start) : at(end)]

    start, end, kind = label["speech_start_s"], label["voice_end_s"], label["kind"]
    made: list[tuple[str, str | None, dict[str, list[str]], np.ndarray]] = []
    if kind == "menu":
        said = cut(start - 0.2, end + 0.3)
        made.append((f"answer: {label['group']}", label["answer"], menu, said))
        if label["pauses_s"]:
            first_half = cut(start - 0.2, label["pauses_s"][0][0] + 0.2)
            made.append(("not: first half of a paused answer", None, menu, first_half))
    elif kind == "background":
        # The call silences the room before the caller rises out of it (call/voices.py).
        heard = audio.copy()
        heard[: at(start - 0.1)] = 0
        made.append((f"answer: {label['group']}", label["answer"], menu,
                     heard[at(start - 0.8) : at(end + 0.4)]))  # fmt: skip
        if start > 1.0:
            made.append(("not: the room alone", None, menu, cut(0.1, start - 0.15)))
    elif kind == "yes_no":
        said = cut(start - 0.2, end + 0.3)
        made.append(("answer: yes-no", label["answer"], YES_NO, said))
        made.append(("not: yes/no against the menu", None, menu, said))
    elif kind in ("text", "noise", "digits", "number"):
        made.append((f"not: {kind}", None, menu, audio))
        made.append((f"not: {kind} against yes/no", None, YES_NO, audio))
    return [
        Case(label["file"], seed, group, answer, answers, clip)
        for group, answer, answers, clip in made
        if len(clip) >= RATE // 10
    ]


def answer_of(phrase: str, answers: dict[str, list[str]]) -> str:
    return next(name for name, phrases in answers.items() if phrase in phrases)


def rival_lead(fits: list[PhraseFit], best: PhraseFit, answers: dict[str, list[str]]) -> float:
    mine = answer_of(best.phrase, answers)
    rivals = [f.mean for f in fits if answer_of(f.phrase, answers) != mine]
    return best.mean - max(rivals) if rivals else float("inf")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="takes of each turn (default 3)")
    args = parser.parse_args()
    labels = json.loads((TURNS / "labels.json").read_text())
    menu = menu_answers()
    engine = WhisperEngine(load_config(None).asr)
    await engine.load()
    tally: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    closest: list[tuple[float, str]] = []
    try:
        for label in labels:
            for seed in range(args.seeds):
                for case in cases(label, seed, menu):
                    phrases = [p for ps in case.answers.values() for p in ps]
                    heard = await engine.transcribe(case.audio)
                    counts = tally[case.group]
                    counts["turns"] += 1
                    if not needs_forced_fit(heard.text, heard.confidence, phrases):
                        continue
                    counts["forced"] += 1
                    fits = engine.phrase_fits(case.audio, phrases)
                    chosen = choose_expected(fits)
                    if chosen is not None and not fit_agrees(heard.text, chosen, phrases):
                        chosen = None
                    taken = None if chosen is None else answer_of(chosen.phrase, case.answers)
                    if taken is None:
                        counts["left"] += 1
                    elif taken == case.answer:
                        counts["right"] += 1
                    else:
                        counts["wrong"] += 1
                    if case.answer is None:
                        best = max(fits, key=lambda f: f.mean)
                        closest.append((best.mean, f"{case.file} take {case.seed} ({case.group}):"
                                        f" {best.phrase!r} {best.mean:.2f}, worst token "
                                        f"{best.worst:.2f}, leads the other answers by "
                                        f"{rival_lead(fits, best, case.answers):.2f}"))  # fmt: skip
    finally:
        await engine.close()
    print(f"{'':44} {'turns':>6} {'forced':>7} {'right':>6} {'wrong':>6} {'left':>6}")
    for group in sorted(tally):
        c = tally[group]
        print(f"{group:44} {c['turns']:6} {c['forced']:7} {c['right']:6} {c['wrong']:6} "
              f"{c['left']:6}")  # fmt: skip
    print("\nwhat must not be taken, closest by the best phrase's mean log-probability:")
    for _, line in sorted(closest, reverse=True)[:10]:
        print(f"  {line}")
    wrong = sum(c["wrong"] for c in tally.values())
    taken_wrongly = sum(c["right"] + c["wrong"] for g, c in tally.items() if g.startswith("not"))
    print(f"\nanswers taken wrong: {wrong}; things taken that were no answer: {taken_wrongly}")
    return 0


if __name__ == "__main__":
    import asyncio

    sys.exit(asyncio.run(main()))
