"""Seeded takes of a caller turn (voicebot/tools/takes.py): the same seed gives the same take,
other seeds other takes, and every take is the turn itself, inaudibly changed."""

from __future__ import annotations

import numpy as np
import pytest

from voicebot.tools.takes import MAX_GAIN_DB, MAX_LEAD_S, NOISE_FLOOR_DBFS, RATE, take


def a_turn() -> np.ndarray:
    """0.3 s of zeros, 0.5 s of a 440 Hz tone at -10 dBFS, 0.3 s of zeros."""
    t = np.arange(round(0.5 * RATE)) / RATE
    tone = 0.316 * 32767 * np.sin(2 * np.pi * 440 * t)
    silence = np.zeros(round(0.3 * RATE))
    return np.round(np.concatenate([silence, tone, silence])).astype(np.int16)


def dbfs(samples: np.ndarray) -> float:
    values = samples.astype(np.float64)
    return float(10 * np.log10(np.mean(values**2)) - 20 * np.log10(32768))


def test_seed_zero_is_the_file_itself() -> None:
    pcm = a_turn()
    played = take(pcm, 0)
    assert played.seed == 0 and played.lead_s == 0.0
    assert np.array_equal(played.pcm, pcm)
    assert played.pcm is not pcm  # a copy: the caller may change it


@pytest.mark.parametrize("seed", [1, 2, 7, 1000])
def test_the_same_seed_gives_the_same_take(seed: int) -> None:
    first, again = take(a_turn(), seed), take(a_turn(), seed)
    assert first.lead_s == again.lead_s
    assert first.pcm.tobytes() == again.pcm.tobytes()


def test_other_seeds_give_other_takes() -> None:
    takes = [take(a_turn(), seed) for seed in range(1, 9)]
    assert len({t.pcm.tobytes() for t in takes}) == len(takes)
    assert len({t.lead_s for t in takes}) > 1  # the packets cut the speech in other places


@pytest.mark.parametrize("seed", range(1, 13))
def test_a_take_is_the_turn_inaudibly_changed(seed: int) -> None:
    pcm = a_turn()
    played = take(pcm, seed)
    lead = round(played.lead_s * RATE)
    assert lead == played.lead_s * RATE  # whole samples
    assert 0 <= played.lead_s <= MAX_LEAD_S
    assert played.pcm.dtype == np.int16 and played.pcm.size == pcm.size + lead
    # Where the file is silent the take has the line's noise floor, nothing louder.
    assert dbfs(played.pcm[: lead + round(0.3 * RATE)]) == pytest.approx(NOISE_FLOOR_DBFS, abs=1)
    # Where it talks, the same sound within the gain's half dB; what differs is far below it.
    body = played.pcm[lead:].astype(np.float64)
    gain = float(np.dot(body, pcm) / np.dot(pcm.astype(np.float64), pcm))
    assert abs(20 * np.log10(gain)) <= MAX_GAIN_DB + 0.01
    assert dbfs(body - gain * pcm) < NOISE_FLOOR_DBFS + 1


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match="int16"):
        take(np.zeros(10, dtype=np.float32), 1)
    with pytest.raises(ValueError, match="int16"):
        take(np.zeros(0, dtype=np.int16), 1)
    with pytest.raises(ValueError, match="seed"):
        take(a_turn(), -1)
    with pytest.raises(ValueError, match="seed"):
        take(a_turn(), 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        take(a_turn(), True)
