"""The turn-latency bench's bookkeeping: packet pacing as a far end sees it, the per-stage
percentiles, the report, and what it refuses before any model is loaded. (A bench round
itself runs the real models: ``make bench``, not the unit tests.)"""

from __future__ import annotations

import platform
import wave
from collections.abc import Collection
from pathlib import Path

import numpy as np
import pytest

from tests.support.audio import ALLISON
from voicebot.call import TurnTiming
from voicebot.capture.wav import read_wav
from voicebot.config import AsrConfig, Config, TtsConfig
from voicebot.media.codecs import SLIN16, ULAW
from voicebot.media.peer import Arrival
from voicebot.media.rtp import RtpPacket
from voicebot.tools.bench import (
    STAGES,
    BenchError,
    BenchReport,
    PacingStats,
    RoundResult,
    _load_utterance,
    _stages,
    _wait_until,
    bench_turns,
    machine_facts,
)

FRAME_BYTES = 160  # 20 ms of G.711
SAMPLES = 160


def stream(
    gaps_ms: list[float],
    *,
    markers: Collection[int] = (0,),
    sequences: list[int] | None = None,
    timestamps: list[int] | None = None,
    sizes: dict[int, int] | None = None,
    payload_types: dict[int, int] | None = None,
) -> list[Arrival]:
    """Packets arriving ``gaps_ms`` apart, numbered as one talkspurt unless told otherwise."""
    times = np.cumsum([0.0, *gaps_ms]) / 1000 + 100.0
    arrivals = []
    for n, at in enumerate(times):
        packet = RtpPacket(
            (payload_types or {}).get(n, ULAW.payload_type),
            sequences[n] if sequences else 1000 + n,
            timestamps[n] if timestamps else 8000 + n * SAMPLES,
            0x1234,
            bytes((sizes or {}).get(n, FRAME_BYTES)),
            marker=n in markers,
        )
        arrivals.append(Arrival(float(at), packet))
    return arrivals


def pacing(arrivals: list[Arrival], split_gap_ms: float | None = None) -> PacingStats:
    stats = PacingStats(ULAW.name, FRAME_BYTES)
    stats.add_stream(arrivals, ULAW.payload_type, SAMPLES, split_gap_ms=split_gap_ms)
    return stats


# -- pacing ----------------------------------------------------------------------------------


def test_an_even_stream_is_one_talkspurt_of_frames_on_time() -> None:
    stats = pacing(stream([20.0, 20.0, 20.0, 20.0]))
    assert (stats.packets, stats.talkspurts) == (5, 1)
    assert stats.gaps_ms == pytest.approx([20.0] * 4)
    summary = stats.summary()
    assert summary["within_tolerance"] == 1.0
    assert (summary["median_ms"], summary["max_ms"], summary["min_ms"]) == (20.0, 20.0, 20.0)
    for fault in ("wrong_size", "wrong_payload_type", "sequence_breaks", "timestamp_breaks"):
        assert summary[fault] == 0


@pytest.mark.parametrize(
    ("arrivals", "fault"),
    [
        (stream([20.0, 20.0], sizes={1: 80}), "wrong_size"),
        (stream([20.0, 20.0], payload_types={2: 8}), "wrong_payload_type"),
        (stream([20.0, 20.0], sequences=[10, 11, 13]), "sequence_breaks"),
        (stream([20.0, 20.0], timestamps=[0, 160, 480]), "timestamp_breaks"),
    ],
)
def test_each_fault_is_counted(arrivals: list[Arrival], fault: str) -> None:
    summary = pacing(arrivals).summary()
    faults = ("wrong_size", "wrong_payload_type", "sequence_breaks", "timestamp_breaks")
    assert {name: summary[name] for name in faults} == {name: int(name == fault) for name in faults}


def test_numbers_wrap_around_without_a_break() -> None:
    arrivals = stream([20.0], sequences=[65535, 0], timestamps=[2**32 - 80, 80])
    stats = pacing(arrivals)
    assert (stats.sequence_breaks, stats.timestamp_breaks) == (0, 0)


def test_a_marker_starts_a_talkspurt_whose_first_gap_is_not_a_frame_gap() -> None:
    # Two prompts: the second starts 2 s later, with new numbers, marked as a talkspurt.
    arrivals = stream(
        [20.0, 2000.0, 20.0],
        markers={0, 2},
        sequences=[1, 2, 500, 501],
        timestamps=[0, 160, 90000, 90160],
    )
    stats = pacing(arrivals)
    assert stats.talkspurts == 2
    assert stats.gaps_ms == pytest.approx([20.0, 20.0])
    assert (stats.sequence_breaks, stats.timestamp_breaks) == (0, 0)


