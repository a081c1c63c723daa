"""Endpointer segmentation on real recorded speech (Asterisk's English prompts)."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import soxr

from tests.audio import ALLISON
from voicebot.config import VadConfig
from voicebot.speech.vad import Endpointer, SpeechEnded, SpeechStarted, VadEvent

RATE = 16000
FRAME = 320  # 20 ms at 16 kHz


def load_16k(name: str) -> np.ndarray:
    with wave.open(str(ALLISON / name), "rb") as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        rate = w.getframerate()
    return soxr.resample(pcm, rate, RATE).astype(np.int16)


def voiced_span(pcm: np.ndarray) -> tuple[float, float]:
    """First/last 10 ms block above a loudness floor: the 'true' speech boundaries."""
    blocks = pcm[: len(pcm) // 160 * 160].reshape(-1, 160).astype(np.float64)
    loud = np.nonzero(np.sqrt((blocks**2).mean(axis=1)) > 300)[0]
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def silence(seconds: float) -> np.ndarray:
    # Faint noise rather than digital zero, like a real line.
    rng = np.random.default_rng(1)
    return rng.normal(0, 20, int(seconds * RATE)).astype(np.int16)


def run(ep: Endpointer, pcm: np.ndarray) -> list[VadEvent]:
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME, np.int16)])
    events: list[VadEvent] = []
    for i in range(0, len(pcm), FRAME):
        events.extend(ep.feed(pcm[i : i + FRAME]))
    return events


@pytest.mark.parametrize("aggressiveness", [0, 1, 2, 3])
def test_two_utterances_on_real_speech(aggressiveness: int) -> None:
    hello, goodbye = load_16k("hello-world.wav"), load_16k("goodbye.wav")
    lead, gap = 1.0, 1.0
    stream = np.concatenate([silence(lead), hello, silence(gap), goodbye, silence(1.5)])
    h0, h1 = voiced_span(hello)
    g0, g1 = voiced_span(goodbye)
    g_off = lead + len(hello) / RATE + gap
    truth = [(lead + h0, lead + h1), (g_off + g0, g_off + g1)]

    config = VadConfig(aggressiveness=aggressiveness)
    ep = Endpointer(config)
    events = run(ep, stream)

    assert [type(e) for e in events] == [SpeechStarted, SpeechEnded] * 2
    ended = [e for e in events if isinstance(e, SpeechEnded)]
    started = [e for e in events if isinstance(e, SpeechStarted)]
    for (t0, t1), s, e in zip(truth, started, ended, strict=True):
        assert s.stream_time == e.start_time
        assert abs(e.start_time - t0) < 0.15, (e.start_time, t0)
        assert abs(e.end_time - t1) < 0.3, (e.end_time, t1)
        # Decided after the hang time, not much later.
        hang = config.hang_time_ms / 1000
        assert hang - 0.03 <= e.decided_time - e.end_time <= hang + 0.03
        # Preroll before onset plus at most ~200 ms of tail.
        duration = len(e.audio) / RATE
        core = e.end_time - e.start_time
        assert core + 0.25 <= duration <= core + config.preroll_ms / 1000 + 0.21
        assert e.audio.dtype == np.int16
    assert not ep.in_speech


def test_preroll_contains_audio_before_onset() -> None:
    hello = load_16k("hello-world.wav")
    stream = np.concatenate([silence(1.0), hello, silence(1.0)])
    (ended,) = [e for e in run(Endpointer(VadConfig()), stream) if isinstance(e, SpeechEnded)]
    first_sample = round((ended.start_time - 0.3) * RATE)
    np.testing.assert_array_equal(ended.audio[:1000], stream[first_sample : first_sample + 1000])


@pytest.mark.parametrize("aggressiveness", [0, 2])
def test_click_alone_is_not_speech(aggressiveness: int) -> None:
    # webrtcvad itself keeps saying "voiced" for ~150 ms after a burst; the click must still
    # not reach min_speech_ms.
    rng = np.random.default_rng(2)
    click = rng.normal(0, 8000, int(0.06 * RATE)).clip(-32768, 32767).astype(np.int16)
    ep = Endpointer(VadConfig(aggressiveness=aggressiveness))
    events = run(ep, np.concatenate([silence(0.5), click, silence(1.5)]))
    assert events == []
    assert not ep.in_speech


def test_in_speech_and_long_utterance_is_cut() -> None:
    hello = load_16k("hello-world.wav")
    config = VadConfig(max_utterance_s=0.6)
    ep = Endpointer(config)
    events = run(ep, np.concatenate([silence(0.5), hello[: int(0.4 * RATE)]]))
    assert [type(e) for e in events] == [SpeechStarted]
    assert ep.in_speech
    events = run(ep, hello[int(0.4 * RATE) :])
    cut = next(e for e in events if isinstance(e, SpeechEnded))
    assert cut.end_time - cut.start_time == pytest.approx(0.6, abs=0.021)
    ep.reset()
    assert not ep.in_speech


def test_wrong_frame_size_names_expected_size() -> None:
    ep = Endpointer(VadConfig())
    with pytest.raises(ValueError, match="320 samples"):
        ep.feed(np.zeros(160, np.int16))
