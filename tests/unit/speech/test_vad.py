"""Voice activity on real recorded speech (Allison's prompts), at the caller's 8 kHz."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.audio import ALLISON
from voicebot.capture.wav import read_wav
from voicebot.config import VadConfig
from voicebot.speech.vad import SpeechConfirmed, VadEvent, VoiceBegan, VoicePaused, VoiceSegmenter

RATE = 8000
FRAME = 160  # 20 ms at 8 kHz


def load(name: str) -> np.ndarray:
    pcm, rate = read_wav(ALLISON / name)
    assert rate == RATE
    return pcm


def voiced_span(pcm: np.ndarray) -> tuple[float, float]:
    """First/last 10 ms block above a loudness floor: the 'true' speech boundaries."""
    blocks = pcm[: len(pcm) // 80 * 80].reshape(-1, 80).astype(np.float64)
    loud = np.nonzero(np.sqrt((blocks**2).mean(axis=1)) > 300)[0]
    return loud[0] * 0.01, (loud[-1] + 1) * 0.01


def silence(seconds: float) -> np.ndarray:
    # Faint noise rather than digital zero, like a real line.
    rng = np.random.default_rng(1)
    return rng.normal(0, 20, int(seconds * RATE)).astype(np.int16)


def run(segmenter: VoiceSegmenter, pcm: np.ndarray) -> list[VadEvent]:
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME, np.int16)])
    events: list[VadEvent] = []
    for i in range(0, len(pcm), FRAME):
        events.extend(segmenter.feed(pcm[i : i + FRAME]))
    return events


@pytest.mark.parametrize("aggressiveness", [0, 1, 2, 3])
def test_two_utterances_on_real_speech(aggressiveness: int) -> None:
    hello, goodbye = load("hello-world.wav"), load("goodbye.wav")
    lead, gap = 1.0, 1.0
    stream = np.concatenate([silence(lead), hello, silence(gap), goodbye, silence(1.5)])
    h0, h1 = voiced_span(hello)
    g0, g1 = voiced_span(goodbye)
    g_off = lead + len(hello) / RATE + gap
    truth = [(lead + h0, lead + h1), (g_off + g0, g_off + g1)]

    config = VadConfig(aggressiveness=aggressiveness)
    segmenter = VoiceSegmenter(config, RATE)
    events = run(segmenter, stream)

    began = [e for e in events if isinstance(e, VoiceBegan)]
    paused = [e for e in events if isinstance(e, VoicePaused)]
    assert len(began) >= 2 and len(paused) == len(began)
    assert sum(isinstance(e, SpeechConfirmed) for e in events) >= 2
    # "Hello world" may pause between its words; the first onset and the last pause of each
    # utterance are where the speech really begins and ends.
    firsts = [began[0], next(b for b in began if b.stream_time > truth[1][0] - 0.2)]
    lasts = [max((p for p in paused if p.voice_end < g_off), key=lambda p: p.voice_end),
             paused[-1]]  # fmt: skip
    for (t0, t1), start, end in zip(truth, firsts, lasts, strict=True):
        assert abs(start.stream_time - t0) < 0.15, (start.stream_time, t0)
        assert abs(end.voice_end - t1) < 0.3, (end.voice_end, t1)
        # The pause is seen pause_ms after the last voiced frame, not later.
        wait = config.pause_ms / 1000
        assert wait - 0.001 <= end.decided_time - end.voice_end <= wait + 0.021
    assert not segmenter.in_voice


def test_onset_comes_within_two_frames_of_voice() -> None:
    hello = load("hello-world.wav")
    stream = np.concatenate([silence(1.0), hello, silence(0.5)])
    segmenter = VoiceSegmenter(VadConfig(), RATE)
    events: list[tuple[float, VadEvent]] = []
    pcm = np.concatenate([stream, np.zeros(-len(stream) % FRAME, np.int16)])
    for i in range(0, len(pcm), FRAME):
        events += [(segmenter.stream_time, e) for e in segmenter.feed(pcm[i : i + FRAME])]
    decided_at, first = events[0]
    assert isinstance(first, VoiceBegan)
    assert decided_at - first.stream_time <= 0.04 + 1e-9  # onset_ms after the first voiced frame
    confirmed_at = next(t for t, e in events if isinstance(e, SpeechConfirmed))
    assert confirmed_at - first.stream_time >= 0.4 - 1e-9


@pytest.mark.parametrize("aggressiveness", [0, 2])
def test_click_alone_is_no_voice(aggressiveness: int) -> None:
    rng = np.random.default_rng(2)
    click = rng.normal(0, 8000, int(0.01 * RATE)).clip(-32768, 32767).astype(np.int16)
    segmenter = VoiceSegmenter(VadConfig(aggressiveness=aggressiveness), RATE)
    assert run(segmenter, np.concatenate([silence(0.5), click, silence(1.5)])) == []


def test_a_short_burst_begins_a_voice_but_is_not_confirmed_speech() -> None:
    rng = np.random.default_rng(3)
    burst = rng.normal(0, 6000, int(0.25 * RATE)).clip(-32768, 32767).astype(np.int16)
    segmenter = VoiceSegmenter(VadConfig(), RATE)
    events = run(segmenter, np.concatenate([silence(0.5), burst, silence(1.0)]))
    assert not any(isinstance(e, SpeechConfirmed) for e in events)


def test_long_voice_without_a_pause_is_looked_at_anyway() -> None:
    hello = load("hello-world.wav")
    segmenter = VoiceSegmenter(VadConfig(max_utterance_s=0.3), RATE)
    events = run(segmenter, np.concatenate([silence(0.5), hello]))
    assert isinstance(events[0], VoiceBegan)
    assert any(isinstance(e, VoicePaused) for e in events)


def test_wrong_frame_size_names_expected_size() -> None:
    segmenter = VoiceSegmenter(VadConfig(), RATE)
    with pytest.raises(ValueError, match="160 samples"):
        segmenter.feed(np.zeros(320, np.int16))
    with pytest.raises(ValueError, match="sample rate"):
        VoiceSegmenter(VadConfig(), 11025)


def test_speech_is_pitched_and_noise_is_not() -> None:
    from tests.support.audio import FIXTURE_AUDIO
    from voicebot.speech.vad import MIN_PITCHED_MS

    turns = FIXTURE_AUDIO.parent / "turns"
    for name, speech in [("barge-hours-allison.wav", True), ("yesno-yes-en-gb.wav", True),
                         ("noise-cough.wav", False), ("noise-cough-double.wav", False),
                         ("noise-hiss.wav", False), ("noise-breath.wav", False),
                         ("noise-crackle.wav", False)]:  # fmt: skip
        pcm, _ = read_wav(turns / name)
        segmenter = VoiceSegmenter(VadConfig(), RATE)
        events = run(segmenter, np.concatenate([silence(0.5), pcm, silence(0.5)]))
        pitched = sum(e.pitched_s for e in events if isinstance(e, VoicePaused))
        assert (pitched * 1000 >= MIN_PITCHED_MS) is speech, (name, pitched)
        # A hiss or a breath of more than min_speech_ms is still not confirmed speech.
        assert any(isinstance(e, SpeechConfirmed) for e in events) is speech, name
