"""The recognition interface's own behaviour: what a recognizer and an engine do unless an
engine says otherwise, and the check that keeps audio in the wrong format out."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.audio import ALLISON
from tests.support.doubles import ListAsr
from voicebot.capture.wav import read_wav
from voicebot.speech.asr.base import AsrEngine, Transcript, check_pcm


def test_a_transcript_has_no_confidence_or_time_unless_given() -> None:
    transcript = Transcript("hours", is_final=True)
    assert (transcript.confidence, transcript.processing_s) == (None, 0.0)
    with pytest.raises(AttributeError):
        transcript.text = "changed"  # type: ignore[misc]


async def test_a_recognizer_that_cannot_peek_says_nothing_until_the_utterance_ends() -> None:
    recognizer = ListAsr(["hours"]).recognizer(["hours", "goodbye"])
    pcm, _rate = read_wav(ALLISON / "hours.wav")
    assert await recognizer.feed(pcm) is None
    assert await recognizer.peek() is None  # a batch engine decodes whole utterances only
    assert await recognizer.finish() == Transcript("hours", is_final=True)
    recognizer.close()  # holds nothing: closing is harmless, twice too
    recognizer.close()


def test_an_engine_is_batch_at_16_khz_and_healthy_unless_it_says_otherwise() -> None:
    engine = ListAsr([])
    assert (engine.sample_rate, engine.streaming) == (16000, False)
    assert engine.status() == {"loaded": True, "workers_alive": True, "queued": 0}


def test_an_engine_must_load_recognize_and_close() -> None:
    class NoRecognizer(AsrEngine):
        name = "incomplete"

        async def load(self) -> None:
            pass

        async def close(self) -> None:
            pass

    with pytest.raises(TypeError, match="recognizer"):
        NoRecognizer()  # type: ignore[abstract]


def test_recorded_speech_and_no_samples_are_accepted() -> None:
    pcm, _rate = read_wav(ALLISON / "hello-world.wav")
    check_pcm(pcm)
    check_pcm(np.zeros(0, np.int16))


@pytest.mark.parametrize(
    ("pcm", "problem"),
    [
        (np.zeros(1600, np.float32), "got float32 with shape (1600,)"),
        (np.zeros(1600, np.int32), "got int32 with shape (1600,)"),
        (np.zeros((800, 2), np.int16), "got int16 with shape (800, 2)"),
        (np.zeros((1, 1600), np.int16), "got int16 with shape (1, 1600)"),
    ],
)
def test_audio_in_another_format_is_refused_saying_what_it_is(
    pcm: np.ndarray, problem: str
) -> None:
    with pytest.raises(ValueError) as refused:
        check_pcm(pcm)
    assert str(refused.value) == f"expected mono int16 samples, {problem}"