def test_without_markers_a_long_silence_splits_talkspurts_when_asked() -> None:
    """Asterisk marks no talkspurts towards a phone: a pause longer than the split does."""
    arrivals = stream(
        [20.0, 900.0, 20.0], markers=set(), sequences=[1, 2, 3, 4], timestamps=[0, 160, 320, 480]
    )
    assert pacing(arrivals).talkspurts == 1  # the first packet only
    split = pacing(arrivals, split_gap_ms=200.0)
    assert split.talkspurts == 2
    assert split.gaps_ms == pytest.approx([20.0, 20.0])


def test_gap_statistics() -> None:
    stats = pacing(stream([20.0, 20.0, 21.0, 25.0]))
    summary = stats.summary()
    assert summary["gaps"] == 4
    assert summary["median_ms"] == 20.5
    assert summary["max_ms"] == 25.0 and summary["min_ms"] == 20.0
    assert summary["within_tolerance"] == 0.75  # 25 ms is outside 20 ± 2 ms


def test_no_packets_no_gap_statistics() -> None:
    summary = pacing([]).summary()
    assert summary["gaps"] == 0 and summary["packets"] == 0
    assert "median_ms" not in summary and "within_tolerance" not in summary


# -- stages and the report -------------------------------------------------------------------


def timing(first_packet: float | None = 10.62) -> TurnTiming:
    return TurnTiming(
        turn=1,
        voice_end=10.0,
        paused=10.15,
        transcribed=10.4,
        decided=10.45,
        dialog_done=10.46,
        first_audio=10.6,
        first_packet=first_packet,
        text="hours",
    )


def test_a_rounds_stages_in_milliseconds() -> None:
    stages = _stages(timing(), voice_ended=9.95, answer_heard=10.7)
    assert stages == {
        "pause": 150.0,
        "asr": 250.0,
        "wait": 450.0,
        "dialog": 10.0,
        "tts": 140.0,
        "send": 20.0,
        "total": 170.0,
        "total_from_voice_end": 620.0,
        "voice_end_to_decision": 500.0,
        "voice_to_voice": 750.0,
    }
    assert list(stages) == [key for key, _label in STAGES]


def test_a_round_not_answered_has_no_totals() -> None:
    stages = _stages(timing(first_packet=None), voice_ended=9.95, answer_heard=None)
    assert stages["total"] is None and stages["send"] is None
    assert stages["voice_to_voice"] is None and stages["wait"] == 450.0


MACHINE = {
    "load_average": [0.5, 0.4, 0.3],
    "load_average_end": [0.9, 0.5, 0.3],
    "cpu_count": 2,
    "cpus_usable": 2,
    "cpu_model": "Test CPU",
    "python": "3.11.9",
    "asr_model": "tiny.en (bundled)",
    "asr_threads": 2,
    "tts_voice": "en_US-joe-medium (bundled)",
}


def report(totals: list[float | None]) -> BenchReport:
    rounds = []
    for n, total in enumerate(totals):
        intent = "hours" if total is not None else None
        stages: dict[str, float | None] = {"total": total, "asr": 100.0 + n}
        rounds.append(
            RoundResult(n + 1, "hours.wav", "hours", intent, "We are open.", "answered", stages)
        )
    pacing_stats = pacing(stream([20.0, 20.0, 21.0, 25.0]))
    return BenchReport(ULAW.name, rounds, pacing_stats, dict(MACHINE), load_s=3.04)


def test_stage_percentiles_leave_out_rounds_without_a_value() -> None:
    summary = report([100.0, 200.0, None, 300.0]).stage_summary()
    assert summary["total"] == {"n": 3, "p50": 200.0, "p95": 290.0, "max": 300.0}
    assert summary["asr"]["n"] == 4
    assert "tts" not in summary  # no round measured it


def test_the_report_as_json() -> None:
    as_dict = report([100.0, None]).as_dict()
    assert as_dict["codec"] == "ulaw" and as_dict["rounds"] == 2
    assert as_dict["models_load_s"] == 3.0
    assert as_dict["machine"] == MACHINE
    assert as_dict["stages_ms"]["total"]["n"] == 1
    assert as_dict["pacing"]["gaps"] == 4
    assert as_dict["turns"][1]["intent"] is None


