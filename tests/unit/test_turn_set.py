"""The endpointing bench's caller turns (tests/fixtures/turns/, made by scripts/make-turn-set.py):
the labels fit the audio (pauses where labelled, the background talk really ``background_db``
under the caller), they still do in every seeded take the bench plays, the dialog scripts take
each turn's answer, and (slow) whisper tiny.en hears each speech file's answer after the G.711
μ-law round trip the bot's audio goes through.
"""

from __future__ import annotations

import json
import re
import wave
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.turnset import (
    FRAME,
    RATE,
    SCRIPTS,
    SILENT_DBFS,
    answer_of,
    assert_edges_and_pauses,
    frame_dbfs,
    level_db,
    on_the_grid,
    script,
)
from voicebot.dialog.numbers import parse_digits, parse_number, parse_yes_no
from voicebot.dialog.parser import load_script
from voicebot.media.codecs import resample
from voicebot.media.g711 import ulaw_decode, ulaw_encode
from voicebot.speech.asr.whisper import WhisperEngine
from voicebot.tools.sip import read_wav_8k
from voicebot.tools.takes import take

TURNS = Path(__file__).resolve().parents[1] / "fixtures" / "turns"
LABELS: list[dict[str, Any]] = json.loads((TURNS / "labels.json").read_text())
BY_FILE = {label["file"]: label for label in LABELS}
SPEECH = [label["file"] for label in LABELS if label["kind"] != "noise"]

KEYS = {
    "file", "group", "kind", "text", "answer", "digits_length", "duration_s",
    "speech_start_s", "voice_end_s", "pauses_s", "source", "background_db",
    "background_start_s", "background_end_s", "background_text",
}  # fmt: skip
BACKGROUND_KEYS = ("background_db", "background_start_s", "background_end_s", "background_text")
GROUPS = {
    "menu": "menu", "menu-pause": "menu", "menu-carrier": "menu", "yes-no": "yes_no",
    "digits": "digits", "digits-pause": "digits", "digits-carrier": "digits",
    "number": "number", "number-pause": "number", "text": "text", "text-pause": "text",
    "noise": "noise", "barge": "barge", "background-10db": "background",
    "background-16db": "background", "background-22db": "background",
}  # fmt: skip
CARRIER_PAUSES_S = (0.3, 0.5, 0.8, 1.0)
INTENTS = {"hours", "balance", "operator", "extension"}
BACKGROUNDS = [label["file"] for label in LABELS if label["kind"] == "background"]
# The background's level, measured where it plays alone, is background_db under the caller's
# (estimated from the mix where both talk) within this.
LEVEL_TOLERANCE_DB = 1.0
SEEDS = (1, 2, 3)
ARTICLES = {"a", "an", "the"}  # whisper may swap or drop them ("an operator" -> "A operator.")


def extension_for(label: dict[str, Any]) -> str:
    """The dialog script (extension) the bench plays this turn to."""
    kind = label["kind"]
    if kind == "digits":
        return {3: "313", 4: "314"}[label["digits_length"]]
    return {
        "menu": "311", "yes_no": "312", "number": "315", "text": "316", "noise": "317",
        "barge": "317", "background": "318",
    }[kind]  # fmt: skip


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


# ---- labels and files ------------------------------------------------------------------


def test_every_file_is_labelled_once_and_vice_versa() -> None:
    files = [label["file"] for label in LABELS]
    assert len(files) == len(set(files))
    assert set(files) == {p.name for p in TURNS.glob("*.wav")}


def test_the_set_is_big_enough_and_small() -> None:
    groups = {label["group"] for label in LABELS}
    assert groups == set(GROUPS)
    assert len(LABELS) >= 130
    assert sum(p.stat().st_size for p in TURNS.iterdir() if p.is_file()) < 7_000_000


