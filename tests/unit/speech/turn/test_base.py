"""The end-of-turn interface's own behaviour: one turn scored as a batch of one, and a verdict
at a voice end averaged over cuts around it, on recorded speech."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from tests.support.audio import ALLISON
from tests.support.doubles import RecordingDetector
from voicebot.capture.wav import read_wav
from voicebot.media import levels
from voicebot.media.codecs import resample
from voicebot.speech.turn.base import END_JITTER_S, TurnDetector


class TelephoneDetector(RecordingDetector):
    """A detector that reads 8 kHz audio."""

    sample_rate = 8000


def hello_world(rate: int) -> np.ndarray:
    pcm, recorded_at = read_wav(ALLISON / "hello-world.wav")
    return resample(pcm, recorded_at, rate)


def test_a_detector_is_16_khz_and_healthy_unless_it_says_otherwise() -> None:
    detector = RecordingDetector()
    assert detector.sample_rate == 16000
    assert detector.status() == {"loaded": True, "workers_alive": True, "queued": 0}


async def test_one_turn_is_a_batch_of_one() -> None:
    detector = RecordingDetector()
    pcm = hello_world(16000)
    assert await detector.probability_complete(pcm) == pytest.approx(pcm.size / 10_000)
    assert detector.asked == [pcm.size]


@pytest.mark.parametrize("rate", [16000, 8000])
async def test_the_verdict_at_a_spoken_voice_end_is_the_mean_of_three_cuts(rate: int) -> None:
    detector = RecordingDetector() if rate == 16000 else TelephoneDetector()
    pcm = hello_world(rate)
    voice_end = round(levels.speech_end_s(pcm, rate) * rate)
    assert 0 < voice_end < pcm.size  # the recording goes on with silence after the words
    step = round(END_JITTER_S * rate)  # 20 ms at the detector's own rate
    averaged = await detector.probability_complete_at(pcm, voice_end)
    cuts = [voice_end - step, voice_end, voice_end + step]
    assert detector.asked == cuts
    assert averaged == pytest.approx(float(np.mean(cuts)) / 10_000)


@pytest.mark.parametrize(
    ("size", "voice_end", "cuts"),
    [
        (1, 1, [1]),  # one sample: one cut
        (8000, 0, [1, 321]),  # no voice yet: the first sample, and 20 ms on
        (8000, -5, [1, 321]),
    ],
)
async def test_cuts_stay_within_the_audio(size: int, voice_end: int, cuts: list[int]) -> None:
    detector = RecordingDetector()
    await detector.probability_complete_at(np.zeros(size, np.int16), voice_end)
    assert detector.asked == cuts


async def test_a_detector_must_score_turns() -> None:
    class NoScores(TurnDetector):
        name = "incomplete"

        async def load(self) -> None:
            pass

        async def close(self) -> None:
            pass

    with pytest.raises(TypeError, match="probabilities_complete"):
        NoScores()  # type: ignore[abstract]


class ConstantDetector(RecordingDetector):
    """Scores every cut alike, whatever its length."""

    async def probabilities_complete(self, turns: Sequence[np.ndarray]) -> list[float]:
        await super().probabilities_complete(turns)
        return [0.7 for _ in turns]


async def test_a_verdict_is_a_plain_float() -> None:
    verdict = await ConstantDetector().probability_complete_at(hello_world(16000), 8000)
    assert type(verdict) is float and verdict == pytest.approx(0.7)


@pytest.mark.parametrize(
    ("size", "voice_end", "cuts"),
    [
        (8000, 4000, [3680, 4000, 4320]),  # 20 ms either side at 16 kHz
        (4100, 4000, [3680, 4000, 4100]),  # no audio after the end: the cut stops there
        (8000, 100, [1, 100, 420]),  # nothing before the start
        (8000, 9000, [7680, 8000]),  # an end past the audio is the audio's end
    ],
)
async def test_cuts_around_the_voice_end(size: int, voice_end: int, cuts: list[int]) -> None:
    detector = RecordingDetector()
    averaged = await detector.probability_complete_at(np.zeros(size, np.int16), voice_end)
    assert detector.asked == cuts
    assert averaged == pytest.approx(sum(cuts) / len(cuts) / 10_000)


async def test_a_verdict_needs_audio() -> None:
    with pytest.raises(ValueError, match="mono"):
        await RecordingDetector().probability_complete_at(np.zeros(0, np.int16), 0)
    with pytest.raises(ValueError, match="mono"):
        await RecordingDetector().probability_complete_at(np.zeros((2, 10), np.int16), 5)