def test_the_report_as_text() -> None:
    text = report([100.0, None]).format()
    lines = text.splitlines()
    assert lines[0] == (
        "voicebot turn latency: 2 rounds, codec ulaw, real models (whisper "
        "tiny.en (bundled), 2 threads; piper en_US-joe-medium (bundled), "
        "fixed prompts cached)"
    )
    assert lines[1].startswith("machine: 2 CPUs (2 usable), Test CPU, python 3.11.9")
    assert "0.5 0.4 0.3 at start, 0.9 0.5 0.3 at end" in lines[1]
    assert lines[2] == "models loaded in 3.0 s"
    total = next(line for line in lines if line.startswith("total: decision → first RTP"))
    assert total.split()[-4:] == ["100.0", "100.0", "100.0", "1"]
    tts = next(line for line in lines if line.startswith("tts first chunk"))
    assert tts.split()[-4:] == ["-", "-", "-", "0"]
    assert any("4 gaps in 1 talkspurts: median 20.50" in line for line in lines)
    assert any("within 20±2 ms: 75.0%" in line for line in lines)
    assert "heard 'hours'" in lines[-2] and "total   100.0 ms  (answered)" in lines[-2]
    assert "(no match)" in lines[-1] and "total       - ms" in lines[-1]


def test_the_report_says_when_no_gap_was_measured() -> None:
    empty = BenchReport(ULAW.name, [], pacing([]), dict(MACHINE), load_s=1.0)
    assert "  no gaps measured" in empty.format().splitlines()


def test_machine_facts_name_the_models_and_this_python() -> None:
    facts = machine_facts(Config())
    assert facts["python"] == platform.python_version()
    assert facts["asr_model"] == "tiny.en (bundled)"
    assert facts["tts_voice"] == "en_US-joe-medium (bundled)"
    assert facts["cpus_usable"] >= 1 and len(facts["load_average"]) == 3
    named = machine_facts(
        Config(
            asr=AsrConfig(whisper_model="/m/base.en", threads=3), tts=TtsConfig(voice="/v/amy.onnx")
        )
    )
    assert (named["asr_model"], named["asr_threads"], named["tts_voice"]) == (
        "/m/base.en",
        3,
        "/v/amy.onnx",
    )


# -- before any model is loaded --------------------------------------------------------------


def test_an_utterance_is_read_at_the_codecs_rate() -> None:
    pcm, rate = read_wav(ALLISON / "hours.wav")
    assert rate == 8000
    np.testing.assert_array_equal(_load_utterance(ALLISON / "hours.wav", ULAW), pcm)
    wideband = _load_utterance(ALLISON / "hours.wav", SLIN16)
    assert abs(wideband.size - 2 * pcm.size) <= 2


def test_an_utterance_missing_or_unreadable_is_a_bench_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match=f"sound file not found: {tmp_path}/none.wav"):
        _load_utterance(tmp_path / "none.wav", ULAW)
    eight_bit = tmp_path / "eight-bit.wav"
    with wave.open(str(eight_bit), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(1)
        w.setframerate(8000)
        w.writeframes(bytes(800))
    with pytest.raises(BenchError, match="8-bit WAV, only 16-bit PCM is supported"):
        _load_utterance(eight_bit, ULAW)
    not_a_wav = tmp_path / "notes.wav"
    not_a_wav.write_text("hours, goodbye")
    with pytest.raises(BenchError, match="not a readable PCM WAV file"):
        _load_utterance(not_a_wav, ULAW)


@pytest.mark.parametrize(
    ("rounds", "utterances", "problem"),
    [
        (0, [ALLISON / "hours.wav"], "rounds must be at least 1"),
        (1, [], "at least one utterance is needed"),
        (1, [Path("/nonexistent/hours.wav")], "sound file not found: /nonexistent/hours.wav"),
    ],
)
async def test_a_bench_that_cannot_run_is_refused_before_the_models_load(
    rounds: int, utterances: list[Path], problem: str
) -> None:
    with pytest.raises(BenchError) as refused:
        await bench_turns(Config(), rounds=rounds, utterances=utterances)
    assert str(refused.value) == problem


async def test_waiting_gives_up_saying_what_did_not_happen() -> None:
    await _wait_until(lambda: True, 0.0, "never needed")
    with pytest.raises(BenchError, match="no answer within 0 s"):
        await _wait_until(lambda: False, 0.0, "no answer")