@pytest.mark.parametrize("name", sorted(BY_FILE))
def test_label_fits_the_file(name: str) -> None:
    label = BY_FILE[name]
    assert set(label) == KEYS
    with wave.open(str(TURNS / name), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        frames = w.getnframes()
    assert label["duration_s"] == pytest.approx(frames / RATE, abs=1 / RATE)
    start, end = label["speech_start_s"], label["voice_end_s"]
    assert 0.05 <= start < end <= label["duration_s"] - 0.05
    assert GROUPS[label["group"]] == label["kind"]
    kind, answer = label["kind"], label["answer"]
    if kind == "noise":
        assert (label["text"], answer) == ("", None)
    elif kind in ("menu", "barge", "background"):
        assert answer in INTENTS
        assert answer in words(label["text"])
    elif kind == "yes_no":
        assert answer in ("yes", "no")
    elif kind in ("digits", "number"):
        assert answer.isdigit()
    else:
        assert answer == label["text"]
    assert label["digits_length"] == (len(answer) if kind == "digits" else None)
    if kind != "background":
        assert [label[key] for key in BACKGROUND_KEYS] == [None] * len(BACKGROUND_KEYS)
        return
    assert label["group"] == f"background-{label['background_db']}db"
    assert label["background_start_s"] + 0.9 < start < end < label["background_end_s"]
    assert label["background_end_s"] <= label["duration_s"] - 0.05
    # Someone else: never the caller's answer, always some other menu word.
    said_behind = set(words(label["background_text"]))
    assert answer not in said_behind
    assert said_behind & (INTENTS - {answer})


@pytest.mark.parametrize("name", sorted(BY_FILE))
def test_speech_edges_and_pauses_are_where_the_labels_say(name: str) -> None:
    label = BY_FILE[name]
    assert on_the_grid(label)
    assert_edges_and_pauses(label, read_wav_8k(TURNS / name))


def background_under_caller_db(label: dict[str, Any], pcm: np.ndarray) -> float:
    """How far the background's level (where it plays alone) is under the caller's (where
    both talk, less the background's power)."""
    start, end = label["speech_start_s"], label["voice_end_s"]
    alone = level_db(pcm, (label["background_start_s"], start), (end, label["background_end_s"]))
    both = level_db(pcm, (start, end))
    caller = 10 * np.log10(10 ** (both / 10) - 10 ** (alone / 10))
    return float(caller - alone)


def test_there_are_background_turns_at_every_level() -> None:
    levels = [BY_FILE[name]["background_db"] for name in BACKGROUNDS]
    assert sorted(set(levels)) == [10, 16, 22]
    assert all(levels.count(db) >= 6 for db in (10, 16, 22))


@pytest.mark.parametrize("name", BACKGROUNDS)
def test_the_background_is_as_far_under_the_caller_as_labelled(name: str) -> None:
    label = BY_FILE[name]
    under = background_under_caller_db(label, read_wav_8k(TURNS / name))
    assert under == pytest.approx(label["background_db"], abs=LEVEL_TOLERANCE_DB)
    # It talks before the caller (during the bot's greeting) and after.
    assert label["speech_start_s"] - label["background_start_s"] >= 1.0
    assert label["background_end_s"] - label["voice_end_s"] >= 1.0


@pytest.mark.parametrize("seed", SEEDS)
def test_the_labels_hold_in_every_seeded_take(seed: int) -> None:
    """What the bench plays: each take's labelled times are ``lead_s`` later, and what they
    say (edges, pauses, the background's level) still holds."""
    for name in sorted(BY_FILE):
        label = BY_FILE[name]
        played = take(read_wav_8k(TURNS / name), seed)
        lead = round(played.lead_s * RATE)
        assert played.pcm.size == round(label["duration_s"] * RATE) + lead
        assert np.all(frame_dbfs(played.pcm[: lead - lead % FRAME]) < SILENT_DBFS)
        assert_edges_and_pauses(label, played.pcm[lead:])
        if label["kind"] == "background":
            under = background_under_caller_db(label, played.pcm[lead:])
            assert under == pytest.approx(label["background_db"], abs=LEVEL_TOLERANCE_DB)


@pytest.mark.parametrize("name", sorted(BY_FILE))
def test_group_shape(name: str) -> None:
    label = BY_FILE[name]
    pauses = [b - a for a, b in label["pauses_s"]]
    group = label["group"]
    if group == "digits":
        assert pauses == pytest.approx([0.25] * (label["digits_length"] - 1))
    elif group == "digits-pause":
        assert len(pauses) == label["digits_length"] - 1
        assert min(pauses) >= 0.5 - 1e-6
    elif group.endswith("-pause"):
        assert pauses and min(pauses) >= 0.3 - 1e-6
    elif group.endswith("-carrier"):
        # The carrier's pause (named in the file name) first, then (Allison's digits, clips
        # of their own) the fluent digits' gaps.
        assert pauses[0] == pytest.approx(carrier_pause_s(name))
        assert pauses[1:] == pytest.approx([0.25] * (len(pauses) - 1))
    elif group != "noise":
        assert pauses == []
    if label["kind"] == "noise":
        peak = np.max(np.abs(read_wav_8k(TURNS / name).astype(np.int32))) / 32768
        assert 20 * np.log10(peak) > -25


def carrier_pause_s(name: str) -> float:
    found = re.fullmatch(r"(menu|digits)-carrier(\d+)-.+\.wav", name)
    assert found, f"{name}: not a carrier turn's name"
    return int(found.group(2)) / 1000


def test_paused_answers_meet_every_pause_with_every_answer() -> None:
    menu = [(carrier_pause_s(n), BY_FILE[n]["answer"]) for n in BY_FILE
            if BY_FILE[n]["group"] == "menu-carrier"]  # fmt: skip
    assert sorted(menu) == sorted((p, i) for p in CARRIER_PAUSES_S for i in INTENTS)
    digits = [carrier_pause_s(n) for n in BY_FILE if BY_FILE[n]["group"] == "digits-carrier"]
    assert sorted(digits) == sorted(CARRIER_PAUSES_S * 4)
    # Several carrier phrases before each pause: what is said before it differs.
    for group in ("menu-carrier", "digits-carrier"):
        for pause in CARRIER_PAUSES_S:
            befores = {" ".join(words(BY_FILE[n]["text"])[:2]) for n in BY_FILE
                       if BY_FILE[n]["group"] == group and carrier_pause_s(n) == pause}  # fmt: skip
            assert len(befores) == 4, (group, pause, befores)


# ---- dialog scripts --------------------------------------------------------------------


def test_there_is_a_script_per_extension() -> None:
    # 321, 322 and 324 are the Russian set's (tests/unit/test_turn_set_ru.py).
    assert {p.stem for p in SCRIPTS.glob("31?.yaml")} == {str(n) for n in range(311, 319)}
    for path in SCRIPTS.glob("31?.yaml"):
        assert load_script(path).states


@pytest.mark.parametrize("name", SPEECH)
def test_the_script_takes_the_turns_text(name: str) -> None:
    label = BY_FILE[name]
    assert answer_of(extension_for(label), label["text"]) == label["answer"]


# ---- what whisper hears ----------------------------------------------------------------


def heard_wrong(label: dict[str, Any], heard: str) -> str | None:
    """Why what whisper heard is not the turn's answer for the dialog (None: it is)."""
    kind, answer = label["kind"], label["answer"]
    problem = f"{label['file']}: said {label['text']!r}, whisper heard {heard!r}"
    if kind == "digits" and parse_digits(heard) != answer:
        return problem
    if kind == "number" and parse_number(heard) != int(answer):
        return problem
    if kind == "yes_no" and parse_yes_no(heard) is not (answer == "yes"):
        return problem
    if kind == "text" and set(words(label["text"])) - set(words(heard)) - ARTICLES:
        return problem
    # The dialog takes it: the intent or slot value (a text slot holds what was heard).
    expected = heard.strip() if kind == "text" else answer
    return None if answer_of(extension_for(label), heard) == expected else problem


def expected_phrases(extension: str) -> list[str]:
    """What the state a turn answers expects (the call hands these to the recognizer)."""
    start = script(extension).states[script(extension).start]
    return [phrase for intent in start.expect for phrase in intent.phrases]


# Whisper tiny.en's int8 kernels differ between CPUs: borderline words come out differently on
# another machine ("I would like" as "I will like", "forty two" as "4D2" on an AMD EPYC where
# an earlier machine heard every turn). The set must stay intelligible as a whole.
MAX_MISHEARD = 3


async def misheard(whisper: WhisperEngine, names: list[str], seed: int) -> list[str]:
    """What whisper got wrong of take ``seed`` of each turn, through G.711 μ-law. Of a
    background turn it hears the caller's span only (what a bot that tells the caller's voice
    from the room's would decode): the whole file has the background's words too."""
    wrong = []
    for name in names:
        label = BY_FILE[name]
        played = take(read_wav_8k(TURNS / name), seed)
        pcm = ulaw_decode(ulaw_encode(played.pcm))
        if label["kind"] == "background":
            start = round((played.lead_s + label["speech_start_s"]) * RATE)
            end = round((played.lead_s + label["voice_end_s"] + 0.1) * RATE)
            pcm = pcm[start:end]
        audio = resample(pcm, RATE, whisper.sample_rate)
        transcript = await whisper.transcribe(
            audio, expected=expected_phrases(extension_for(label))
        )
        problem = heard_wrong(label, transcript.text)
        if problem:
            wrong.append(f"take {seed}: {problem}")
    return wrong


@pytest.mark.slow
async def test_whisper_hears_the_turn_set(whisper: WhisperEngine) -> None:
    wrong = await misheard(whisper, SPEECH, 0)
    assert len(wrong) <= MAX_MISHEARD, "\n".join(wrong)


# The groups of issue 21 were chosen so that whisper hears every take the bench plays by
# default: a turn the recogniser itself gets only on some takes would flip for no fault of
# the turn-taking.
ROBUST_GROUPS = ("menu-carrier", "digits-carrier", "background-10db", "background-16db",
                 "background-22db")  # fmt: skip


@pytest.mark.slow
async def test_whisper_hears_the_new_conditions_on_every_take(whisper: WhisperEngine) -> None:
    names = [name for name in SPEECH if BY_FILE[name]["group"] in ROBUST_GROUPS]
    wrong = [problem for seed in (1, 2) for problem in await misheard(whisper, names, seed)]
    assert len(wrong) <= MAX_MISHEARD, "\n".join(wrong)
