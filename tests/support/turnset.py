"""Checks shared by the tests of the labelled caller-turn sets (tests/fixtures/turns/ and
tests/fixtures/turns-ru/): the level of each 10 ms frame, that the speech, its edges and its
pauses are where a turn's label says, and what the bench's scripts make of a turn's text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from voicebot.dialog.engine import CallStarted, Heard, Recognized, SlotFilled, step
from voicebot.dialog.model import Script
from voicebot.dialog.parser import load_script

# The bench's bot has one scripts directory: 31X English, 32X Russian.
SCRIPTS = Path(__file__).resolve().parents[1] / "fixtures" / "turns" / "scripts"

RATE = 8000
FRAME = RATE // 100  # 10 ms
SILENT_DBFS = -45.0  # after voice_end_s and inside pauses every 10 ms frame stays below this
VOICED_DBFS = -50.0  # the frames at the edges of the speech are above this
MIN_PAUSE_S = 0.2  # any silence this long inside a turn is listed in pauses_s


def frame_dbfs(pcm: np.ndarray) -> np.ndarray:
    """RMS of each whole 10 ms frame, in dBFS (digital silence: -200)."""
    count = pcm.size // FRAME
    frames = pcm[: count * FRAME].reshape(count, FRAME).astype(np.float64)
    rms = np.sqrt(np.mean(frames**2, axis=1))
    return 20 * np.log10(np.maximum(rms, 1e-10 * 32768) / 32768)


def frames_between(db: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    return db[round(start_s * 100) : round(end_s * 100)]


def level_db(pcm: np.ndarray, *spans: tuple[float, float]) -> float:
    """Mean power over ``spans`` (seconds) in dB: the turn set's measure of a speaker's level."""
    parts = [pcm[round(a * RATE) : round(b * RATE)].astype(np.float64) for a, b in spans]
    samples = np.concatenate(parts)
    return float(10 * np.log10(np.mean(samples**2)))


def on_the_grid(label: dict[str, Any]) -> bool:
    """Whether every time the label gives is on the 10 ms grid the construction uses."""
    times = [label["speech_start_s"], label["voice_end_s"]]
    times += [t for pause in label["pauses_s"] for t in pause]
    times += [label[k] for k in ("background_start_s", "background_end_s") if label.get(k)]
    return all(abs(t * 100 - round(t * 100)) < 1e-6 for t in times)


def assert_edges_and_pauses(label: dict[str, Any], pcm: np.ndarray) -> None:
    """Silence before the first and after the last sound (the caller's or the background's),
    voice at the labelled edges of the caller's speech, silence in each labelled pause and
    nowhere else inside the caller's speech."""
    name = label["file"]
    db = frame_dbfs(pcm)
    start, end = label["speech_start_s"], label["voice_end_s"]
    first = min(start, label.get("background_start_s") or start)
    last = max(end, label.get("background_end_s") or end)
    assert np.all(frames_between(db, 0, first) < SILENT_DBFS)
    assert np.all(frames_between(db, last, label["duration_s"]) < SILENT_DBFS), (
        f"{name}: sound after voice_end_s / background_end_s"
    )
    assert frames_between(db, start, start + 0.01)[0] > VOICED_DBFS
    if label.get("background_start_s") is not None:
        # The background (far quieter than the caller) is talking from its first 50 ms.
        alone = level_db(pcm, (first, start), (end, last)) - 20 * np.log10(32768)
        assert np.max(frames_between(db, first, first + 0.05)) > alone - 20
    assert frames_between(db, end - 0.01, end)[0] > VOICED_DBFS, f"{name}: voice ends earlier"
    previous = start
    for pause_start, pause_end in label["pauses_s"]:
        assert previous < pause_start < pause_end < end
        assert pause_end - pause_start >= MIN_PAUSE_S
        assert np.all(frames_between(db, pause_start, pause_end) < SILENT_DBFS)
        assert frames_between(db, pause_start - 0.01, pause_start)[0] > VOICED_DBFS
        assert frames_between(db, pause_end, pause_end + 0.01)[0] > VOICED_DBFS
        previous = pause_end
    # Every long stretch without voice inside the turn is one of the listed pauses (a clip's
    # faded last frame may sit between VOICED_DBFS and SILENT_DBFS: it is voice).
    inside = frames_between(db, start, end) <= VOICED_DBFS
    run = 0
    for index, silent in enumerate([*inside, False]):
        if silent:
            run += 1
            continue
        if run * 0.01 >= MIN_PAUSE_S:
            gap = [round(start + (index - run) * 0.01, 3), round(start + index * 0.01, 3)]
            assert gap in label["pauses_s"], f"{name}: unlabelled silence {gap}"
        run = 0


def script(extension: str) -> Script:
    """The bench's script for ``extension`` (tests/fixtures/turns/scripts/NNN.yaml)."""
    return load_script(SCRIPTS / f"{extension}.yaml")


def answer_of(extension: str, text: str) -> str | None:
    """What the dialog of ``extension`` ends up with when the caller says ``text``."""
    dialog_script = script(extension)
    dialog, _ = step(dialog_script, None, CallStarted({}))
    _, actions = step(dialog_script, dialog, Heard(text))
    filled = [a.value for a in actions if isinstance(a, SlotFilled)]
    if filled:
        return filled[0]
    chosen = [a.intent for a in actions if isinstance(a, Recognized) and a.intent is not None]
    return chosen[0] if chosen else None
